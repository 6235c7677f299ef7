"""Market data as the decision core sees it: a candle in, indicator values out.

These two frozen records are the contract between the indicator engine
(`streams.core.indicators`) and everything that reads indicators (strategies,
confidence, the gate, snapshot bundles). They carry no behaviour beyond
validation; time is always the candle's own open time, timezone-aware UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

TIMEFRAMES: dict[str, timedelta] = {
    "M1": timedelta(minutes=1),
    "M5": timedelta(minutes=5),
    "M15": timedelta(minutes=15),
    "M30": timedelta(minutes=30),
    "H1": timedelta(hours=1),
    "H4": timedelta(hours=4),
    "D1": timedelta(days=1),
}


class InvalidCandle(ValueError):
    """A candle that must not reach any indicator; the message says why."""


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar. `open_time` identifies it; a bar with the same open time replaces it."""

    symbol: str
    timeframe: str
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int = 0
    spread: float = 0.0  # in price units, as quoted when the bar closed

    def validate(self) -> None:
        """Raise `InvalidCandle` naming the first problem found."""
        if not self.symbol:
            raise InvalidCandle("symbol is empty")
        if self.timeframe not in TIMEFRAMES:
            raise InvalidCandle(f"unknown timeframe {self.timeframe!r}")
        if self.open_time.tzinfo is None:
            raise InvalidCandle("open_time has no timezone")
        self._validate_prices()

    def _validate_prices(self) -> None:
        for name in ("open", "high", "low", "close", "spread"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise InvalidCandle(f"{name} is not finite: {value!r}")
            if value < 0:
                raise InvalidCandle(f"{name} is negative: {value!r}")
        if self.open <= 0 or self.close <= 0:
            raise InvalidCandle("open and close must be positive")
        if self.high < self.low:
            raise InvalidCandle(f"high {self.high} < low {self.low}")
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise InvalidCandle("open/close outside the high-low range")
        if self.volume < 0:
            raise InvalidCandle(f"volume is negative: {self.volume}")


@dataclass(frozen=True, slots=True)
class IndicatorValues:
    """Indicator values after one closed candle. `None` means "not available yet" (warm-up)."""

    symbol: str
    timeframe: str
    open_time: datetime
    close: float
    spread: float
    rsi_14: float | None = None
    sma_50: float | None = None
    sma_200: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    prev_macd_hist: float | None = None  # the previous candle's histogram, for cross detection
    atr_14: float | None = None
    day_open: float | None = None  # open of the first candle of the candle's UTC day
    pct_move_today: float | None = None  # (close - day_open) / day_open * 100
    swing_high: float | None = None  # highest high of the last `swing_window` candles
    swing_low: float | None = None  # lowest low of the last `swing_window` candles
