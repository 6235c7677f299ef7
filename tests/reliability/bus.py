"""Bus helpers for the reliability tests: hostile records, dead-letter reading, a module-wide
set of topics with one real `ai-trader worker` on them.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer

from streams.core.audit import verify_chain
from streams.proposals import from_bundle
from tests.reliability.procs import Service
from tests.streams.harness import Bus, candles
from topics.bus import admin_client, close_consumer, consumer_config, ensure_topics
from topics.catalog import Catalog
from topics.codec import AvroCodec
from topics.settings import Settings

WORKER_INPUTS = ("market.candles.v1", "gate.inbox.v1", "account.state.v1", "orders.results.v1")
OUT_TOPICS = ("decisions.log.v1", "ideas.status.v1", "orders.requests.v1",
              "control.replies.v1", "state.risk_config.v1", "state.strategies.v1",
              "market.indicators.v1", "snapshots.bundles.v1")
WARM_UP = 14


def unvalidated(catalog: Catalog, logical: str) -> AvroCodec:
    """The topic's Avro codec without its topic rules: writes what a careless or hostile
    producer could write (valid Avro, values the rules would refuse)."""
    spec = catalog.spec(logical)
    return AvroCodec(catalog.registry, spec.value_schema, None)


def fuzzed_bytes(seed: int, codec: AvroCodec, valid: bytes) -> list[bytes]:
    """Bytes that are not a record of the topic: random, marker + random, a valid record
    truncated or with trailing garbage, another schema's fingerprint, bit flips."""
    rng = random.Random(seed)
    header = valid[:10]
    out = [
        bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))),
        b"\xc3\x01" + bytes(rng.getrandbits(8) for _ in range(40)),
        valid[: len(valid) // 2],
        valid + b"\x00\x01trailing",
        b"\xc3\x01" + b"\x00" * 8 + valid[10:],  # unknown fingerprint
        b"",
    ]
    for _ in range(4):
        flipped = bytearray(valid)
        for _ in range(3):
            i = rng.randrange(len(header), len(flipped))
            flipped[i] ^= 1 << rng.randrange(8)
        out.append(bytes(flipped))
    return out


@dataclass
class Letter:
    """One dead letter: where it came from and why."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return (f"{self.headers.get('__connect.errors.exception.class.name')}: "
                f"{self.headers.get('__connect.errors.exception.message')}")


def _letter(catalog: Catalog, m: Any) -> Letter:
    topic = m.topic().removeprefix(catalog.prefix).removesuffix(".dlq")
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (m.headers() or [])}
    return Letter(topic, m.key(), m.value(), headers)


def dead_letters(settings: Settings, catalog: Catalog, logical: tuple[str, ...],
                 want: int, timeout: float = 60.0) -> list[Letter]:
    """Every dead letter of the given topics (read from the start): at least `want`, then
    one more second's worth (letters beyond `want` are a finding too)."""
    consumer = Consumer(consumer_config(settings, f"{catalog.prefix}dlq-{uuid.uuid4().hex}"))
    consumer.subscribe([catalog.dlq(t) for t in logical])
    out: list[Letter] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(out) < want:
            out.extend(_letter(catalog, m) for m in consumer.consume(100, 0.5)
                       if m.error() is None)
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            out.extend(_letter(catalog, m) for m in consumer.consume(100, 0.2)
                       if m.error() is None)
    finally:
        close_consumer(consumer, "dlq-reader")
    return out


def module_catalog(settings: Settings) -> Iterator[Catalog]:
    """Every catalog topic under a fresh uuid prefix, deleted afterwards."""
    cat = Catalog(prefix=f"t{uuid.uuid4().hex[:12]}.")
    ensure_topics(settings, cat)
    yield cat
    admin = admin_client(settings)
    for fut in admin.delete_topics(list(cat.physical_topics()), operation_timeout=30).values():
        fut.result()
    del admin


@dataclass
class Stage:
    """A running worker on a test's topics, with a clock of candles that only goes forward."""

    io: Bus
    worker: Service
    catalog: Catalog
    start: datetime
    next_bar: int = 0

    def feed(self, n: int) -> list[dict[str, Any]]:
        """The next `n` XAUUSD M1 bars (the first 14 warm the indicators up, waited for)."""
        first = self.next_bar
        batch = candles(self.start, n, first=first)
        self.next_bar += n
        head = batch[:WARM_UP] if first == 0 else []
        before = len(self.io.of("market.indicators.v1"))
        for c in head:
            self.io.producer.send("market.candles.v1", c["symbol"], c)
        self.io.producer.flush()
        if head:
            self.io.wait(lambda rs: len(self.io.of("market.indicators.v1")) >= before + len(head),
                         60, "the warm-up indicators")
        for c in batch[len(head):]:
            self.io.producer.send("market.candles.v1", c["symbol"], c)
        self.io.producer.flush()
        return batch

    def ideas_since(self, statuses_before: int) -> list[dict[str, Any]]:
        return [s for s in self.io.of("ideas.status.v1")[statuses_before:] if s.get("idea")]

    def alive(self) -> bool:
        return self.worker.alive()


def decisions_are_sound(io: Bus) -> list[str]:
    """Problems with what the worker decided: every idea reproducible from its bundle,
    one unbroken hash chain (redelivered copies removed), no two orders for one idea."""
    problems = []
    bundles = {b["snapshot_id"]: b for b in io.of("snapshots.bundles.v1")}
    for status in io.of("ideas.status.v1"):
        idea = status.get("idea")
        if idea is None:
            continue
        again = from_bundle(bundles[idea["snapshot_id"]])
        if getattr(again, "idea_record", {}).get("confidence") != idea["confidence"]:
            problems.append(f"idea {idea['idea_id']} not reproducible from its bundle")
    chains: dict[str, dict[str, dict[str, Any]]] = {}
    for d in io.of("decisions.log.v1"):  # one chain per account; redelivered copies once
        chains.setdefault(d["account"], {})[d["hash"]] = d
    for account, unique in chains.items():
        report = verify_chain(account, unique.values())
        if not report.ok or report.verified != len(unique):
            problems.append(f"decision chain of {account}: {report}")
    orders: dict[str, set[str]] = {}
    for o in io.of("orders.requests.v1"):
        orders.setdefault(o["request_id"], set()).add(repr(sorted(o.items())))
    problems += [f"{rid}: {len(v)} different order requests" for rid, v in orders.items()
                 if len(v) > 1]
    return problems
