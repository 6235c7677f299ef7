"""Incremental indicators: one candle in, the latest indicator values out, in O(1).

Each indicator takes one value (or one bar) per call and keeps only fixed-size state (a few
floats, running sums, ring buffers), never the history. The arithmetic follows TA-Lib step by
step (same seeds, same warm-up, same order of operations), so a live stream and a TA-Lib batch
over the same candles agree to the last few bits (TA-Lib keeps some intermediates in higher
precision), and a strategy researched on TA-Lib output means the same thing live.

Every indicator can `undo()` its last update, one level deep: MT5 re-sends the forming bar with
the same open time, and its new version must be computed as if the first had never arrived.
`to_state()` returns plain JSON-ready data (floats survive `json` exactly) and `from_state()`
rebuilds an indicator that continues bit-identically, so a table or changelog can carry it.

Pure: no I/O, no clock, no randomness. Time comes from the candle.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Self

from streams.core.market import TIMEFRAMES, Candle, IndicatorValues, InvalidCandle

__all__ = [
    "ATR",
    "MACD",
    "RSI",
    "SMA",
    "DayMove",
    "EngineCounters",
    "IndicatorEngine",
    "IndicatorUpdate",
    "SwingRange",
    "UpdateStatus",
]

State = dict[str, Any]

# TA-Lib's TA_IS_ZERO: RSI reports 0 when average gain + average loss is below this.
_TA_LIB_ZERO = 1e-8
_ONE_DAY = timedelta(days=1)
_LARGEST_FLOAT = sys.float_info.max
_STATE_VERSION = 1  # of IndicatorEngine.to_state()


def _check_period(name: str, period: int, minimum: int = 1) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {period!r}")


def _undo_state(count: int | None, *values: float) -> list[Any] | None:
    """The undo record as state: None when there is nothing to undo."""
    return None if count is None else [count, *values]


def _nothing_to_undo(indicator: object) -> RuntimeError:
    return RuntimeError(f"{type(indicator).__name__}: nothing to undo (one level only)")


class SMA:
    """Simple moving average of the last `period` values.

    A ring buffer and a running sum make each update O(1). A running sum drifts as rounding
    errors pile up over a long series, so the sum is recomputed exactly (`math.fsum`) every time
    the ring wraps: an error never outlives `period` updates, however long the series runs.
    """

    __slots__ = (
        "period",
        "_window",
        "_index",
        "_count",
        "_total",
        "_undo_count",
        "_undo_slot",
        "_undo_total",
    )

    def __init__(self, period: int) -> None:
        _check_period("period", period)
        self.period = period
        self._window = [0.0] * period
        self._index = 0  # the slot the next value overwrites
        self._count = 0  # values seen, capped at `period`
        self._total = 0.0
        # What the last update changed; `_undo_count` None means there is nothing to undo.
        self._undo_count: int | None = None
        self._undo_slot = 0.0
        self._undo_total = 0.0

    @property
    def initialized(self) -> bool:
        """True once `period` values have been seen."""
        return self._count == self.period

    def update(self, value: float) -> float | None:
        """Add the next value; the mean of the last `period` values, or None while warming up."""
        period = self.period
        window = self._window
        index = self._index
        count = self._count
        total = self._total
        old = window[index]
        self._undo_count = count
        self._undo_slot = old
        self._undo_total = total
        window[index] = value
        index += 1
        if index == period:
            index = 0
            total = math.fsum(window)
        else:
            total += value - old
        self._index = index
        self._total = total
        if count < period:
            count += 1
            self._count = count
            if count < period:
                return None
        return total / period

    def undo(self) -> None:
        """Revert the last `update` exactly (one level deep)."""
        if self._undo_count is None:
            raise _nothing_to_undo(self)
        index = (self._index or self.period) - 1
        self._window[index] = self._undo_slot
        self._index = index
        self._count = self._undo_count
        self._total = self._undo_total
        self._undo_count = None

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it."""
        return {
            "period": self.period,
            "window": list(self._window),
            "index": self._index,
            "count": self._count,
            "total": self._total,
            "undo": _undo_state(self._undo_count, self._undo_slot, self._undo_total),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output."""
        sma = cls(state["period"])
        window = [float(value) for value in state["window"]]
        if len(window) != sma.period:
            raise ValueError(f"SMA window has {len(window)} values, period is {sma.period}")
        sma._window = window
        sma._index = state["index"]
        sma._count = state["count"]
        sma._total = state["total"]
        if state["undo"] is not None:
            sma._undo_count, sma._undo_slot, sma._undo_total = state["undo"]
        return sma


class RSI:
    """Relative strength index with Wilder smoothing, seeded and computed as TA-Lib does.

    The first averages are the simple means of the first `period` changes (so the first value
    comes with the `period + 1`-th close); after that each average is
    `(previous * (period - 1) + change) / period`, in that order of operations.
    """

    __slots__ = (
        "period",
        "_period_f",
        "_smoothing",
        "_count",
        "_previous",
        "_gain",
        "_loss",
        "_undo_count",
        "_undo_previous",
        "_undo_gain",
        "_undo_loss",
    )

    def __init__(self, period: int = 14) -> None:
        _check_period("period", period, minimum=2)
        self.period = period
        self._period_f = float(period)
        self._smoothing = float(period - 1)
        self._count = 0  # closes seen, capped at period + 1
        self._previous = 0.0  # the last close
        # Running sums of gains and losses while warming up, Wilder averages afterwards.
        self._gain = 0.0
        self._loss = 0.0
        self._undo_count: int | None = None  # None: nothing to undo
        self._undo_previous = 0.0
        self._undo_gain = 0.0
        self._undo_loss = 0.0

    @property
    def initialized(self) -> bool:
        """True once the first value has been produced."""
        return self._count > self.period

    def update(self, value: float) -> float | None:
        """Add the next close; the RSI in [0, 100], or None while warming up."""
        count = self._count
        previous = self._previous
        gain = self._gain
        loss = self._loss
        self._undo_count = count
        self._undo_previous = previous
        self._undo_gain = gain
        self._undo_loss = loss
        self._previous = value
        change = value - previous
        if count > self.period:
            gain *= self._smoothing
            loss *= self._smoothing
            if change < 0:
                loss -= change
            else:
                gain += change
            gain /= self._period_f
            loss /= self._period_f
        else:
            if count == 0:
                self._count = 1
                return None
            if change < 0:
                loss -= change
            else:
                gain += change
            count += 1
            self._count = count
            if count <= self.period:
                self._gain = gain
                self._loss = loss
                return None
            gain /= self._period_f
            loss /= self._period_f
        self._gain = gain
        self._loss = loss
        total = gain + loss
        if -_TA_LIB_ZERO < total < _TA_LIB_ZERO:
            return 0.0
        return 100.0 * (gain / total)

    def undo(self) -> None:
        """Revert the last `update` exactly (one level deep)."""
        if self._undo_count is None:
            raise _nothing_to_undo(self)
        self._count = self._undo_count
        self._previous = self._undo_previous
        self._gain = self._undo_gain
        self._loss = self._undo_loss
        self._undo_count = None

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it."""
        return {
            "period": self.period,
            "count": self._count,
            "previous": self._previous,
            "gain": self._gain,
            "loss": self._loss,
            "undo": _undo_state(
                self._undo_count, self._undo_previous, self._undo_gain, self._undo_loss
            ),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output."""
        rsi = cls(state["period"])
        rsi._count = state["count"]
        rsi._previous = state["previous"]
        rsi._gain = state["gain"]
        rsi._loss = state["loss"]
        if state["undo"] is not None:
            rsi._undo_count, rsi._undo_previous, rsi._undo_gain, rsi._undo_loss = state["undo"]
        return rsi


class MACD:
    """MACD line, signal and histogram, seeded exactly like TA-Lib's `MACD`.

    TA-Lib seeds every EMA with the simple mean of its first inputs, and starts the fast EMA on
    the bar where the slow one starts: both seeds land on bar `slow - 1`, the fast seed being the
    mean of the `fast` closes that end there (not of the first `fast` closes). The signal EMA is
    seeded with the mean of the first `signal` MACD values, and TA-Lib reports none of the three
    outputs before that bar, so neither do we.
    """

    __slots__ = (
        "fast_period",
        "slow_period",
        "signal_period",
        "_k_fast",
        "_k_slow",
        "_k_signal",
        "_ready",
        "_count",
        "_fast",
        "_slow",
        "_signal",
        "_undo_count",
        "_undo_fast",
        "_undo_slow",
        "_undo_signal",
    )

    def __init__(
        self, fast_period: int = 12, slow_period: int = 26, signal_period: int = 9
    ) -> None:
        _check_period("fast_period", fast_period, minimum=2)
        _check_period("slow_period", slow_period, minimum=2)
        _check_period("signal_period", signal_period, minimum=2)
        if fast_period >= slow_period:
            raise ValueError(f"fast_period {fast_period} must be below slow_period {slow_period}")
        self.fast_period = fast_period
        self.slow_period = slow_period
        self.signal_period = signal_period
        # TA-Lib's PER_TO_K: 2 / (period + 1).
        self._k_fast = 2.0 / (fast_period + 1)
        self._k_slow = 2.0 / (slow_period + 1)
        self._k_signal = 2.0 / (signal_period + 1)
        self._ready = slow_period + signal_period - 1  # closes needed before the first output
        self._count = 0  # closes seen, capped at `_ready`
        # While warming up these hold the running sums each EMA is seeded with, then the EMAs.
        self._fast = 0.0
        self._slow = 0.0
        self._signal = 0.0
        self._undo_count: int | None = None  # None: nothing to undo
        self._undo_fast = 0.0
        self._undo_slow = 0.0
        self._undo_signal = 0.0

    @property
    def initialized(self) -> bool:
        """True once the first (line, signal, histogram) has been produced."""
        return self._count == self._ready

    def update(self, value: float) -> tuple[float, float, float] | None:
        """Add the next close; `(macd, signal, histogram)`, or None while warming up."""
        count = self._count
        fast = self._fast
        slow = self._slow
        signal = self._signal
        self._undo_count = count
        self._undo_fast = fast
        self._undo_slow = slow
        self._undo_signal = signal
        if count != self._ready:
            return self._warm_up(value, count, fast, slow, signal)
        # TA-Lib's EMA step: ((value - ema) * k) + ema.
        fast += (value - fast) * self._k_fast
        slow += (value - slow) * self._k_slow
        line = fast - slow
        signal += (line - signal) * self._k_signal
        self._fast = fast
        self._slow = slow
        self._signal = signal
        return line, signal, line - signal

    def _warm_up(
        self, value: float, count: int, fast: float, slow: float, signal: float
    ) -> tuple[float, float, float] | None:
        result = None
        slow_period = self.slow_period
        if count < slow_period:
            slow += value
            if count >= slow_period - self.fast_period:
                fast += value
            if count == slow_period - 1:
                fast /= self.fast_period
                slow /= slow_period
                signal = fast - slow  # the running sum of MACD values starts with the first
        else:
            fast += (value - fast) * self._k_fast
            slow += (value - slow) * self._k_slow
            signal += fast - slow
            if count == self._ready - 1:
                line = fast - slow
                signal /= self.signal_period
                result = (line, signal, line - signal)
        self._count = count + 1
        self._fast = fast
        self._slow = slow
        self._signal = signal
        return result

    def undo(self) -> None:
        """Revert the last `update` exactly (one level deep)."""
        if self._undo_count is None:
            raise _nothing_to_undo(self)
        self._count = self._undo_count
        self._fast = self._undo_fast
        self._slow = self._undo_slow
        self._signal = self._undo_signal
        self._undo_count = None

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it."""
        return {
            "fast_period": self.fast_period,
            "slow_period": self.slow_period,
            "signal_period": self.signal_period,
            "count": self._count,
            "fast": self._fast,
            "slow": self._slow,
            "signal": self._signal,
            "undo": _undo_state(
                self._undo_count, self._undo_fast, self._undo_slow, self._undo_signal
            ),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output."""
        macd = cls(state["fast_period"], state["slow_period"], state["signal_period"])
        macd._count = state["count"]
        macd._fast = state["fast"]
        macd._slow = state["slow"]
        macd._signal = state["signal"]
        if state["undo"] is not None:
            macd._undo_count, macd._undo_fast, macd._undo_slow, macd._undo_signal = state["undo"]
        return macd


class ATR:
    """Average true range with Wilder smoothing, seeded and computed as TA-Lib does.

    TA-Lib has no true range for the first bar (there is no previous close), so the first ATR
    is the simple mean of the true ranges of bars 1..period and arrives with bar `period`.
    """

    __slots__ = (
        "period",
        "_period_f",
        "_smoothing",
        "_count",
        "_previous_close",
        "_atr",
        "_undo_count",
        "_undo_previous_close",
        "_undo_atr",
    )

    def __init__(self, period: int = 14) -> None:
        _check_period("period", period, minimum=2)
        self.period = period
        self._period_f = float(period)
        self._smoothing = float(period - 1)
        self._count = 0  # bars seen, capped at period + 1
        self._previous_close = 0.0
        self._atr = 0.0  # the running sum of true ranges while warming up
        self._undo_count: int | None = None  # None: nothing to undo
        self._undo_previous_close = 0.0
        self._undo_atr = 0.0

    @property
    def initialized(self) -> bool:
        """True once the first value has been produced."""
        return self._count > self.period

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add the next bar; the ATR, or None while warming up."""
        count = self._count
        previous = self._previous_close
        atr = self._atr
        self._undo_count = count
        self._undo_previous_close = previous
        self._undo_atr = atr
        self._previous_close = close
        if count == 0:
            self._count = 1
            return None
        true_range = high - low
        from_high = abs(previous - high)
        if from_high > true_range:
            true_range = from_high
        from_low = abs(previous - low)
        if from_low > true_range:
            true_range = from_low
        if count > self.period:
            atr = (atr * self._smoothing + true_range) / self._period_f
            self._atr = atr
            return atr
        atr += true_range
        count += 1
        self._count = count
        if count <= self.period:
            self._atr = atr
            return None
        atr /= self._period_f
        self._atr = atr
        return atr

    def undo(self) -> None:
        """Revert the last `update` exactly (one level deep)."""
        if self._undo_count is None:
            raise _nothing_to_undo(self)
        self._count = self._undo_count
        self._previous_close = self._undo_previous_close
        self._atr = self._undo_atr
        self._undo_count = None

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it."""
        return {
            "period": self.period,
            "count": self._count,
            "previous_close": self._previous_close,
            "atr": self._atr,
            "undo": _undo_state(self._undo_count, self._undo_previous_close, self._undo_atr),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output."""
        atr = cls(state["period"])
        atr._count = state["count"]
        atr._previous_close = state["previous_close"]
        atr._atr = state["atr"]
        if state["undo"] is not None:
            atr._undo_count, atr._undo_previous_close, atr._undo_atr = state["undo"]
        return atr


class SwingRange:
    """Highest high and lowest low of the last `window` bars (TA-Lib's MAX/MIN on high/low).

    Monotonic deques give O(1) amortised updates: the max deque holds, oldest first, the highs
    that no later high in the window exceeds, so its head is the window's maximum (the min deque
    mirrors it). The ring buffers are the truth; the deques are derived from them, which is how
    `undo` and `from_state` rebuild them.
    """

    __slots__ = (
        "window",
        "_highs",
        "_lows",
        "_index",
        "_count",
        "_max_queue",
        "_min_queue",
        "_undo_count",
        "_undo_high",
        "_undo_low",
    )

    def __init__(self, window: int = 20) -> None:
        _check_period("window", window)
        self.window = window
        self._highs = [0.0] * window
        self._lows = [0.0] * window
        self._index = 0  # the slot the next bar overwrites
        self._count = 0  # bars seen, capped at `window`
        self._max_queue: deque[float] = deque()
        self._min_queue: deque[float] = deque()
        # What the last update overwrote; `_undo_count` None means there is nothing to undo.
        self._undo_count: int | None = None
        self._undo_high = 0.0
        self._undo_low = 0.0

    @property
    def initialized(self) -> bool:
        """True once `window` bars have been seen."""
        return self._count == self.window

    def update(self, high: float, low: float) -> tuple[float, float] | None:
        """Add the next bar; `(swing_high, swing_low)`, or None until `window` bars are in."""
        index = self._index
        count = self._count
        highs = self._highs
        lows = self._lows
        max_queue = self._max_queue
        min_queue = self._min_queue
        old_high = highs[index]
        old_low = lows[index]
        self._undo_count = count
        self._undo_high = old_high
        self._undo_low = old_low
        if count == self.window:
            # The bar leaving the window heads its deque exactly when it is its extreme.
            if max_queue[0] == old_high:
                max_queue.popleft()
            if min_queue[0] == old_low:
                min_queue.popleft()
        else:
            count += 1
            self._count = count
        highs[index] = high
        lows[index] = low
        while max_queue and max_queue[-1] < high:
            max_queue.pop()
        max_queue.append(high)
        while min_queue and min_queue[-1] > low:
            min_queue.pop()
        min_queue.append(low)
        index += 1
        self._index = 0 if index == self.window else index
        if count < self.window:
            return None
        return max_queue[0], min_queue[0]

    def undo(self) -> None:
        """Revert the last `update` exactly (one level deep); O(window)."""
        if self._undo_count is None:
            raise _nothing_to_undo(self)
        index = (self._index or self.window) - 1
        self._highs[index] = self._undo_high
        self._lows[index] = self._undo_low
        self._index = index
        self._count = self._undo_count
        self._undo_count = None
        self._rebuild_queues()

    def _rebuild_queues(self) -> None:
        if self._count < self.window:
            order = range(self._count)
        else:
            order = range(self._index, self._index + self.window)
        max_queue: deque[float] = deque()
        min_queue: deque[float] = deque()
        for position in order:
            high = self._highs[position % self.window]
            low = self._lows[position % self.window]
            while max_queue and max_queue[-1] < high:
                max_queue.pop()
            max_queue.append(high)
            while min_queue and min_queue[-1] > low:
                min_queue.pop()
            min_queue.append(low)
        self._max_queue = max_queue
        self._min_queue = min_queue

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it."""
        return {
            "window": self.window,
            "highs": list(self._highs),
            "lows": list(self._lows),
            "index": self._index,
            "count": self._count,
            "undo": _undo_state(self._undo_count, self._undo_high, self._undo_low),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output."""
        swing = cls(state["window"])
        highs = [float(value) for value in state["highs"]]
        lows = [float(value) for value in state["lows"]]
        if len(highs) != swing.window or len(lows) != swing.window:
            raise ValueError(f"swing buffers do not hold {swing.window} bars")
        swing._highs = highs
        swing._lows = lows
        swing._index = state["index"]
        swing._count = state["count"]
        if state["undo"] is not None:
            swing._undo_count, swing._undo_high, swing._undo_low = state["undo"]
        swing._rebuild_queues()
        return swing


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"state time {text!r} has no timezone")
    return moment


class DayMove:
    """Open of the first bar of the bar's UTC day, and the close's move from it in percent."""

    __slots__ = (
        "_day_start",
        "_day_end",
        "_day_open",
        "_can_undo",
        "_undo_day_start",
        "_undo_day_open",
    )

    def __init__(self) -> None:
        self._day_start: datetime | None = None  # UTC midnight of the current day
        self._day_end: datetime | None = None
        self._day_open = 0.0
        self._can_undo = False
        self._undo_day_start: datetime | None = None
        self._undo_day_open = 0.0

    @property
    def initialized(self) -> bool:
        """True once a bar has been seen."""
        return self._day_start is not None

    def update(self, open_time: datetime, open_price: float, close: float) -> tuple[float, float]:
        """Add the next bar; `(day_open, pct_move_today)`. `open_time` must be timezone-aware."""
        day_start = self._day_start
        day_end = self._day_end
        day_open = self._day_open
        self._can_undo = True
        self._undo_day_start = day_start
        self._undo_day_open = day_open
        if day_start is None or day_end is None or not (day_start <= open_time < day_end):
            day_start = datetime.combine(open_time.astimezone(UTC).date(), time(), UTC)
            self._day_start = day_start
            self._day_end = day_start + _ONE_DAY
            self._day_open = day_open = open_price
        return day_open, (close - day_open) / day_open * 100.0

    def undo(self) -> None:
        """Revert the last `update` exactly (one level deep)."""
        if not self._can_undo:
            raise _nothing_to_undo(self)
        self._set_day(self._undo_day_start, self._undo_day_open)
        self._can_undo = False

    def _set_day(self, day_start: datetime | None, day_open: float) -> None:
        self._day_start = day_start
        self._day_end = None if day_start is None else day_start + _ONE_DAY
        self._day_open = day_open

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it."""
        undo = [_iso(self._undo_day_start), self._undo_day_open] if self._can_undo else None
        return {"day_start": _iso(self._day_start), "day_open": self._day_open, "undo": undo}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output."""
        day = cls()
        day._set_day(_parse_iso(state["day_start"]), state["day_open"])
        undo = state["undo"]
        if undo is not None:
            day._can_undo = True
            day._undo_day_start = _parse_iso(undo[0])
            day._undo_day_open = undo[1]
        return day


class UpdateStatus(StrEnum):
    """What the engine did with a candle."""

    ACCEPTED = "accepted"  # a new bar
    REPLACED = "replaced"  # the forming bar, re-sent with the same open time
    IGNORED = "ignored"  # older than the last bar: out of order
    REJECTED = "rejected"  # invalid, or for another symbol/timeframe


class IndicatorUpdate(NamedTuple):
    """The engine's answer to one candle.

    `values` is set when the candle was accepted or replaced the forming bar, None otherwise;
    `reason` says why a candle was ignored or rejected. A named tuple rather than a dataclass
    because one is built per candle on the hot path.
    """

    status: UpdateStatus
    values: IndicatorValues | None
    reason: str | None = None


_ACCEPTED = UpdateStatus.ACCEPTED
_REPLACED = UpdateStatus.REPLACED
_new_tuple = tuple.__new__


class EngineCounters(NamedTuple):
    """What an engine has done with the candles it was given."""

    accepted: int
    replaced: int
    ignored_out_of_order: int
    gaps: int
    rejected: int


_VALUE_FIELDS = (
    "symbol",
    "timeframe",
    "open_time",
    "close",
    "spread",
    "rsi_14",
    "sma_50",
    "sma_200",
    "macd",
    "macd_signal",
    "macd_hist",
    "prev_macd_hist",
    "atr_14",
    "day_open",
    "pct_move_today",
    "swing_high",
    "swing_low",
)


class _ValuesDraft:
    """A mutable twin of `IndicatorValues` that turns into one once filled in.

    The frozen dataclass's `__init__` goes through `object.__setattr__` once per field, which
    costs a third of an engine update. This twin has the very same slots, so plain attribute
    stores fill it and one `__class__` assignment (allowed between identical slot layouts)
    makes it a genuine, frozen `IndicatorValues`. `_check_values_draft` proves it at import.
    """

    __slots__ = _VALUE_FIELDS

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        open_time: datetime,
        close: float,
        spread: float,
        rsi_14: float | None,
        sma_50: float | None,
        sma_200: float | None,
        macd: float | None,
        macd_signal: float | None,
        macd_hist: float | None,
        prev_macd_hist: float | None,
        atr_14: float | None,
        day_open: float | None,
        pct_move_today: float | None,
        swing_high: float | None,
        swing_low: float | None,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.open_time = open_time
        self.close = close
        self.spread = spread
        self.rsi_14 = rsi_14
        self.sma_50 = sma_50
        self.sma_200 = sma_200
        self.macd = macd
        self.macd_signal = macd_signal
        self.macd_hist = macd_hist
        self.prev_macd_hist = prev_macd_hist
        self.atr_14 = atr_14
        self.day_open = day_open
        self.pct_move_today = pct_move_today
        self.swing_high = swing_high
        self.swing_low = swing_low
        self.__class__ = IndicatorValues  # type: ignore[assignment]


def _check_values_draft() -> None:
    """Fail at import, not in production, if `IndicatorValues` no longer matches the draft."""
    fields = tuple(field.name for field in dataclasses.fields(IndicatorValues))
    if fields != _VALUE_FIELDS or IndicatorValues.__slots__ != _VALUE_FIELDS:
        raise RuntimeError(f"IndicatorValues fields changed to {fields}; update _VALUE_FIELDS")
    if hasattr(IndicatorValues, "__post_init__"):
        raise RuntimeError("IndicatorValues has a __post_init__ that the draft would skip")
    sample: dict[str, Any] = {name: float(index) for index, name in enumerate(_VALUE_FIELDS)}
    sample.update(symbol="EURUSD", timeframe="M1", open_time=datetime(2026, 1, 1, tzinfo=UTC))
    if _ValuesDraft(**sample) != IndicatorValues(**sample):
        raise RuntimeError("_ValuesDraft does not build the same IndicatorValues")


_check_values_draft()


def _plainly_valid(candle: Candle) -> bool:
    """A quick test that passes only candles `Candle.validate` accepts (not all of them).

    `validate()` costs as much as three or four indicators, so a candle that plainly satisfies
    it (of the right symbol and timeframe, checked by the caller) skips the call. Any other
    candle goes through `validate()`, which keeps the last word and gives the reason. A chained
    comparison is False when a NaN is involved, and the upper bound excludes infinity.
    """
    low = candle.low
    high = candle.high
    open_price = candle.open
    close = candle.close
    return (
        0.0 <= low <= open_price <= high <= _LARGEST_FLOAT
        and low <= close <= high
        and open_price > 0.0
        and close > 0.0
        and 0.0 <= candle.spread <= _LARGEST_FLOAT
        and candle.volume >= 0
        and candle.open_time.tzinfo is not None
    )


class IndicatorEngine:
    """All indicators of `IndicatorValues` for one (symbol, timeframe), fed candle by candle.

    - A candle newer than the last one is a new bar (a time gap is fine, and counted).
    - A candle with the last one's open time replaces it: MT5 re-sends the forming bar, and the
      values come out as if the first version had never arrived.
    - An older candle is ignored and counted; an invalid one, or one for another symbol or
      timeframe, is rejected with the reason. Neither touches the state.
    """

    __slots__ = (
        "symbol",
        "timeframe",
        "swing_window",
        "_bar_length",
        "_rsi",
        "_sma_50",
        "_sma_200",
        "_macd",
        "_atr",
        "_swing",
        "_day",
        "_last_open_time",
        "_hist",
        "_hist_before",
        "_accepted",
        "_replaced",
        "_ignored",
        "_gaps",
        "_rejected",
    )

    def __init__(self, symbol: str, timeframe: str, swing_window: int = 20) -> None:
        if not symbol:
            raise ValueError("symbol is empty")
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"unknown timeframe {timeframe!r}")
        self.symbol = symbol
        self.timeframe = timeframe
        self.swing_window = swing_window
        self._bar_length = TIMEFRAMES[timeframe]
        self._rsi = RSI(14)
        self._sma_50 = SMA(50)
        self._sma_200 = SMA(200)
        self._macd = MACD(12, 26, 9)
        self._atr = ATR(14)
        self._swing = SwingRange(swing_window)
        self._day = DayMove()
        self._last_open_time: datetime | None = None
        self._hist: float | None = None  # MACD histogram of the last bar
        self._hist_before: float | None = None  # ... and of the bar before it
        self._accepted = 0
        self._replaced = 0
        self._ignored = 0
        self._gaps = 0
        self._rejected = 0

    @property
    def counters(self) -> EngineCounters:
        """Accepted, replaced, ignored, gap and rejected counts since the engine began."""
        return EngineCounters(
            self._accepted, self._replaced, self._ignored, self._gaps, self._rejected
        )

    @property
    def last_open_time(self) -> datetime | None:
        """Open time of the last accepted bar."""
        return self._last_open_time

    def update(self, candle: Candle) -> IndicatorUpdate:
        """Feed one candle; see the class docstring for what happens to it."""
        if (
            candle.symbol != self.symbol
            or candle.timeframe != self.timeframe
            or not _plainly_valid(candle)
        ):
            reason = self._rejection_reason(candle)
            if reason is not None:
                self._rejected += 1
                return IndicatorUpdate(UpdateStatus.REJECTED, None, reason)
        open_time = candle.open_time
        last = self._last_open_time
        if last is None or open_time > last:
            if last is not None and open_time - last > self._bar_length:
                self._gaps += 1
            self._accepted += 1
            self._last_open_time = open_time
            self._hist_before = self._hist
            status = _ACCEPTED
        elif open_time == last:
            self._replaced += 1
            self._undo_last_bar()
            status = _REPLACED
        else:
            self._ignored += 1
            return IndicatorUpdate(
                UpdateStatus.IGNORED,
                None,
                f"open_time {open_time.isoformat()} is before the last bar {last.isoformat()}",
            )
        # tuple.__new__ skips the named tuple's Python-level __new__: a thirtieth of an update.
        return _new_tuple(IndicatorUpdate, (status, self._advance(candle), None))

    def _rejection_reason(self, candle: Candle) -> str | None:
        """Why the candle must not reach the indicators; `Candle.validate` has the last word."""
        if candle.symbol != self.symbol:
            return f"symbol {candle.symbol!r} is not this engine's {self.symbol!r}"
        if candle.timeframe != self.timeframe:
            return f"timeframe {candle.timeframe!r} is not this engine's {self.timeframe!r}"
        try:
            candle.validate()
        except InvalidCandle as invalid:
            return str(invalid)
        return None

    def _undo_last_bar(self) -> None:
        self._rsi.undo()
        self._sma_50.undo()
        self._sma_200.undo()
        self._macd.undo()
        self._atr.undo()
        self._swing.undo()
        self._day.undo()

    def _advance(self, candle: Candle) -> IndicatorValues:
        open_time = candle.open_time
        close = candle.close
        high = candle.high
        low = candle.low
        rsi_14 = self._rsi.update(close)
        sma_50 = self._sma_50.update(close)
        sma_200 = self._sma_200.update(close)
        macd = self._macd.update(close)
        if macd is None:
            macd_line = macd_signal = macd_hist = None
        else:
            macd_line, macd_signal, macd_hist = macd
        self._hist = macd_hist
        atr_14 = self._atr.update(high, low, close)
        swing = self._swing.update(high, low)
        swing_high, swing_low = (None, None) if swing is None else swing
        day_open, pct_move_today = self._day.update(open_time, candle.open, close)
        # Positional, in IndicatorValues field order: keywords would add a quarter to the update.
        return _ValuesDraft(  # type: ignore[return-value]  # it becomes an IndicatorValues
            self.symbol, self.timeframe, open_time, close, candle.spread,
            rsi_14, sma_50, sma_200, macd_line, macd_signal, macd_hist, self._hist_before,
            atr_14, day_open, pct_move_today, swing_high, swing_low,
        )  # fmt: skip

    def to_state(self) -> State:
        """Plain JSON-ready data; `from_state` continues bit-identically from it.

        Its size is fixed by the indicator periods and the swing window, never by the number of
        candles seen. It includes what is needed to replace the last bar.
        """
        return {
            "version": _STATE_VERSION,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "swing_window": self.swing_window,
            "last_open_time": _iso(self._last_open_time),
            "macd_hist": self._hist,
            "macd_hist_before": self._hist_before,
            "counters": self.counters._asdict(),
            "rsi_14": self._rsi.to_state(),
            "sma_50": self._sma_50.to_state(),
            "sma_200": self._sma_200.to_state(),
            "macd": self._macd.to_state(),
            "atr_14": self._atr.to_state(),
            "swing": self._swing.to_state(),
            "day": self._day.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from `to_state()` output (also after a JSON round trip)."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported engine state version {state.get('version')!r}")
        engine = cls(state["symbol"], state["timeframe"], state["swing_window"])
        engine._last_open_time = _parse_iso(state["last_open_time"])
        engine._hist = state["macd_hist"]
        engine._hist_before = state["macd_hist_before"]
        counters = EngineCounters(**state["counters"])
        engine._accepted = counters.accepted
        engine._replaced = counters.replaced
        engine._ignored = counters.ignored_out_of_order
        engine._gaps = counters.gaps
        engine._rejected = counters.rejected
        engine._rsi = RSI.from_state(state["rsi_14"])
        engine._sma_50 = SMA.from_state(state["sma_50"])
        engine._sma_200 = SMA.from_state(state["sma_200"])
        engine._macd = MACD.from_state(state["macd"])
        engine._atr = ATR.from_state(state["atr_14"])
        engine._swing = SwingRange.from_state(state["swing"])
        engine._day = DayMove.from_state(state["day"])
        return engine
