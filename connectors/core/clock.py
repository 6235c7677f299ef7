"""Time is an input: every connector takes a `Clock` so tests can drive it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, timezone-aware UTC (the only place connectors read it)."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, replays, the paper broker's event time)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.now = self.now + step
        return self.now

    def set(self, when: datetime) -> None:
        """Jump to a given time (never used to go back in the connectors)."""
        self.now = when
