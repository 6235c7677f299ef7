"""How far a consumer group is behind, per topic: records on the bus not yet committed.

For the sinks, an offset is committed only after its rows are committed in the
database, so the lag is exactly the records not yet written. Used by the sink service
(Prometheus gauges, the `sink_lag` table) and by `ai-trader sinks lag`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from topics.catalog import Catalog


@dataclass(frozen=True)
class TopicLag:
    """One topic's lag for a group, summed over its partitions."""

    topic: str        # logical name (no deployment prefix); DLQs end in `.dlq`
    lag: int
    committed: int    # sum of committed offsets (a partition never committed counts as 0)
    high_watermark: int
    partitions: int


def sink_topics(catalog: Catalog) -> list[str]:
    """Every physical topic the sinks consume: each catalog topic and its dead-letter topic."""
    out: list[str] = []
    for spec in catalog:
        out.append(catalog.name(spec.name))
        out.append(catalog.dlq(spec.name))
    return out


def logical_name(catalog: Catalog, physical: str) -> str:
    """The catalog name of a topic or dead-letter topic (prefix removed)."""
    prefix = catalog.prefix
    return physical[len(prefix):] if prefix and physical.startswith(prefix) else physical


def topic_partitions(consumer: Consumer, topics: Iterable[str], timeout: float
                     ) -> list[TopicPartition]:
    """Every partition of the given topics that exists on the cluster."""
    metadata = consumer.list_topics(timeout=timeout)
    out: list[TopicPartition] = []
    for name in topics:
        meta = metadata.topics.get(name)
        if meta is None or meta.error is not None:
            continue
        out.extend(TopicPartition(name, p) for p in sorted(meta.partitions))
    return out


#: Errors of a partition's offset query that go away once the client's metadata catches
#: up (a leader moved or was just elected, a topic just created): asked again.
_TRANSIENT = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.REQUEST_TIMED_OUT,
                        KafkaError._TRANSPORT})  # noqa: SLF001 - librdkafka's own code name
RETRY_WAIT = 0.2


def _transient(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and (err.retriable() or err.code() in _TRANSIENT)


def _offsets(admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec,
             timeout: float) -> dict[tuple[str, int], int]:
    """One batched ListOffsets request per broker (not one request per partition); the
    partitions that fail with a transient error are asked again until `timeout`."""
    deadline = time.monotonic() + timeout
    out: dict[tuple[str, int], int] = {}
    todo = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    while todo:
        futures = admin.list_offsets(dict.fromkeys(todo, spec), request_timeout=timeout)
        todo = []
        for tp, fut in futures.items():
            try:
                out[(tp.topic, tp.partition)] = fut.result().offset
            except KafkaException as exc:
                if not _transient(exc) or time.monotonic() + RETRY_WAIT >= deadline:
                    raise
                todo.append(tp)
        if todo:
            time.sleep(RETRY_WAIT)
    return out


def measure_lag(consumer: Consumer, admin: AdminClient, catalog: Catalog,
                partitions: list[TopicPartition], timeout: float = 10.0) -> list[TopicLag]:
    """Lag of the consumer's group on these partitions, per topic (sorted by name)."""
    committed = consumer.committed(partitions, timeout=timeout)
    lows = _offsets(admin, partitions, OffsetSpec.earliest(), timeout)
    highs = _offsets(admin, partitions, OffsetSpec.latest(), timeout)
    sums: dict[str, list[int]] = {}
    for tp in committed:
        low, high = lows[(tp.topic, tp.partition)], highs[(tp.topic, tp.partition)]
        position = tp.offset if tp.offset >= 0 else low
        entry = sums.setdefault(logical_name(catalog, tp.topic), [0, 0, 0, 0])
        entry[0] += max(0, high - max(position, low))
        entry[1] += max(tp.offset, 0)
        entry[2] += high
        entry[3] += 1
    return [TopicLag(topic, *values) for topic, values in sorted(sums.items())]


def group_lag(consumer: Consumer, admin: AdminClient, catalog: Catalog, timeout: float = 10.0
              ) -> list[TopicLag]:
    """Lag on every topic the sinks consume, for the consumer's group."""
    parts = topic_partitions(consumer, sink_topics(catalog), timeout)
    return measure_lag(consumer, admin, catalog, parts, timeout)
