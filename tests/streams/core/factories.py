"""Candles for the decision-core tests: one valid bar, seeded random walks, and noisy streams.

Everything is deterministic: randomness comes from `random.Random(seed)`, time from `T0`.
"""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime
from typing import Any

from streams.core.market import TIMEFRAMES, Candle

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, midnight UTC


def candle(open_time: datetime = T0, close: float = 1.1, **overrides: Any) -> Candle:
    """One valid EURUSD M1 bar, its high and low just beyond open and close; override any field."""
    open_price = overrides.pop("open", close)
    fields: dict[str, Any] = {
        "symbol": "EURUSD",
        "timeframe": "M1",
        "open_time": open_time,
        "open": open_price,
        "high": max(open_price, close) * 1.001,
        "low": min(open_price, close) * 0.999,
        "close": close,
        "volume": 100,
        "spread": 0.00012,
    }
    fields.update(overrides)
    return Candle(**fields)


def random_walk(
    count: int,
    seed: int = 7,
    *,
    price: float = 1.1,
    volatility: float = 0.001,
    symbol: str = "EURUSD",
    timeframe: str = "M1",
    start: datetime = T0,
) -> list[Candle]:
    """`count` consecutive bars of a seeded geometric random walk.

    Each bar opens at the previous close; high and low reach a little beyond open and close;
    about one bar in fifty does not move at all (a quiet market, and ties for max/min).
    """
    rng = random.Random(seed)
    step = TIMEFRAMES[timeframe]
    bars = []
    for index in range(count):
        open_price = price
        if rng.random() < 0.02:
            high = low = price
        else:
            price = open_price * math.exp(rng.gauss(0.0, volatility))
            high = max(open_price, price) * (1.0 + abs(rng.gauss(0.0, volatility / 2)))
            low = min(open_price, price) * (1.0 - abs(rng.gauss(0.0, volatility / 2)))
        bars.append(
            Candle(
                symbol=symbol,
                timeframe=timeframe,
                open_time=start + index * step,
                open=open_price,
                high=high,
                low=low,
                close=price,
                volume=rng.randint(0, 5_000),
                spread=round(rng.uniform(0.00005, 0.0003), 6),
            )
        )
    return bars


def forming_version(bar: Candle, seed: int = 0) -> Candle:
    """The same bar (same open time) as an earlier tick saw it: other high, low, close."""
    rng = random.Random(seed)
    close = bar.open * (1.0 + rng.uniform(-0.002, 0.002))
    return dataclasses.replace(
        bar,
        high=max(bar.open, close) * (1.0 + rng.uniform(0.0, 0.001)),
        low=min(bar.open, close) * (1.0 - rng.uniform(0.0, 0.001)),
        close=close,
        spread=bar.spread * 2,
    )


def noisy_stream(
    bars: list[Candle],
    seed: int = 0,
    *,
    resend_probability: float = 0.3,
    stale_probability: float = 0.05,
) -> list[Candle]:
    """`bars` as MT5 delivers them: some preceded by forming versions, some stale re-deliveries.

    The final version of every bar is the one in `bars`, so an engine fed this stream must end
    with the values of an engine fed `bars` alone.
    """
    rng = random.Random(seed)
    stream: list[Candle] = []
    for index, bar in enumerate(bars):
        while rng.random() < resend_probability:
            stream.append(forming_version(bar, rng.randrange(2**32)))
        stream.append(bar)
        if index >= 2 and rng.random() < stale_probability:
            stream.append(bars[rng.randrange(index - 1)])  # older than the last bar
    return stream
