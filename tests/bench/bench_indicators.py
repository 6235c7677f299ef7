"""Indicator throughput: our engine and indicators against talipp and TA-Lib, in one run.

    python tests/bench/bench_indicators.py [--candles 200000] [--talib-candles 20000]

Every contender gets the same seeded random walk and computes the same set (RSI 14, SMA 50,
SMA 200, MACD 12/26/9, ATR 14); the engine also validates each candle, tracks swing high/low
and the day's move, and builds an `IndicatorValues`. Each timing is the best of `--repeat`
runs, in CPU time (`time.process_time`): the machine may be shared, and waiting for a CPU is
not the code's cost. Importable: `run()` returns the rows, `main()` prints them.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import talib
from talipp.indicators import ATR as TalippATR
from talipp.indicators import MACD as TalippMACD
from talipp.indicators import RSI as TalippRSI
from talipp.indicators import SMA as TalippSMA
from talipp.ohlcv import OHLCV

if __package__ in (None, ""):  # run as a script: make `tests.` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streams.core.indicators import ATR, MACD, RSI, SMA, IndicatorEngine  # noqa: E402
from streams.core.market import Candle  # noqa: E402
from tests.streams.core.factories import random_walk  # noqa: E402

TARGET_RATIO = 3.0
SEED = 2026


class Row(NamedTuple):
    """One contender's best timing."""

    name: str
    candles: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.candles / self.seconds

    @property
    def microseconds(self) -> float:
        return self.seconds / self.candles * 1e6


def time_engine(candles: Sequence[Candle]) -> float:
    """Seconds for a fresh `IndicatorEngine` to take every candle."""
    engine = IndicatorEngine(candles[0].symbol, candles[0].timeframe)
    update = engine.update
    start = time.process_time()
    for candle in candles:
        update(candle)
    return time.process_time() - start


def time_our_indicators(candles: Sequence[Candle]) -> float:
    """Seconds for our five indicator objects, fed directly, to take every candle."""
    rsi, sma_50, sma_200, macd, atr = RSI(14), SMA(50), SMA(200), MACD(12, 26, 9), ATR(14)
    start = time.process_time()
    for candle in candles:
        close = candle.close
        rsi.update(close)
        sma_50.update(close)
        sma_200.update(close)
        macd.update(close)
        atr.update(candle.high, candle.low, close)
    return time.process_time() - start


def time_talipp(candles: Sequence[Candle]) -> float:
    """Seconds for talipp's incremental `.add()` on the same five indicators.

    Its ATR takes OHLCV objects; they are built before the clock starts, in talipp's favour.
    """
    bars = [OHLCV(c.open, c.high, c.low, c.close, c.volume) for c in candles]
    rsi, sma_50, sma_200 = TalippRSI(14), TalippSMA(50), TalippSMA(200)
    macd, atr = TalippMACD(12, 26, 9), TalippATR(14)
    start = time.process_time()
    for bar in bars:
        close = bar.close
        rsi.add(close)
        sma_50.add(close)
        sma_200.add(close)
        macd.add(close)
        atr.add(bar)
    return time.process_time() - start


def time_talib_window(candles: Sequence[Candle], window: int = 300) -> float:
    """Seconds for TA-Lib to recompute the set over the last `window` bars at every candle.

    What a batch library costs when used live: 300 bars are enough for SMA 200 and for the
    EMA-based indicators to have forgotten their seed.
    """
    high = np.array([c.high for c in candles])
    low = np.array([c.low for c in candles])
    close = np.array([c.close for c in candles])
    start = time.process_time()
    for end in range(window, len(candles) + 1):
        begin = end - window
        closes = close[begin:end]
        talib.RSI(closes, 14)
        talib.SMA(closes, 50)
        talib.SMA(closes, 200)
        talib.MACD(closes, 12, 26, 9)
        talib.ATR(high[begin:end], low[begin:end], closes, 14)
    return time.process_time() - start


def run(candle_count: int = 200_000, talib_candles: int = 20_000, repeat: int = 3) -> list[Row]:
    """Time every contender on the same seeded series; rows in the printed order.

    Repeats are interleaved (each round times every contender once) and the best round counts,
    so a neighbour process slowing the machine for a while hurts all contenders alike.
    """
    candles = random_walk(candle_count, SEED)
    talib_series = candles[: talib_candles + 299]
    contenders: list[tuple[str, int, Callable[[], float]]] = [
        ("ours: IndicatorEngine (full set)", candle_count, lambda: time_engine(candles)),
        ("ours: RSI+SMA50+SMA200+MACD+ATR", candle_count, lambda: time_our_indicators(candles)),
        ("talipp: RSI+SMA50+SMA200+MACD+ATR", candle_count, lambda: time_talipp(candles)),
        ("TA-Lib: same set, last 300 bars", talib_candles, lambda: time_talib_window(talib_series)),
    ]
    best = [math.inf] * len(contenders)
    for _ in range(repeat):
        for position, (_, _, timing) in enumerate(contenders):
            best[position] = min(best[position], timing())
    return [
        Row(name, count, seconds)
        for (name, count, _), seconds in zip(contenders, best, strict=True)
    ]


def report(rows: Sequence[Row]) -> str:
    """The table, the ratios to talipp, and whether the target is met."""
    engine, indicators, talipp_row, _ = rows
    lines = [
        f"python {platform.python_version()} on {platform.machine()}, "
        f"os.cpu_count() = {os.cpu_count()}",
        "",
        f"{'contender':<36} {'candles':>9} {'seconds':>8} {'updates/s':>11} {'us/update':>10}",
        "-" * 78,
    ]
    for row in rows:
        lines.append(
            f"{row.name:<36} {row.candles:>9,} {row.seconds:>8.3f} "
            f"{row.per_second:>11,.0f} {row.microseconds:>10.2f}"
        )
    lines.append("")
    for row in (engine, indicators):
        ratio = row.per_second / talipp_row.per_second
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        lines.append(
            f"{row.name} / talipp = {ratio:.2f}x  (target >= {TARGET_RATIO:g}x: {verdict})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=200_000)
    parser.add_argument("--talib-candles", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    print(report(run(options.candles, options.talib_candles, options.repeat)))


if __name__ == "__main__":
    main()
