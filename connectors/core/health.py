"""Health of one feed or connector, as published on `feeds.health.v1` (key = feed name).

The gate fails safe on a stale calendar or account feed, so the status must say
plainly whether the feed works: `ok` (last attempt succeeded), `degraded` (failing
now, but it worked before and errors are few) or `error` (never worked, or failing
repeatedly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.core.clock import Clock

ERROR_AFTER = 3  # consecutive failures before `degraded` becomes `error`


@dataclass
class Health:
    """Counters and last outcomes of one feed."""

    feed: str
    clock: Clock
    #: The time the feed's data is current at, when not the clock's: a demo world runs
    #: ahead of the wall clock, and the gate judges a calendar's freshness in its time.
    world: Clock | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    items_total: int = 0
    dead_letters_total: int = 0
    consecutive_errors: int = 0
    note: str | None = None

    def success(self, items: int = 0) -> None:
        """A poll (or broker call) worked and produced `items` records."""
        self.last_success = (self.world or self.clock)()
        self.items_total += items
        self.consecutive_errors = 0

    def failure(self, error: BaseException | str) -> None:
        """A poll failed; the message (never credentials) is kept for the operator."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.last_error = text[:1000]
        self.last_error_at = self.clock()
        self.consecutive_errors += 1

    def dead_letter(self, count: int = 1) -> None:
        """Items that went to a dead-letter topic instead of their topic."""
        self.dead_letters_total += count

    @property
    def status(self) -> str:
        """ok, degraded or error."""
        if self.note is not None:
            return "degraded"
        if self.consecutive_errors == 0:
            return "ok" if self.last_success is not None else "degraded"
        if self.last_success is None or self.consecutive_errors >= ERROR_AFTER:
            return "error"
        return "degraded"

    def record(self) -> dict[str, Any]:
        """The FeedHealth record for `feeds.health.v1`."""
        last_error = self.last_error
        if self.note is not None:
            last_error = self.note if last_error is None else f"{self.note}; {last_error}"
        return {
            "feed": self.feed,
            "status": self.status,
            "last_success": self.last_success,
            "last_error": last_error,
            "last_error_at": self.last_error_at,
            "items_total": self.items_total,
            "dead_letters_total": self.dead_letters_total,
            "reported_at": self.clock(),
        }
