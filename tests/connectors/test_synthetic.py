"""The synthetic market: deterministic per seed, valid bars, measurable sessions and regimes."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from connectors.core.clock import ManualClock
from connectors.core.feed import Batch
from connectors.factories import demo_ahead
from connectors.market.data import FAST_CHUNK, SyntheticFeed
from connectors.market.resample import Resampler
from connectors.market.schedule import DemoSchedule
from connectors.market.synthetic import (
    SyntheticBar,
    SyntheticMarket,
    is_closed,
    resume_point,
)
from streams.core.market import Candle
from topics.catalog import Catalog

START = datetime(2026, 3, 2, tzinfo=UTC)  # Monday 00:00 UTC


def _bars(days: int, seed: int = 42, timeframe: str = "M5") -> list[SyntheticBar]:
    market = SyntheticMarket(seed=seed, start=START, timeframe=timeframe)
    steps = int(timedelta(days=days) / market.step)
    return [bar for _ in range(steps) for bar in market.next_bars()]


def _range(bar: SyntheticBar) -> float:
    rec = bar.record
    return (rec["high"] - rec["low"]) / rec["close"]


def test_same_seed_gives_the_same_bars_and_another_seed_does_not() -> None:
    first = [b.record for b in _bars(2, seed=7)]
    again = [b.record for b in _bars(2, seed=7)]
    other = [b.record for b in _bars(2, seed=8)]

    assert first == again
    assert first != other


def test_every_bar_is_a_valid_candle_and_encodes_for_the_topic() -> None:
    codec = Catalog().codec("market.candles.v1")
    for bar in _bars(3):
        rec = bar.record
        Candle(**{k: rec[k] for k in ("symbol", "timeframe", "open_time", "open", "high", "low",
                                      "close", "volume", "spread")}).validate()
        codec.encode(rec)


def test_event_time_advances_one_bar_at_a_time_and_skips_the_weekend() -> None:
    market = SyntheticMarket(seed=1, start=datetime(2026, 3, 6, 21, 55, tzinfo=UTC),
                             timeframe="M5")  # Friday 21:55 UTC
    times = [market.next_bars()[0].record["open_time"] for _ in range(3)]

    assert times[0] == datetime(2026, 3, 6, 21, 55, tzinfo=UTC)
    assert times[1] == datetime(2026, 3, 8, 22, 0, tzinfo=UTC)  # Sunday open
    assert times[2] - times[1] == timedelta(minutes=5)
    assert not any(is_closed(t) for t in times)


def test_symbols_keep_their_price_scale_and_point_size() -> None:
    last = {b.record["symbol"]: b.record for b in _bars(5)}

    assert 1500 < last["XAUUSD"]["close"] < 3500
    assert 0.8 < last["EURUSD"]["close"] < 1.4
    assert 25_000 < last["US30"]["close"] < 55_000
    assert round(last["EURUSD"]["close"], 5) == last["EURUSD"]["close"]
    assert round(last["US30"]["close"], 1) == last["US30"]["close"]


def test_london_new_york_overlap_is_more_volatile_than_asia() -> None:
    by_session: dict[str, list[float]] = defaultdict(list)
    for bar in _bars(20):
        if bar.record["symbol"] == "EURUSD" and bar.news == 1.0:
            by_session[bar.session].append(_range(bar))

    assert statistics.mean(by_session["overlap"]) > 1.8 * statistics.mean(by_session["asia"])
    assert statistics.mean(by_session["london"]) > statistics.mean(by_session["asia"])


def test_volatile_regime_has_wider_bars_than_calm_regime() -> None:
    by_regime: dict[str, list[float]] = defaultdict(list)
    for bar in _bars(20):
        if bar.session == "london" and bar.news == 1.0:
            by_regime[bar.regime].append(_range(bar))

    assert by_regime["calm"]
    assert by_regime["volatile"]
    assert statistics.mean(by_regime["volatile"]) > 2 * statistics.mean(by_regime["calm"])


def test_spread_widens_at_rollover_and_around_high_impact_news() -> None:
    bars = [b for b in _bars(10) if b.record["symbol"] == "XAUUSD"]
    rollover = [b.record["spread"] for b in bars if b.record["open_time"].hour == 21]
    london_quiet = [b.record["spread"] for b in bars if b.session == "london" and b.news == 1.0
                    and b.regime != "volatile"]
    news = [b.record["spread"] for b in bars if b.news >= 4.0]

    assert news, "the demo schedule has high-impact USD releases on weekdays"
    assert statistics.mean(rollover) > 2 * statistics.mean(london_quiet)
    assert statistics.mean(news) > 2 * statistics.mean(london_quiet)


def test_trends_and_pullbacks_both_happen() -> None:
    closes = [b.record["close"] for b in _bars(20, timeframe="M15")
              if b.record["symbol"] == "XAUUSD"]
    moves = [closes[i + 16] - closes[i] for i in range(0, len(closes) - 16, 16)]  # 4-hour moves

    assert sum(m > 0 for m in moves) > len(moves) * 0.25
    assert sum(m < 0 for m in moves) > len(moves) * 0.25
    assert max(closes) / min(closes) > 1.01


def test_demo_schedule_has_high_impact_usd_events_every_weekday_only() -> None:
    schedule = DemoSchedule(42)
    for offset in range(7):
        day = (START + timedelta(days=offset)).date()
        events = schedule.events_on(day)
        usd_high = [e for e in events if e.currency == "USD" and e.impact == "high"]
        assert bool(usd_high) == (day.weekday() < 5)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        SyntheticMarket(start=datetime(2026, 3, 2))  # noqa: DTZ001


# ---- a restarted demo resumes after what the bus holds

TIMEFRAMES = ("M1", "M5", "M15", "H1")
STEPS = {"M1": timedelta(minutes=1), "M5": timedelta(minutes=5),
         "M15": timedelta(minutes=15), "H1": timedelta(hours=1)}


def _published(minutes: int, symbols: tuple[str, ...] = ("XAUUSD", "EURUSD")
               ) -> list[dict[str, object]]:
    """Every bar of `minutes` M1 bars of a demo from START, resampled like the feed."""
    market = SyntheticMarket(symbols=symbols, start=START, timeframe="M1")
    resampler = Resampler(timedelta(minutes=1), {t: STEPS[t] for t in TIMEFRAMES[1:]})
    out: list[dict[str, object]] = []
    for _ in range(minutes):
        out.extend(resampler.add_all([bar.record for bar in market.next_bars()]))
    return out


def test_a_resumed_market_starts_after_every_published_bar_at_the_last_closes() -> None:
    published = _published(150)  # up to 02:29; the last whole H1 bar opened at 01:00
    resume = resume_point([None, {"symbol": "OTHER", "timeframe": "M1"}, *published],
                          ("XAUUSD", "EURUSD"), TIMEFRAMES, earliest=START)
    market = SyntheticMarket(symbols=("XAUUSD", "EURUSD"), start=resume.start,
                             timeframe="M1", prices=resume.prices)
    first = {bar.record["symbol"]: bar.record for bar in market.next_bars()}
    last_m1 = {r["symbol"]: r for r in published if r["timeframe"] == "M1"}

    assert resume.after == START + timedelta(minutes=150)
    assert resume.start == START + timedelta(hours=3)  # the next H1 boundary
    assert {s: r["open"] for s, r in first.items()} == {
        s: r["close"] for s, r in last_m1.items()}
    for bar in published:  # the worker ignores a bar older than the last it has
        assert bar["open_time"] < resume.start


def test_resume_never_starts_before_the_warm_up_and_without_history_starts_there() -> None:
    published = _published(30)
    later = START + timedelta(days=3)

    old = resume_point(published, ("XAUUSD", "EURUSD"), TIMEFRAMES, earliest=later)
    fresh = resume_point([], ("XAUUSD", "EURUSD"), TIMEFRAMES, earliest=later)

    assert old.start == later
    assert set(old.prices) == {"XAUUSD", "EURUSD"}  # the prices still go on from there
    assert (fresh.start, fresh.prices, fresh.after) == (later, {}, None)


def test_resume_takes_each_symbols_finest_newest_close_and_a_boundary_of_the_longest() -> None:
    at = START + timedelta(hours=5)
    published = [
        {"symbol": "XAUUSD", "timeframe": "H1", "open_time": at, "close": 1.0},
        {"symbol": "XAUUSD", "timeframe": "M1", "open_time": at + timedelta(minutes=7),
         "close": 2.0},
        {"symbol": "XAUUSD", "timeframe": "M1", "open_time": at + timedelta(minutes=3),
         "close": 3.0},
        {"symbol": "EURUSD", "timeframe": "M5", "open_time": at, "close": 4.0},
    ]

    resume = resume_point(published, ("XAUUSD", "EURUSD"), ("M1", "M5", "H1"), START)

    assert resume.prices == {"XAUUSD": 2.0, "EURUSD": 4.0}
    assert resume.after == at + timedelta(hours=1)  # the H1 bar's end
    assert resume.start == at + timedelta(hours=1)  # already on the H1 grid


def test_opening_prices_must_be_positive() -> None:
    with pytest.raises(ValueError, match="EURUSD: opening price must be positive"):
        SyntheticMarket(symbols=("EURUSD",), start=START, prices={"EURUSD": 0.0})


# ---- the demo clock: a bar is published once the demo's time reaches its close

FRIDAY = datetime(2026, 3, 6, tzinfo=UTC)  # the weekend close is at 22:00 UTC


def _feed(start: datetime, wall: datetime, speed: float,
          after: datetime | None = None) -> tuple[SyntheticFeed, ManualClock]:
    clock = ManualClock(wall)
    market = SyntheticMarket(symbols=("EURUSD",), start=start, timeframe="M1")
    return SyntheticFeed(market, speed, clock, after=after), clock


def _opens(batch: Batch) -> list[datetime]:
    return [out.record["open_time"] for out in batch.records]


def test_at_speed_1_the_history_comes_at_once_then_each_bar_at_its_close() -> None:
    wall = START + timedelta(hours=10, seconds=30)
    feed, clock = _feed(START + timedelta(hours=8), wall, speed=1)

    history = feed.poll()
    waiting = feed.poll()
    clock.advance(29)
    early = feed.poll()
    clock.advance(1)
    closed = feed.poll()

    assert _opens(history)[0] == START + timedelta(hours=8)
    assert _opens(history)[-1] == START + timedelta(hours=9, minutes=59)  # closed at 10:00
    assert len(history.records) == 120
    assert (waiting.records, waiting.wait) == ([], 1.0)  # 30 s to go: looks again in 1 s
    assert (early.records, early.wait) == ([], 1.0)
    assert _opens(closed) == [START + timedelta(hours=10)]  # at 10:01:00, its close
    assert closed.wait == 1.0
    assert feed.event_time() == START + timedelta(hours=10)


def test_the_wait_is_until_the_next_close_and_a_stall_publishes_what_came_due() -> None:
    feed, clock = _feed(START, START + timedelta(minutes=1, seconds=59.5), speed=1)

    first = feed.poll()
    clock.advance(300)  # the process stalled for five minutes
    after_stall = feed.poll()

    assert _opens(first) == [START]
    assert first.wait == 0.5  # 00:02:00 closes the next bar
    assert _opens(after_stall) == [START + timedelta(minutes=k) for k in range(1, 6)]


def test_at_speed_1_the_weekend_close_is_waited_out_on_the_wall_clock() -> None:
    feed, clock = _feed(FRIDAY + timedelta(hours=21), FRIDAY + timedelta(hours=21, minutes=59),
                        speed=1)
    feed.poll()
    clock.advance(60)
    last = feed.poll()  # the 21:59 bar, closed at 22:00
    clock.advance(timedelta(hours=40))  # Sunday 14:00: still closed
    closed = feed.poll()
    closed_at = feed.event_time()
    clock.set(FRIDAY + timedelta(days=2, hours=22, minutes=1))
    reopened = feed.poll()

    assert _opens(last) == [FRIDAY + timedelta(hours=21, minutes=59)]
    assert (closed.records, closed.wait) == ([], 1.0)
    assert closed_at == FRIDAY + timedelta(hours=21, minutes=59)  # not Sunday's
    assert _opens(reopened) == [FRIDAY + timedelta(days=2, hours=22)]


def test_a_faster_demo_jumps_over_the_weekend_close() -> None:
    feed, clock = _feed(FRIDAY + timedelta(hours=21), FRIDAY + timedelta(hours=21, minutes=50),
                        speed=60)
    feed.poll()  # up to the 21:49 bar
    clock.advance(10)  # ten demo minutes: up to 21:59, the last bar of the week
    friday = feed.poll()  # and the demo's time moves on to Sunday 22:00, the reopening
    clock.advance(1)  # a demo minute later
    sunday = feed.poll()
    clock.advance(3)
    later = feed.poll()

    assert _opens(friday)[-1] == FRIDAY + timedelta(hours=21, minutes=59)
    assert friday.wait == 1.0  # Sunday's first bar closes a demo minute after it opens
    assert _opens(sunday) == [FRIDAY + timedelta(days=2, hours=22)]
    assert _opens(later) == [FRIDAY + timedelta(days=2, hours=22, minutes=k)
                             for k in (1, 2, 3)]  # a demo minute per wall second


def test_a_demo_resumed_ahead_of_the_wall_clock_goes_on_from_where_it_was() -> None:
    wall = START + timedelta(hours=9)
    after = START + timedelta(hours=11)  # a faster run had got that far
    feed, clock = _feed(after, wall, speed=1, after=after)

    first = feed.poll()
    clock.advance(60)
    second = feed.poll()

    assert (first.records, first.wait) == ([], 1.0)
    assert _opens(second) == [after]  # its close, 11:01, a wall minute after the start


def test_only_a_demo_faster_than_the_clock_or_resumed_ahead_of_it_runs_ahead() -> None:
    now = START + timedelta(hours=9)

    assert demo_ahead(1.0, None, now) is None
    assert demo_ahead(1.0, now - timedelta(minutes=3), now) is None
    assert demo_ahead(0.5, None, now) is None
    assert demo_ahead(60.0, None, now) == "SYNTHETIC_SPEED=60"
    assert demo_ahead(1.0, now + timedelta(hours=2), now) == (
        "resumed after bars on the bus that end at 2026-03-02T11:00:00+00:00")


def test_an_unpaced_feed_publishes_chunks_without_waiting() -> None:
    market = SyntheticMarket(symbols=("EURUSD", "XAUUSD"), start=START, timeframe="M1")
    feed = SyntheticFeed(market, None)

    batch = feed.poll()

    assert batch.wait == 0.0
    assert len(batch.records) == FAST_CHUNK  # 1,000 time steps of two symbols
