"""Pure parsers from calendar exports to `calendar.events.v1` records.

- ForexFactory-style JSON: a list of objects with `title`, `country` (the
  currency), `date` (ISO-8601 with offset), `impact` (High/Medium/Low/Holiday),
  `forecast`, `previous` (and sometimes `actual`).
- ForexFactory-style XML: `<weeklyevents><event>` with `<date>MM-DD-YYYY</date>`
  and `<time>8:30am | All Day | Tentative | ...</time>` in a timezone that the
  export does not state: it **must be configured** (`tz` argument), never guessed.
  Anything that is not a clock time makes an all-day event at local midnight.
- CSV with `actual`: header `datetime,currency,impact,title,actual,forecast,previous`
  (datetime ISO-8601; naive values read in the configured timezone).

Raw strings are kept next to parsed numbers: `0.3%` -> 0.3, `-1.2K` -> -1200,
`215K` -> 215000, `1.5M` -> 1500000, `<0.50%` -> 0.5.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any
from xml.etree import ElementTree as ET

from connectors.core.publish import ItemError

IMPACTS = {"high": "high", "medium": "medium", "low": "low", "holiday": "holiday",
           "non-economic": "low", "none": "low"}
_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
_NUMBER = re.compile(r"^[<>≈~]?\s*([+-]?\d+(?:\.\d+)?)\s*([KMBT])?\s*%?$", re.IGNORECASE)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})\s*([ap]m)$", re.IGNORECASE)


class MissingTimezone(ValueError):
    """The XML export has no timezone of its own; one must be configured."""


@dataclass
class ParsedEvents:
    """Events in source order plus the raw items that were refused (for the DLQ)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[bytes, ItemError]] = field(default_factory=list)


def parse_number(raw: str | None) -> float | None:
    """A provider's value as a number (K/M/B/T and % understood); None when not a number."""
    if raw is None:
        return None
    text = raw.strip().replace(",", "").replace("\u2212", "-")
    if not text:
        return None
    match = _NUMBER.match(text)
    if match is None:
        return None
    value = float(match.group(1))
    suffix = match.group(2)
    return value * _SUFFIX[suffix.upper()] if suffix else value


def event_id(currency: str, title: str, event_time: datetime) -> str:
    """Stable id of a release: the same (currency, title, time) gives the same id."""
    key = f"{currency.upper()}|{title.strip()}|{event_time.astimezone(UTC).isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def make_event(*, currency: str | None, title: str | None, impact: str | None,
               event_time: datetime, all_day: bool, raw: Mapping[str, Any], source: str,
               captured_at: datetime) -> dict[str, Any]:
    """A CalendarEvent record; raises `ItemError` for what the topic would refuse."""
    currency = (currency or "").strip().upper()
    title = (title or "").strip()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ItemError(f"currency {currency!r} is not a 3-letter code")
    if not title:
        raise ItemError("title is empty")
    level = IMPACTS.get((impact or "").strip().lower())
    if level is None:
        raise ItemError(f"unknown impact {impact!r}")
    values = {k: _text(raw.get(k)) for k in ("previous", "forecast", "actual")}
    return {
        "event_id": event_id(currency, title, event_time),
        "event_time": event_time.astimezone(UTC), "all_day": all_day, "currency": currency,
        "impact": level, "title": title,
        "previous_raw": values["previous"], "forecast_raw": values["forecast"],
        "actual_raw": values["actual"],
        "previous": parse_number(values["previous"]), "forecast": parse_number(values["forecast"]),
        "actual": parse_number(values["actual"]), "source": source, "captured_at": captured_at,
    }


def _collect(items: Iterable[tuple[bytes, Any]], build: Any) -> ParsedEvents:
    out = ParsedEvents()
    for raw, item in items:
        try:
            out.events.append(build(item))
        except ItemError as exc:
            out.rejects.append((raw, exc))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            out.rejects.append((raw, ItemError(f"{type(exc).__name__}: {exc}")))
    return out


# --- ForexFactory JSON ---------------------------------------------------------------------
def parse_ff_json(data: bytes | str, source: str, captured_at: datetime) -> ParsedEvents:
    """The weekly JSON export (a list of event objects)."""
    items = json.loads(data)
    if not isinstance(items, list):
        raise ValueError("calendar JSON is not a list of events")

    def build(item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise ItemError("event is not an object")
        when = datetime.fromisoformat(str(item["date"]).replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ItemError(f"date {item['date']!r} has no UTC offset")
        return make_event(currency=item.get("country"), title=item.get("title"),
                          impact=item.get("impact"), event_time=when, all_day=False, raw=item,
                          source=source, captured_at=captured_at)

    return _collect(((json.dumps(i, ensure_ascii=False).encode(), i) for i in items), build)


# --- ForexFactory XML ----------------------------------------------------------------------
def xml_event_time(day: str, clock: str | None, tz: tzinfo) -> tuple[datetime, bool]:
    """(UTC time, all_day) of an XML event: `MM-DD-YYYY` and `8:30am` in `tz`."""
    month, mday, year = (int(part) for part in day.strip().split("-"))
    date_ = date(year, month, mday)
    match = _CLOCK.match((clock or "").strip())
    if match is None:  # All Day, Tentative, Day 1, empty ...
        return datetime.combine(date_, time(0), tz).astimezone(UTC), True
    hour, minute, half = int(match.group(1)) % 12, int(match.group(2)), match.group(3).lower()
    hour += 12 if half == "pm" else 0
    return datetime.combine(date_, time(hour, minute), tz).astimezone(UTC), False


def parse_ff_xml(data: bytes | str, source: str, captured_at: datetime,
                 tz: tzinfo | None) -> ParsedEvents:
    """The weekly XML export; `tz` is the timezone the export was generated in."""
    if tz is None:
        raise MissingTimezone("the XML calendar has no timezone: configure CALENDAR_XML_TIMEZONE")
    root = ET.fromstring(data)  # noqa: S314 - a configured provider, entities not expanded
    zone = tz

    def build(node: ET.Element) -> dict[str, Any]:
        fields = {child.tag: (child.text or "").strip() for child in node}
        if not fields.get("date"):
            raise ItemError("event has no date")
        when, all_day = xml_event_time(fields["date"], fields.get("time"), zone)
        return make_event(currency=fields.get("country"), title=fields.get("title"),
                          impact=fields.get("impact"), event_time=when, all_day=all_day,
                          raw=fields, source=source, captured_at=captured_at)

    return _collect(((ET.tostring(n), n) for n in root.iter("event")), build)


# --- CSV with actual -----------------------------------------------------------------------
def parse_calendar_csv(data: bytes | str, source: str, captured_at: datetime,
                       tz: tzinfo = UTC) -> ParsedEvents:
    """`datetime,currency,impact,title,actual,forecast,previous` (any column order)."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text))

    def build(row: dict[str, str]) -> dict[str, Any]:
        when = datetime.fromisoformat((row.get("datetime") or "").strip().replace("Z", "+00:00"))
        all_day = False
        if when.tzinfo is None:
            when = when.replace(tzinfo=tz)
        return make_event(currency=row.get("currency"), title=row.get("title"),
                          impact=row.get("impact"), event_time=when, all_day=all_day, raw=row,
                          source=source, captured_at=captured_at)

    rows = ({(k or "").strip().lower(): (v or "") for k, v in r.items()} for r in reader)
    return _collect(((json.dumps(r, ensure_ascii=False).encode(), r) for r in rows), build)


def detect_format(data: bytes, content_type: str = "") -> str:
    """json or xml, from the content type or the first non-blank byte."""
    if "json" in content_type:
        return "json"
    if "xml" in content_type:
        return "xml"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if head in (b"[", b"{") else "xml"
