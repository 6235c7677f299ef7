"""Pure parsing of RSS 2.0 / Atom documents into `news.items.v1` records.

feedparser does the hard part (encodings such as a declared windows-1252, HTML
entities, Atom vs RSS). What we add: a stable id (guid, else link, else a hash of
source and title), plain-text headline and summary, a published time (the item's,
else the feed's, else the capture time — never a crash), tags from the alias
map, and a reject (for the dead-letter topic) for an item without a headline.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser

from connectors.core.publish import ItemError, raw_json
from connectors.news.config import DEFAULT_ALIASES, Tags

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
MAX_SUMMARY = 2000


class UnreadableFeed(ValueError):
    """The document is not a feed at all (the runner counts it as a failed poll)."""


@dataclass
class ParsedNews:
    """Items in feed order, plus refused ones with their raw form."""

    items: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[bytes, ItemError]] = field(default_factory=list)


def plain(text: str | None) -> str:
    """Text without markup, entities decoded, whitespace collapsed."""
    if not text:
        return ""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def _pattern(alias: str) -> re.Pattern[str]:
    flags = re.IGNORECASE if alias == alias.lower() else 0
    return re.compile(r"(?<![\w/])" + re.escape(alias) + r"(?![\w/])", flags)


class Tagger:
    """Symbols and currencies named in a headline, by alias."""

    def __init__(self, aliases: Mapping[str, Tags] | None = None) -> None:
        self._rules = [(_pattern(a), t) for a, t in (aliases or DEFAULT_ALIASES).items()]

    def tag(self, text: str) -> tuple[list[str], list[str]]:
        """(symbols, currencies), sorted and unique."""
        symbols: set[str] = set()
        currencies: set[str] = set()
        for pattern, tags in self._rules:
            if pattern.search(text):
                symbols.update(tags.symbols)
                currencies.update(tags.currencies)
        return sorted(symbols), sorted(currencies)


def _when(entry: Mapping[str, Any], feed_time: datetime | None,
          captured_at: datetime) -> datetime:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = dict.get(entry, key)  # type: ignore[call-overload] # no feedparser aliasing
        if isinstance(parsed, time.struct_time):
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return feed_time or captured_at


def item_id(entry: Mapping[str, Any], source: str, headline: str) -> str:
    """guid, else link, else a hash of source and headline."""
    for key in ("id", "link"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
    return "sha256:" + hashlib.sha256(f"{source}|{headline}".encode()).hexdigest()[:32]


def _item(entry: Mapping[str, Any], source: str, tagger: Tagger, feed_time: datetime | None,
          captured_at: datetime) -> dict[str, Any]:
    headline = plain(entry.get("title"))
    if not headline:
        raise ItemError("item has no title")
    summary = plain(entry.get("summary")) or None
    symbols, currencies = tagger.tag(headline if summary is None else f"{headline} {summary}")
    link = entry.get("link")
    return {
        "item_id": item_id(entry, source, headline), "headline": headline[:1000],
        "source": source, "url": link.strip()[:2000] if isinstance(link, str) else None,
        "summary": summary[:MAX_SUMMARY] if summary else None, "symbols": symbols,
        "currencies": currencies, "published_at": _when(entry, feed_time, captured_at),
        "captured_at": captured_at,
    }


def parse_feed(data: bytes, source: str, captured_at: datetime,
               tagger: Tagger | None = None) -> ParsedNews:
    """An RSS/Atom document as news items; bad items become rejects, a non-feed raises."""
    doc = feedparser.parse(data)
    if not doc.entries and doc.get("bozo") and not doc.get("feed"):
        raise UnreadableFeed(f"not a feed: {doc.get('bozo_exception')}")
    tagger = tagger or Tagger()
    feed_parsed = dict.get(doc.feed, "updated_parsed") or dict.get(doc.feed, "published_parsed")
    feed_time = (datetime.fromtimestamp(calendar.timegm(feed_parsed), UTC)
                 if isinstance(feed_parsed, time.struct_time) else None)
    out = ParsedNews()
    for entry in doc.entries:
        try:
            out.items.append(_item(entry, source, tagger, feed_time, captured_at))
        except (ItemError, ValueError, TypeError, OverflowError) as exc:
            reason = exc if isinstance(exc, ItemError) else ItemError(f"{type(exc).__name__}: "
                                                                      f"{exc}")
            out.rejects.append((raw_json(dict(entry)), reason))
    return out
