"""Build brokers and feeds from `Settings` (the only place connectors read settings)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.brokers.base import Broker
from connectors.brokers.mt5.client import Mt5Session
from connectors.brokers.mt5.config import Mt5Config
from connectors.brokers.mt5.execution import Mt5Broker
from connectors.brokers.paper.config import PaperConfig
from connectors.brokers.paper.execution import PaperBroker
from connectors.calendar.data import CalendarFeed, CsvCalendarProvider, HttpCalendarProvider
from connectors.calendar.demo import DemoCalendarProvider
from connectors.core.clock import Clock, utc_now
from connectors.core.feed import Feed
from connectors.instruments import INSTRUMENTS
from connectors.market.data import Mt5CandleFeed, ReplayFeed, SyntheticFeed
from connectors.market.parse import (
    ParsedCandles,
    parse_mt5_history,
    parse_ohlcv_csv,
    parse_parquet,
)
from connectors.market.resample import Resampler
from connectors.market.schedule import DemoSchedule
from connectors.market.synthetic import TIMEFRAME_DELTAS, SyntheticMarket, resume_point
from connectors.news.config import load_aliases
from connectors.news.data import RssFeed
from connectors.news.demo import DemoNewsFeed
from connectors.news.parse import Tagger
from connectors.orders.executor import ExecutorConfig
from topics.settings import Settings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FeedSpec:
    """A feed and how often to poll it."""

    feed: Feed
    interval: float
    #: The time the feed's data is current at, when it is not the wall clock's (the
    #: demo's world; see `Health.world`).
    world: Clock | None = None


def ledger_path(settings: Settings) -> Path:
    """The executor's ledger file of this account."""
    return settings.state_dir / f"orders-{settings.account}.sqlite"


def load_mt5_module(settings: Settings) -> Any:
    """The `MetaTrader5` package, or an mt5linux bridge object when a bridge host is set."""
    if settings.mt5_bridge_host:
        bridge = importlib.import_module("mt5linux")
        return bridge.MetaTrader5(host=settings.mt5_bridge_host, port=settings.mt5_bridge_port)
    return importlib.import_module("MetaTrader5")


def mt5_config(settings: Settings) -> Mt5Config:
    """MT5 settings (credentials stay `SecretStr`)."""
    return Mt5Config(
        account=settings.account, login=settings.mt5_login, password=settings.mt5_password,
        server=settings.mt5_server, path=settings.mt5_path, magic=settings.mt5_magic,
        deviation_points=settings.mt5_deviation_points,
        server_timezone=ZoneInfo(settings.mt5_server_timezone),
    )


def build_broker(settings: Settings, clock: Clock = utc_now, mt5_module: Any = None) -> Broker:
    """The active broker: paper (default) or MT5."""
    if settings.broker == "mt5":
        config = mt5_config(settings)
        module = mt5_module if mt5_module is not None else load_mt5_module(settings)
        return Mt5Broker(Mt5Session(module, config), config, clock)
    paper = PaperConfig(
        account=settings.account, initial_balance=settings.paper_initial_balance,
        slippage_points=settings.paper_slippage_points,
        price_timeframe=min(settings.market_timeframes, key=lambda t: TIMEFRAME_DELTAS[t]),
        state_file=settings.state_dir / f"paper-{settings.account}.json",
    )
    return PaperBroker(paper, clock)


def executor_config(settings: Settings) -> ExecutorConfig:
    """Executor identity: account, broker name, magic number."""
    return ExecutorConfig(account=settings.account, broker=settings.broker,
                          magic=settings.mt5_magic, max_attempts=settings.order_max_attempts)


def _read_candles(settings: Settings, path: Path) -> ParsedCandles:
    fmt = settings.market_replay_format
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = "parquet" if suffix == ".parquet" else "csv"
        if fmt == "csv" and b"<DATE>" in path.read_bytes()[:400].replace(b"\x00", b""):
            fmt = "mt5"
    symbol = settings.market_replay_symbol or path.stem.split("_")[0].upper()
    tz = ZoneInfo(settings.market_file_timezone)
    timeframe = settings.market_replay_timeframe
    if fmt == "parquet":
        return parse_parquet(str(path), symbol, timeframe, tz)
    if fmt == "mt5":
        inst = INSTRUMENTS.get(symbol)
        point = float(inst.point) if inst else 0.00001
        return parse_mt5_history(path.read_bytes(), symbol, timeframe, point, tz)
    return parse_ohlcv_csv(path.read_bytes(), symbol, timeframe, tz)


#: The tail of the candle topic as published so far (see `resume_point`).
PublishedCandles = Callable[[], Iterable[Mapping[str, Any] | None]]


def market_feed(settings: Settings, demo: bool, clock: Clock,
                published: PublishedCandles | None = None) -> FeedSpec | None:
    """The configured market feed (the synthetic one in demo mode).

    The synthetic market resumes after the candles `published` returns (a restarted
    demo goes on where the last one stopped instead of republishing bars the worker
    has already seen and ignores); without it, it starts from the warm-up.
    """
    kind = "synthetic" if demo else settings.market_feed
    if kind == "synthetic":
        # The finest timeframe is generated; the others are resampled from it.
        timeframe = min(settings.market_timeframes, key=lambda t: TIMEFRAME_DELTAS[t])
        step = TIMEFRAME_DELTAS[timeframe]
        higher = {t: TIMEFRAME_DELTAS[t] for t in settings.market_timeframes if t != timeframe}
        # History enough for the slowest timeframe's indicators to be warm at "now".
        warm = clock() - max([step, *higher.values()]) * settings.synthetic_warmup_bars
        resume = resume_point(published() if published is not None else (),
                              settings.market_symbols, settings.market_timeframes, warm)
        if resume.after is not None:
            log.info("synthetic market resumes at %s: the newest bar on the bus ends at %s",
                     resume.start.isoformat(), resume.after.isoformat())
        ahead = demo_ahead(settings.synthetic_speed, resume.after, clock())
        if ahead:
            log.warning("the demo market runs ahead of the wall clock (%s): the paper "
                        "account's states are on the wall clock, so AI trading rejects its "
                        "ideas as account_stale, and an approval passes only while the wall "
                        "clock is inside the strategy's session; SYNTHETIC_SPEED=1 on a fresh "
                        "bus (make clean) keeps the demo on the clock", ahead)
        market = SyntheticMarket(tuple(settings.market_symbols), timeframe,
                                 settings.synthetic_seed, resume.start,
                                 schedule=DemoSchedule(settings.synthetic_seed),
                                 prices=resume.prices)
        resampler = Resampler(step, higher) if higher else None
        return FeedSpec(SyntheticFeed(market, settings.synthetic_speed, clock,
                                      resampler=resampler, after=resume.after), 0.0)
    if kind == "replay":
        if settings.market_replay_path is None:
            raise ValueError("MARKET_FEED=replay needs MARKET_REPLAY_PATH")
        path = settings.market_replay_path
        return FeedSpec(ReplayFeed("replay", _read_candles(settings, path), str(path),
                                   settings.market_replay_speed), 0.0)
    if kind == "mt5":
        config = mt5_config(settings)
        # the feed attaches to the running terminal without credentials: they stay in the broker
        session = Mt5Session(load_mt5_module(settings), config, with_credentials=False)
        return FeedSpec(Mt5CandleFeed(session, settings.market_symbols,
                                      settings.market_timeframes, config.server_timezone,
                                      settings.mt5_market_backfill_bars),
                        settings.market_poll_seconds)
    return None


def _tz(name: str | None) -> ZoneInfo | None:
    return ZoneInfo(name) if name else None


def build_feeds(settings: Settings, demo: bool, clock: Clock = utc_now,
                published: PublishedCandles | None = None) -> list[FeedSpec]:
    """Every feed `run_feeds` runs (`published`: see `market_feed`)."""
    specs: list[FeedSpec] = []
    market = market_feed(settings, demo, clock, published)
    if demo and market is not None and isinstance(market.feed, SyntheticFeed):
        synthetic = market.feed
        world = demo_world(synthetic, clock)
        schedule = DemoSchedule(settings.synthetic_seed)
        specs.append(FeedSpec(synthetic, market.interval, world))
        specs.append(FeedSpec(CalendarFeed("demo-calendar", DemoCalendarProvider(
            schedule, synthetic.event_time, world), "demo"), 2.0, world))
        specs.append(FeedSpec(DemoNewsFeed(synthetic.event_time, world,
                                           settings.synthetic_seed), 5.0, world))
    elif market is not None:
        specs.append(market)
    if settings.calendar_url:
        provider = HttpCalendarProvider(settings.calendar_url, clock, settings.calendar_format,
                                        _tz(settings.calendar_xml_timezone))
        specs.append(FeedSpec(CalendarFeed("calendar", provider, settings.calendar_url),
                              settings.calendar_interval_seconds))
    if settings.calendar_csv_path:
        csv_provider = CsvCalendarProvider(settings.calendar_csv_path, clock,
                                           ZoneInfo(settings.calendar_csv_timezone))
        specs.append(FeedSpec(CalendarFeed("calendar-csv", csv_provider,
                                           str(settings.calendar_csv_path)),
                              settings.calendar_interval_seconds))
    tagger = Tagger(load_aliases(settings.news_aliases_path))
    for index, url in enumerate(settings.news_urls):
        specs.append(FeedSpec(RssFeed(f"news-{index + 1}", url, clock, tagger),
                              settings.news_interval_seconds))
    return specs


def demo_ahead(speed: float, after: datetime | None, now: datetime) -> str | None:
    """Why a demo market would run ahead of the wall clock, if it would: faster than it,
    or resumed after bars a faster run left ahead of it."""
    if speed > 1:
        return f"SYNTHETIC_SPEED={speed:g}"
    if after is not None and after > now:
        return f"resumed after bars on the bus that end at {after.isoformat()}"
    return None


def demo_world(synthetic: SyntheticFeed, clock: Clock) -> Clock:
    """The demo's time: the close of the last synthetic bar published, never before
    `clock`. At `SYNTHETIC_SPEED` 60 the demo market runs an hour per minute: a
    calendar stamped with the wall clock was more than `calendar_max_age` (1 h) old in
    the market's time after a minute, and every strategy stood in a news blackout."""
    def now() -> datetime:
        wall = clock()
        market = synthetic.event_time() + synthetic.market.step
        return market if market > wall else wall
    return now


def demo_horizon() -> timedelta:
    """How far the demo calendar looks ahead."""
    return timedelta(days=2)
