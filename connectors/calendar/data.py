"""Calendar feeds: an HTTP-polled provider, a CSV import, and the dedupe they share.

Dedupe is on (currency, title, event time) — the event id — *and* the values:
a release seen again unchanged is dropped; the same release with a new `actual`
(or a revised forecast) is a new record. Memory is bounded: events older than
`keep` before the newest seen are forgotten. After a restart the current week is
published once more; consumers upsert on `event_id`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from connectors.calendar.parse import (
    ParsedEvents,
    detect_format,
    parse_calendar_csv,
    parse_ff_json,
    parse_ff_xml,
)
from connectors.core.clock import Clock
from connectors.core.feed import Batch
from connectors.core.http import HttpFetcher
from connectors.core.publish import Outgoing, Rejected

TOPIC = "calendar.events.v1"


class CalendarProvider(Protocol):
    """Anything that returns the current calendar as parsed events."""

    source: str

    def fetch(self) -> ParsedEvents: ...


class CalendarDedupe:
    """Remembers the last published values of each event id."""

    def __init__(self, keep: timedelta = timedelta(days=14)) -> None:
        self.keep = keep
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._times: dict[str, datetime] = {}

    @staticmethod
    def _values(event: dict[str, Any]) -> tuple[Any, ...]:
        return (event["actual_raw"], event["forecast_raw"], event["previous_raw"],
                event["impact"], event["all_day"])

    def fresh(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events that are new or changed since last time."""
        out = []
        for event in events:
            values = self._values(event)
            if self._seen.get(event["event_id"]) != values:
                self._seen[event["event_id"]] = values
                self._times[event["event_id"]] = event["event_time"]
                out.append(event)
        self._forget()
        return out

    def _forget(self) -> None:
        if not self._times:
            return
        horizon = max(self._times.values()) - self.keep
        for eid in [e for e, t in self._times.items() if t < horizon]:
            del self._times[eid], self._seen[eid]


class HttpCalendarProvider:
    """A ForexFactory-style weekly export over HTTP (JSON or XML)."""

    def __init__(self, url: str, clock: Clock, fmt: str = "auto", xml_tz: tzinfo | None = None,
                 fetcher: HttpFetcher | None = None, source: str | None = None) -> None:
        self.url = url
        self.clock = clock
        self.fmt = fmt
        self.xml_tz = xml_tz
        self.fetcher = fetcher or HttpFetcher()
        self.source = source or "forexfactory"

    def fetch(self) -> ParsedEvents:
        """GET and parse (raises on a failed GET or an unreadable document)."""
        got = self.fetcher.get(self.url)
        fmt = self.fmt if self.fmt != "auto" else detect_format(got.body, got.content_type)
        if fmt == "json":
            return parse_ff_json(got.body, self.source, self.clock())
        return parse_ff_xml(got.body, self.source, self.clock(), self.xml_tz)


class CsvCalendarProvider:
    """A CSV file with actual values (re-read on every poll, so edits are picked up)."""

    def __init__(self, path: Path, clock: Clock, tz: tzinfo, source: str = "csv") -> None:
        self.path = path
        self.clock = clock
        self.tz = tz
        self.source = source

    def fetch(self) -> ParsedEvents:
        """Read and parse the file."""
        return parse_calendar_csv(self.path.read_bytes(), self.source, self.clock(), self.tz)


class CalendarFeed:
    """The `Feed` over any calendar provider."""

    def __init__(self, name: str, provider: CalendarProvider, where: str,
                 dedupe: CalendarDedupe | None = None) -> None:
        self.name = name
        self.provider = provider
        self.where = where  # URL or path, for dead-letter headers
        self.dedupe = dedupe or CalendarDedupe()
        self._rejected: set[str] = set()

    def poll(self) -> Batch:
        """New or changed events; malformed items as rejects."""
        parsed = self.provider.fetch()
        fresh = self.dedupe.fresh(parsed.events)
        rejects = []
        for raw, err in parsed.rejects:  # a bad item stays in the export: dead-letter it once
            digest = hashlib.sha256(raw).hexdigest()
            if digest not in self._rejected:
                self._rejected.add(digest)
                rejects.append(Rejected(TOPIC, raw, err, self.where))
        return Batch(
            records=[Outgoing(TOPIC, e["currency"], e) for e in fresh],
            rejects=rejects,
            source=self.where,
        )


EventsSource = Callable[[], ParsedEvents]
