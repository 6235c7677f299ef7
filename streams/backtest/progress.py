"""A small progress bar on stderr for long runs (replay --verify, backtest).

On a terminal it redraws one line (`\\r`) at most every `interval` seconds; elsewhere
(a log file, CI) it prints a plain line at most every `quiet_interval` seconds, so a
long run shows it is alive without flooding the log. Wall-clock time is read here, at
the edge, only to pace the drawing and show a rate; it never reaches a result.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`update(done)` as work advances, `close()` at the end (prints the final line)."""

    def __init__(self, total: int | None, label: str, unit: str = "items",
                 stream: TextIO | None = None, enabled: bool = True,
                 interval: float = 0.2, quiet_interval: float = 5.0) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else quiet_interval
        self.done = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def update(self, done: int) -> None:
        """Record progress; redraw when the last drawing is old enough."""
        self.done = done
        now = time.monotonic()
        if self.enabled and now - self._drawn >= self.interval:
            self._drawn = now
            self._draw(now, final=False)

    def advance(self, step: int = 1) -> None:
        """`update(done + step)`."""
        self.update(self.done + step)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.monotonic(), final=True)

    def line(self, now: float) -> str:
        """The text of the bar at `now` (monotonic seconds)."""
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total is None:
            return f"{self.label}: {self.done:,} {self.unit} ({_rate(rate)}/s)"
        share = min(self.done / self.total, 1.0)
        width = 28
        bar = "#" * int(share * width) + "." * (width - int(share * width))
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        return (f"{self.label} [{bar}] {share * 100:5.1f}% {self.done:,}/{self.total:,} "
                f"{self.unit} ({_rate(rate)}/s, {left:,.0f}s left)")

    def _draw(self, now: float, final: bool) -> None:
        text = self.line(now)
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _rate(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"
