"""Publishing catalog records from a connector, with dead letters for what cannot go out.

A feed has no Kafka message to dead-letter: its "source" is a URL or a file. The
headers follow the same `__connect.errors.*` convention as `topics.bus`, with the
source in place of the topic, `-1` for partition and offset (there are none) and
the stage (`parse`, `validate`) that refused the item.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from topics.bus import Headers, error_headers
from topics.catalog import Catalog, encode_key
from topics.codec import CodecError

log = logging.getLogger(__name__)


class Producer(Protocol):
    """What connectors need of `topics.bus.BusProducer` (so tests can pass a recorder)."""

    catalog: Catalog

    def send(self, logical: str, key: str, record: Mapping[str, Any],
             headers: Headers | None = None) -> None: ...

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 headers: Headers | None = None) -> None: ...

    def flush(self, timeout: float = 30.0) -> None: ...


@dataclass(frozen=True)
class Outgoing:
    """A record for a catalog topic."""

    topic: str
    key: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """An item a parser refused: its raw bytes, why, and where it came from."""

    topic: str
    raw: bytes
    reason: Exception
    source: str
    stage: str = "parse"
    key: str | None = None


class ItemError(ValueError):
    """One item of a feed is malformed (the feed goes on without it)."""


def feed_dead_letter_headers(source: str, error: Exception, stage: str, feed: str) -> Headers:
    """`__connect.errors.*` headers for an item that came from a URL or a file."""
    return error_headers(source, -1, -1, error, stage, feed)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def raw_json(item: Any) -> bytes:
    """A readable byte form of a parsed item for the dead-letter topic."""
    return json.dumps(item, default=_json_default, ensure_ascii=False, sort_keys=True).encode()


class FeedPublisher:
    """Sends records and dead letters for one feed, counting both in its health."""

    def __init__(self, producer: Producer, feed: str) -> None:
        self.producer = producer
        self.feed = feed

    def publish(self, out: Outgoing, source: str) -> bool:
        """Send one record; a record its topic refuses goes to the DLQ instead (False)."""
        try:
            self.producer.send(out.topic, out.key, out.record)
        except CodecError as exc:
            self.dead_letter(Rejected(out.topic, raw_json(out.record), exc, source, "validate",
                                      out.key))
            return False
        return True

    def dead_letter(self, item: Rejected) -> None:
        """Send a refused item's raw bytes to `<topic>.dlq` with the reason."""
        catalog = self.producer.catalog
        headers = feed_dead_letter_headers(item.source, item.reason, item.stage, self.feed)
        key = encode_key(item.key) if item.key else None
        self.producer.send_raw(catalog.dlq(item.topic), key, item.raw, headers)
        log.warning("dead-lettered an item of %s: %s: %s", self.feed,
                    type(item.reason).__name__, item.reason,
                    extra={"feed": self.feed, "source": item.source, "stage": item.stage})
