"""Higher-timeframe bars built from a lower one (the demo feed's M5, M15, H1 from M1).

A bucket is closed, and its bar published, when a base bar of the next bucket arrives
or the base bar that ends the bucket is seen. Buckets are aligned to the epoch (UTC), as
MetaTrader aligns intraday bars; prices of every timeframe come from the same path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Resampler:
    """Aggregates closed base bars into closed bars of `timeframes`."""

    def __init__(self, base: timedelta, timeframes: dict[str, timedelta]) -> None:
        for name, step in timeframes.items():
            if step <= base or step % base:
                raise ValueError(f"{name} is not a multiple of the base timeframe")
        self.base = base
        self.timeframes = timeframes
        self._open: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, bar: dict[str, Any]) -> list[dict[str, Any]]:
        """The higher-timeframe bars that `bar` (a closed base bar) completes."""
        out = []
        for name, step in self.timeframes.items():
            start = EPOCH + ((bar["open_time"] - EPOCH) // step) * step
            key = (bar["symbol"], name)
            current = self._open.get(key)
            if current is not None and current["open_time"] != start:
                out.append(current)  # a gap: the previous bucket ends without its last bar
                current = None
            if current is None:
                current = {**bar, "timeframe": name, "open_time": start, "volume": 0}
            current["high"] = max(current["high"], bar["high"])
            current["low"] = min(current["low"], bar["low"])
            current["close"] = bar["close"]
            current["spread"] = bar["spread"]
            current["volume"] = int(current["volume"]) + int(bar.get("volume") or 0)
            if bar["open_time"] + self.base >= start + step:
                out.append(current)
                self._open.pop(key, None)
            else:
                self._open[key] = current
        return out

    def add_all(self, bars: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each base bar followed by the higher bars it completes."""
        out: list[dict[str, Any]] = []
        for bar in bars:
            out.append(bar)
            out.extend(self.add(bar))
        return out
