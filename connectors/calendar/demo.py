"""The demo calendar for `make run`: the synthetic world's releases around its current time.

It publishes the releases of the day before to two days ahead of the synthetic
market's event time; a release whose time has passed carries its `actual`, which
the dedupe turns into a new record, as a real provider would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectors.calendar.parse import ParsedEvents, make_event
from connectors.core.clock import Clock
from connectors.market.schedule import DemoSchedule, ScheduledEvent


class DemoCalendarProvider:
    """A `CalendarProvider` over `DemoSchedule`, driven by the market's event time."""

    source = "demo"

    def __init__(self, schedule: DemoSchedule, event_time: Clock, captured: Clock) -> None:
        self.schedule = schedule
        self.event_time = event_time
        self.captured = captured

    def _record(self, event: ScheduledEvent, released: bool) -> dict[str, Any]:
        raw = {"previous": event.previous_raw, "forecast": event.forecast_raw,
               "actual": event.actual_raw if released else None}
        return make_event(currency=event.currency, title=event.title, impact=event.impact,
                          event_time=event.at, all_day=False, raw=raw, source=self.source,
                          captured_at=self.captured())

    def fetch(self) -> ParsedEvents:
        """The window of releases around the market's current time."""
        now = self.event_time()
        events = self.schedule.between(now - timedelta(days=1), now + timedelta(days=2))
        return ParsedEvents(events=[self._record(e, e.at <= now) for e in events])
