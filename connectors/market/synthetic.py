"""A seeded synthetic market: realistic enough that the strategies fire sometimes.

What makes it look like a market (and what the tests check):
- trading sessions with their own volatility (Asia quiet, London busy, the
  London/New York overlap busiest, the rollover hour quietest with the widest spread);
- volatility regimes (calm, normal, volatile) that persist and switch (Markov);
- trends of random length and strength, with pullbacks from the noise around them;
- spreads widening at the daily rollover (21:00-22:00 UTC), in volatile regimes and
  around the demo calendar's releases (where volatility jumps too);
- several symbols with their own price scale and point size (see `instruments`);
- weekends skipped like an FX/CFD venue (Friday 22:00 to Sunday 22:00 UTC).

Same seed, same start, same bars: every random draw comes from one RNG per symbol
seeded from the seed and a stable hash of the symbol.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.instruments import Instrument, instrument
from connectors.market.schedule import DemoSchedule

TIMEFRAME_DELTAS = {
    "M1": timedelta(minutes=1), "M5": timedelta(minutes=5), "M15": timedelta(minutes=15),
    "M30": timedelta(minutes=30), "H1": timedelta(hours=1), "H4": timedelta(hours=4),
    "D1": timedelta(days=1),
}

# (first hour UTC, session, volatility multiplier, spread multiplier)
SESSIONS: tuple[tuple[int, str, float, float], ...] = (
    (0, "asia", 0.55, 1.3),
    (7, "london", 1.15, 1.0),
    (12, "overlap", 1.6, 1.0),
    (16, "new_york", 1.0, 1.1),
    (21, "rollover", 0.35, 3.0),
    (22, "asia", 0.55, 1.5),
)
REGIMES: dict[str, tuple[float, float]] = {  # volatility, spread multipliers
    "calm": (0.6, 1.0), "normal": (1.0, 1.0), "volatile": (2.2, 1.6),
}
REGIME_MEAN_BARS = 240  # a regime lasts ~4 hours of M1 bars on average
#: Bar times are multiples of the bar length from here (a Monday midnight).
GRID_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)


def session_of(at: datetime) -> tuple[str, float, float]:
    """The session name and its volatility and spread multipliers at a UTC time."""
    hour = at.astimezone(UTC).hour
    current = SESSIONS[0]
    for entry in SESSIONS:
        if hour >= entry[0]:
            current = entry
    return current[1], current[2], current[3]


def is_closed(at: datetime) -> bool:
    """Weekend close of FX/CFD venues: Friday 22:00 to Sunday 22:00 UTC."""
    at = at.astimezone(UTC)
    weekday, hour = at.weekday(), at.hour
    return weekday == 5 or (weekday == 4 and hour >= 22) or (weekday == 6 and hour < 22)


@dataclass(frozen=True)
class SyntheticBar:
    """A candle record with the hidden state that produced it (for tests and demos)."""

    record: dict[str, Any]
    session: str
    regime: str
    news: float


@dataclass
class _SymbolState:
    inst: Instrument
    rng: random.Random
    price: float
    regime: str = "normal"
    trend: float = 0.0  # drift per bar in units of the bar's volatility
    trend_left: int = 0


@dataclass
class SyntheticMarket:
    """Generates bars for several symbols, one bar time after another."""

    symbols: tuple[str, ...] = ("XAUUSD", "EURUSD", "US30")
    timeframe: str = "M1"
    seed: int = 42
    start: datetime = field(default_factory=lambda: datetime(2026, 3, 2, tzinfo=UTC))
    skip_weekends: bool = True
    schedule: DemoSchedule | None = None
    #: Opening price by symbol (a resumed demo continues from the last closes); the
    #: instrument's start price for a symbol left out.
    prices: Mapping[str, float] = field(default_factory=dict)
    _states: dict[str, _SymbolState] = field(init=False, repr=False)
    _next: datetime = field(init=False, repr=False)
    _schedule: DemoSchedule = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_DELTAS:
            raise ValueError(f"unknown timeframe {self.timeframe!r}")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._schedule = self.schedule or DemoSchedule(self.seed)
        self._states = {}
        for symbol in self.symbols:
            inst = instrument(symbol)
            rng = random.Random(self.seed * 7919 + zlib.crc32(symbol.encode()))  # noqa: S311
            price = self.prices.get(symbol, inst.start_price)
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"{symbol}: opening price must be positive, not {price!r}")
            self._states[symbol] = _SymbolState(inst, rng, price)
        step = self.step
        self._next = GRID_EPOCH + ((self.start.astimezone(UTC) - GRID_EPOCH) // step) * step
        self._skip_closed()

    @property
    def step(self) -> timedelta:
        """The bar length."""
        return TIMEFRAME_DELTAS[self.timeframe]

    @property
    def next_time(self) -> datetime:
        """Open time of the next bar `next_bars()` returns."""
        return self._next

    def _skip_closed(self) -> None:
        while self.skip_weekends and is_closed(self._next):
            self._next += self.step

    def next_bars(self) -> list[SyntheticBar]:
        """One bar per symbol at the next bar time, then advance."""
        at = self._next
        bars = [self._bar(state, at) for state in self._states.values()]
        self._next = at + self.step
        self._skip_closed()
        return bars

    def __iter__(self) -> Iterator[list[SyntheticBar]]:
        while True:
            yield self.next_bars()

    def _bars_per_day(self) -> float:
        return timedelta(days=1) / self.step

    def _switch_regime(self, state: _SymbolState) -> None:
        bars = REGIME_MEAN_BARS / max(1.0, self.step / timedelta(minutes=1))
        if state.rng.random() < 1.0 / max(bars, 2.0):
            state.regime = state.rng.choice([r for r in REGIMES if r != state.regime])

    def _update_trend(self, state: _SymbolState) -> None:
        if state.trend_left <= 0:
            state.trend = state.rng.choice((-1, 1)) * state.rng.uniform(0.0, 0.35)
            state.trend_left = int(state.rng.expovariate(1 / 150)) + 20
        state.trend_left -= 1

    def _bar(self, state: _SymbolState, at: datetime) -> SyntheticBar:
        self._switch_regime(state)
        self._update_trend(state)
        session, session_vol, session_spread = session_of(at)
        regime_vol, regime_spread = REGIMES[state.regime]
        news = self._schedule.news_intensity(at, state.inst.currencies)
        sigma = (state.inst.daily_volatility / math.sqrt(self._bars_per_day())
                 * session_vol * regime_vol * (1 + (news - 1) * 0.75))
        rng = state.rng
        shock = rng.gauss(0, 1) + (rng.gauss(0, 4) if rng.random() < 0.002 else 0.0)
        open_ = state.price
        close = open_ * math.exp(sigma * (state.trend + shock))
        wick = sigma * open_ * 0.6
        high = max(open_, close) + abs(rng.gauss(0, 1)) * wick
        low = max(min(open_, close) - abs(rng.gauss(0, 1)) * wick, open_ * 0.5)
        record = self._record(state.inst, at, (open_, high, low, close),
                              sigma, session_spread * regime_spread * news)
        state.price = record["close"]
        return SyntheticBar(record, session, state.regime, news)

    def _record(self, inst: Instrument, at: datetime, ohlc: tuple[float, float, float, float],
                sigma: float, spread_mult: float) -> dict[str, Any]:
        o, c = inst.round_price(ohlc[0]), inst.round_price(ohlc[3])
        h = max(inst.round_price(ohlc[1]), o, c)
        lo = min(inst.round_price(ohlc[2]), o, c)
        base_rate = 60 * (sigma / (inst.daily_volatility / math.sqrt(self._bars_per_day())))
        spread_points = max(1, round(inst.spread_points * spread_mult))
        return {
            "symbol": inst.symbol, "timeframe": self.timeframe, "open_time": at,
            "open": o, "high": h, "low": lo, "close": c,
            "volume": int(base_rate * self.step.total_seconds() / 60),
            "source": "synthetic", "spread": inst.points_to_price(spread_points), "closed": True,
        }


@dataclass(frozen=True)
class Resume:
    """Where a demo market starts, and at which prices."""

    start: datetime
    prices: dict[str, float]
    after: datetime | None  # the end of the newest bar already published, if any


def resume_point(published: Iterable[Mapping[str, Any] | None], symbols: Iterable[str],
                 timeframes: Iterable[str], earliest: datetime) -> Resume:
    """Start a demo market after every bar already on the bus, at its last closes.

    The synthetic feed runs ahead of the wall clock (`SYNTHETIC_SPEED` bars per bar
    length), and the worker ignores a bar older than the last one it has for that
    symbol and timeframe. Started again from the wall clock, a demo that had run an
    hour at speed 60 would publish 60 hours of bars the worker ignores: an hour with
    no idea. So it starts after the newest bar the bus holds for its symbols and
    timeframes, on a boundary of its longest timeframe (so every resampled bar is
    whole), and never before `earliest` (the warm-up start); each symbol opens at the
    close of its last bar of its finest timeframe (prices continue, no jump).
    `published` is the tail of the candle topic (None for a record that did not decode).
    """
    wanted = set(symbols)
    steps = {t: TIMEFRAME_DELTAS[t] for t in timeframes}
    if not steps:
        raise ValueError("no timeframe")
    longest = max(steps.values())
    after: datetime | None = None
    last: dict[str, tuple[timedelta, datetime, float]] = {}  # symbol -> (step, open, close)
    for bar in published:
        if bar is None or bar.get("symbol") not in wanted or bar.get("timeframe") not in steps:
            continue
        step, opened = steps[bar["timeframe"]], bar["open_time"]
        end = opened + step
        after = end if after is None or end > after else after
        seen = last.get(bar["symbol"])
        if seen is None or (step, -opened.timestamp()) < (seen[0], -seen[1].timestamp()):
            last[bar["symbol"]] = (step, opened, float(bar["close"]))
    start = earliest
    if after is not None:
        boundary = GRID_EPOCH + -((GRID_EPOCH - after) // longest) * longest
        start = max(start, boundary)
    return Resume(start, {symbol: close for symbol, (_, _, close) in last.items()}, after)
