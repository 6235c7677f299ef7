"""Reading what the connectors published on the real bus."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Message

from topics.bus import BusConsumer, Received, close_consumer, consumer_config
from topics.catalog import Catalog
from topics.settings import Settings


def read(bus: Settings, catalog: Catalog, topic: str, want: int, timeout: float = 20.0,
         settle: float = 0.0) -> list[Received]:
    """At least `want` records of a catalog topic (then `settle` seconds more for extras)."""
    group = f"{catalog.prefix}read-{uuid.uuid4().hex[:6]}"
    out: list[Received] = []
    with BusConsumer(bus, catalog, [topic], group_id=group, name="test-reader") as consumer:
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            out.extend(consumer.poll(500, 0.3))
        end = time.monotonic() + settle
        while time.monotonic() < end:
            out.extend(consumer.poll(500, 0.3))
    return out


def read_dlq(bus: Settings, catalog: Catalog, topic: str, want: int,
             timeout: float = 20.0) -> list[Message]:
    """Raw dead letters of a catalog topic."""
    conf = consumer_config(bus, f"{catalog.prefix}dlq-{uuid.uuid4().hex[:6]}")
    consumer = Consumer(conf)
    consumer.subscribe([catalog.dlq(topic)])
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(50, 0.3) if m.error() is None)
    finally:
        close_consumer(consumer, "dlq-reader")
    return out


def headers(msg: Message) -> dict[str, Any]:
    """A message's headers as a dict."""
    return dict(msg.headers() or [])
