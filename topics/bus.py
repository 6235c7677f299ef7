"""Kafka clients configured the one way this project uses them.

- Topics are created idempotently from the catalog; a topic that exists with
  other settings is reported (`TopicMismatch`), never silently reused.
- Producers partition with murmur2 (`murmur2_random`), like aiokafka and the
  Java client, so a key lands on the same partition whoever writes it.
- Consumers decode with the topic's codec; a record that fails goes to the
  topic's dead-letter topic with `__connect.errors.*` headers and the consumer
  carries on. Offsets are committed only after the dead letters are flushed,
  so nothing is lost between the two.
"""

from __future__ import annotations

import faulthandler
import logging
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from topics.catalog import Catalog, encode_key
from topics.codec import CodecError
from topics.settings import Settings

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]

ERR_TOPIC = "__connect.errors.topic"
ERR_PARTITION = "__connect.errors.partition"
ERR_OFFSET = "__connect.errors.offset"
ERR_CLASS = "__connect.errors.exception.class.name"
ERR_MESSAGE = "__connect.errors.exception.message"
ERR_STAGE = "__connect.errors.stage"
ERR_CONSUMER = "__connect.errors.connector.name"


#: How often a patient flush wakes up to say it is still waiting.
FLUSH_STEP_SECONDS = 5.0


class BusError(RuntimeError):
    """The bus did not do what was asked (unreachable, refused, delivery failed)."""


class TopicMismatch(BusError):
    """Topics exist with settings other than the catalog's."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("topics exist with other settings:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class EnsureReport:
    """What `ensure_topics` found and did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)


#: Topic settings `ensure_topics` changes on an existing topic instead of refusing it:
#: ones a later release added, safe to change on a live topic.
ALTERABLE = frozenset({"message.timestamp.type"})


def admin_client(settings: Settings) -> AdminClient:
    """An admin client with the cluster's security settings."""
    return AdminClient(settings.confluent_config())


def _existing_config(admin: AdminClient, names: Sequence[str], timeout: float) -> dict[str, Any]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    return {res.name: fut.result() for res, fut in futures.items()}


def ensure_topics(settings: Settings, catalog: Catalog, timeout: float = 30.0) -> EnsureReport:
    """Create missing topics; raise `TopicMismatch` for topics that differ from the catalog."""
    admin = admin_client(settings)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BusError(f"bus unreachable at {settings.kafka_bootstrap_servers}: {exc}") from exc
    wanted = catalog.physical_topics()
    report = _create_missing(admin, settings, wanted, set(metadata.topics), timeout)
    raced = [n for n in report.existing if n not in metadata.topics]
    deadline = time.monotonic() + timeout
    while raced:
        # "Already exists" although the first metadata did not list it (created meanwhile,
        # or metadata not yet propagated): it must be checked like any existing topic.
        metadata = admin.list_topics(timeout=timeout)
        raced = [n for n in raced if n not in metadata.topics]
        if raced and time.monotonic() > deadline:
            raise BusError(f"topics {raced} exist but are not in the cluster's metadata")
        if raced:
            time.sleep(0.1)
    present = [n for n in wanted if n in metadata.topics and n not in report.created]
    report.existing = sorted(set(report.existing) | set(present))
    configs = _existing_config(admin, present, timeout)
    report.altered = _align(admin, wanted, present, configs, timeout)
    problems = _mismatches(wanted, present, metadata, configs)
    if problems:
        raise TopicMismatch(problems)
    if report.created:
        wait_until_served(admin, {n: wanted[n][0] for n in report.created}, timeout)
    return report


def _align(admin: AdminClient, wanted: dict[str, tuple[int, dict[str, str]]],
           present: list[str], configs: dict[str, Any], timeout: float) -> list[str]:
    """Set the `ALTERABLE` settings that differ from the catalog; "topic: key=value" done."""
    done: list[str] = []
    for name in present:
        changes = {key: value for key, value in wanted[name][1].items()
                   if key in ALTERABLE and (entry := configs[name].get(key)) is not None
                   and entry.value != value}
        if not changes:
            continue
        resource = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in changes.items()])
        for fut in admin.incremental_alter_configs([resource],
                                                   request_timeout=timeout).values():
            fut.result()
        _wait_for_config(admin, name, changes, timeout)
        for key, value in changes.items():
            configs[name][key] = ConfigEntry(key, value)
            done.append(f"{name}: {key}={value}")
            log.info("topic %s: set %s=%s", name, key, value)
    return done


def _wait_for_config(admin: AdminClient, name: str, changes: Mapping[str, str],
                     timeout: float) -> None:
    """Until the broker describes the topic with `changes` (an alter is acknowledged by
    the controller before every broker applies it)."""
    deadline = time.monotonic() + timeout
    while True:
        have = _existing_config(admin, [name], timeout)[name]
        if all((e := have.get(k)) is not None and e.value == v for k, v in changes.items()):
            return
        if time.monotonic() > deadline:
            raise BusError(f"{name}: {dict(changes)} not in effect after {timeout:.0f} s")
        time.sleep(0.1)


def _mismatches(wanted: dict[str, tuple[int, dict[str, str]]], present: list[str],
                metadata: Any, configs: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name in present:
        parts, conf = wanted[name]
        have_parts = len(metadata.topics[name].partitions)
        if have_parts != parts:
            problems.append(f"{name}: {have_parts} partitions, catalog says {parts}")
        for key, value in conf.items():
            entry = configs[name].get(key)
            if entry is not None and entry.value != value:
                problems.append(f"{name}: {key}={entry.value}, catalog says {value}")
    return problems


def wait_until_served(admin: AdminClient, topics: Mapping[str, int], timeout: float) -> None:
    """Wait until every topic is in the cluster's metadata with all its partitions led.

    `create_topics` returns before a fresh broker serves the topic: a client started
    right after it (a worker, the API) saw "unknown topic" or a changelog of 0 partitions
    and stopped. Raises `BusError` after `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout)
        waiting = sorted(
            name for name, parts in topics.items()
            if name not in metadata.topics
            or len(metadata.topics[name].partitions) != parts
            or any(p.leader < 0 for p in metadata.topics[name].partitions.values()))
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BusError(f"topics created but not served within {timeout}s: {waiting}")
        time.sleep(0.1)


def _create_missing(
    admin: AdminClient,
    settings: Settings,
    wanted: dict[str, tuple[int, dict[str, str]]],
    existing: set[str],
    timeout: float,
) -> EnsureReport:
    report = EnsureReport()
    new = [
        NewTopic(name, num_partitions=parts, replication_factor=settings.topic_replication_factor,
                 config=conf)
        for name, (parts, conf) in wanted.items()
        if name not in existing
    ]
    if new:
        for name, fut in admin.create_topics(new, operation_timeout=timeout).items():
            try:
                fut.result()
                report.created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(f"cannot create topic {name}: {exc}") from exc
                report.existing.append(name)
    return report


def wait_for_bus(settings: Settings, timeout: float = 60.0) -> None:
    """Block until the cluster answers a metadata request."""
    admin = admin_client(settings)
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=5)
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BusError(f"bus not reachable at {settings.kafka_bootstrap_servers}") from exc
            time.sleep(0.5)


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """librdkafka producer settings: murmur2 partitioning, idempotent, low linger."""
    conf = {
        **settings.confluent_config(),
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.producer_linger_ms,
        "compression.type": settings.producer_compression,
    }
    conf.update(overrides)
    return conf


class BusProducer:
    """Encodes records with their topic's codec and produces them keyed by raw UTF-8."""

    def __init__(self, settings: Settings, catalog: Catalog, **overrides: Any) -> None:
        self.catalog = catalog
        self._producer = Producer(producer_config(settings, **overrides))
        self._errors: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def send(
        self,
        logical: str,
        key: str,
        record: Mapping[str, Any],
        headers: Headers | None = None,
    ) -> None:
        """Encode (raising `CodecError` for an invalid record) and enqueue one record."""
        value = self.catalog.codec(logical).encode(record)
        self.send_raw(self.catalog.name(logical), encode_key(key), value, headers)

    def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """Enqueue bytes as they are (dead letters, tests of corrupt input)."""
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # local queue full: let deliveries drain
        self._producer.poll(0)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every enqueued record is acknowledged; raise if any failed.

        Without a timeout it waits as long as librdkafka keeps retrying the records
        (`message.timeout.ms`, 5 minutes by default), saying so every 30 s: a bus that
        is restarting is waited for, not a reason for a service to stop. A record that
        librdkafka gives up on raises `BusError`; its offset was not committed, so it is
        sent again after the restart.
        """
        if timeout is not None:
            remaining = self._producer.flush(timeout)
        else:
            waited = 0.0
            while remaining := self._producer.flush(FLUSH_STEP_SECONDS):
                waited += FLUSH_STEP_SECONDS
                if waited % 30.0 < FLUSH_STEP_SECONDS:
                    log.warning("bus not acknowledging: %d records waiting for %.0f s",
                                remaining, waited)
        if remaining:
            raise BusError(f"{remaining} records not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise BusError(f"{len(errors)} records failed: {errors[:3]}")


@dataclass(frozen=True)
class Received:
    """One decoded record with where it came from."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict[str, Any]
    headers: Headers
    timestamp_ms: int


def message_headers(msg: Message) -> Headers:
    """A message's headers as a list of (name, value) pairs."""
    return cast(Headers, list(msg.headers() or []))


def error_headers(topic: str, partition: int | None, offset: int | None, error: Exception,
                  stage: str, consumer: str,
                  original: Iterable[tuple[str, str | bytes | None]] = ()) -> Headers:
    """`original` plus Kafka Connect's `__connect.errors.*` description of a failure of
    the record at `topic`[`partition`]@`offset` (-1, -1 for one that came from no topic)."""
    return [
        *original,
        (ERR_TOPIC, topic.encode("utf-8", "replace")),
        (ERR_PARTITION, str(partition).encode()),
        (ERR_OFFSET, str(offset).encode()),
        (ERR_CLASS, type(error).__name__.encode()),
        (ERR_MESSAGE, str(error)[:4000].encode("utf-8", "replace")),
        (ERR_STAGE, stage.encode()),
        (ERR_CONSUMER, consumer.encode("utf-8", "replace")),
    ]


def dead_letter_headers(
    msg: Message, error: Exception, stage: str, consumer: str
) -> Headers:
    """A consumed message's headers plus the `__connect.errors.*` description of its failure."""
    return error_headers(msg.topic() or "", msg.partition(), msg.offset(), error, stage,
                         consumer, message_headers(msg))


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka consumer settings: manual commits, short fetch wait."""
    conf = {
        **settings.confluent_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": settings.consumer_fetch_wait_ms,
        "enable.partition.eof": False,
    }
    conf.update(overrides)
    return conf


#: How long leaving a consumer group may take before the consumer is left behind.
CLOSE_TIMEOUT = 30.0
#: How long a closing consumer may take to hand back its partitions and leave its group
#: (`_leave_group`) before close() is called all the same.
LEAVE_TIMEOUT = 10.0
#: How long after `timeout` a close that keeps the whole interpreter stopped ends the
#: process (`_freeze_guard`).
FREEZE_GRACE = 10.0


def close_consumer(consumer: Consumer, name: str, timeout: float = CLOSE_TIMEOUT,
                   grace: float = FREEZE_GRACE) -> bool:
    """Close a group consumer, giving up after `timeout` seconds; False when it did not
    return (the consumer is then left to a daemon thread, and the group drops it when
    its session times out).

    librdkafka can hang for good in close() when an assignment is still waiting in the
    consumer's queue as it closes: close() serves it, and the `rd_kafka_assign` of the
    rebalance callback waits for a reply the terminating group never sends
    (confluentinc/librdkafka#4884, open). confluent-kafka makes that call holding the
    GIL, so the whole process stops, not only the closing thread: seen in a clean-clone
    CI run (2026-12-04), pytest stopped for good in the broker service's restart test.
    Hence, in order:

    1. `_leave_group`: unsubscribe and serve the callbacks until the group is left, so
       close() finds nothing waiting (the hazard above, served while it is still safe);
    2. close() in a daemon thread, waited for `timeout`: a close that hangs without the
       GIL leaves the caller free;
    3. `_freeze_guard`: a close that holds the GIL for `timeout + grace` ends the process
       with every thread's stack on stderr (exit code 1), so a service is restarted by
       its supervisor and a test run fails instead of waiting forever.
    """
    _leave_group(consumer, name, min(LEAVE_TIMEOUT, timeout))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            consumer.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failure.append(exc)

    with _freeze_guard(timeout + grace):
        closing = threading.Thread(target=run, name=f"close-{name}", daemon=True)
        closing.start()
        closing.join(timeout)
    if closing.is_alive():
        log.warning("consumer %s: close() did not return in %.0f s (an assignment arrived "
                    "while it was leaving the group); leaving it behind", name, timeout)
        return False
    if failure:
        raise failure[0]
    return True


def _leave_group(consumer: Consumer, name: str, timeout: float) -> None:
    """Unsubscribe, then poll until the consumer is no longer a member of its group.

    The polls serve, in the consumer's ordinary state, any assignment waiting in its
    queue and the revocation that follows the unsubscribe (messages they return are
    dropped: uncommitted, they are delivered again to the next owner). A member id is
    set from the group's join until the leave, and the leave comes after the callbacks
    were served; a join still in flight is discarded once unsubscribed. A consumer that
    never joined (or assigned its partitions itself) has no member id: one poll.
    """
    try:
        consumer.unsubscribe()
        deadline = time.monotonic() + timeout
        consumer.poll(0)
        while consumer.memberid():
            if time.monotonic() >= deadline:
                log.warning("consumer %s: still a member of its group %.0f s after "
                            "unsubscribing; closing it all the same", name, timeout)
                return
            consumer.poll(0.05)
    except Exception as exc:  # noqa: BLE001 - closed already, the bus gone, a callback's
        # error: close() is called all the same
        log.warning("consumer %s: leaving the group before close: %s", name, exc)


_guard_lock = threading.Lock()
_guards = 0


@contextmanager
def _freeze_guard(seconds: float) -> Iterator[None]:
    """End the process if this block has not finished `seconds` from now.

    faulthandler's watchdog is a C thread that needs no GIL: it is the one thing left
    running when a C call stops the interpreter while holding it. Its timer is one per
    process; concurrent guards share it (the last one armed sets the deadline, the last
    one out cancels it).
    """
    global _guards
    with _guard_lock:
        _guards += 1
        faulthandler.dump_traceback_later(seconds, exit=True, file=2)
    try:
        yield
    finally:
        with _guard_lock:
            _guards -= 1
            if _guards == 0:
                faulthandler.cancel_dump_traceback_later()


#: Commit failures after which the next commit covers the same offsets: the bus is
#: restarting (coordinator moving or loading), or a rebalance took the partitions (their
#: new owner starts from the last committed offset; every consumer here is idempotent).
_RETRIABLE_COMMIT = frozenset({
    KafkaError._WAIT_COORD, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
})


class BusConsumer:
    """Consumes catalog topics, decoding each record or sending it to its dead-letter topic."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        topics: Iterable[str],
        group_id: str,
        name: str | None = None,
        **overrides: Any,
    ) -> None:
        self.catalog = catalog
        self.name = name or group_id
        self._consumer = Consumer(consumer_config(settings, group_id, **overrides))
        names = [catalog.name(t) for t in topics]
        if names:  # librdkafka refuses an empty subscription (_INVALID_ARG)
            self._consumer.subscribe(names)
        self._dlq = BusProducer(settings, catalog)
        self.dead_letters = 0

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Received]:
        """Up to `max_records` decoded records; bad ones are dead-lettered on the way."""
        out: list[Received] = []
        for msg in self._consumer.consume(max_records, timeout):
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise BusError(f"consumer {self.name}: {err.str()}")
                log.warning("consumer %s: %s", self.name, err.str())
                continue
            received = self._decode(msg)
            if received is not None:
                out.append(received)
        return out

    def _decode(self, msg: Message) -> Received | None:
        topic = msg.topic() or ""
        logical = self.catalog.logical(topic)
        try:
            value = self.catalog.codec(logical).decode(msg.value())
            key_bytes = msg.key()
            key = key_bytes.decode("utf-8") if key_bytes is not None else None
        except (CodecError, UnicodeDecodeError) as exc:
            self.dead_letter(msg, exc, stage="decode")
            return None
        _, ts = msg.timestamp()
        return Received(
            topic=logical, partition=msg.partition() or 0, offset=msg.offset() or 0,
            key=key, value=value, headers=message_headers(msg), timestamp_ms=ts,
        )

    def dead_letter(self, msg: Message, error: Exception, stage: str) -> None:
        """Send the original bytes to the topic's DLQ with the reason, and count it."""
        logical = self.catalog.logical(msg.topic() or "")
        headers = dead_letter_headers(msg, error, stage, self.name)
        self._dlq.send_raw(self.catalog.dlq(logical), msg.key(), msg.value(), headers)
        self.dead_letters += 1
        log.warning(
            "dead-lettered %s[%s]@%s: %s: %s",
            msg.topic(), msg.partition(), msg.offset(), type(error).__name__, error,
        )

    def commit(self) -> None:
        """Flush dead letters, then commit the consumed positions (at-least-once)."""
        self._dlq.flush()
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            code = error.code()
            if code == KafkaError._NO_OFFSET:
                return
            if code in _RETRIABLE_COMMIT or error.retriable():
                # The bus is coming back or rebalancing: the next commit covers the same
                # offsets, and every consumer here is idempotent on re-delivery.
                log.warning("commit deferred (%s): %s", self.name, exc)
                return
            raise

    def assignment(self) -> list[TopicPartition]:
        """Partitions currently assigned to this consumer."""
        return list(self._consumer.assignment())

    def close(self) -> None:
        """Flush dead letters and leave the group (see `close_consumer`)."""
        self._dlq.flush()
        close_consumer(self._consumer, self.name)

    def __enter__(self) -> BusConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TopicNotFound(BusError):
    """A topic to be read does not exist on the cluster."""


class TopicStalled(BusError):
    """No record came for the allowed time before the end of a topic."""


def read_to_end(settings: Settings, catalog: Catalog, logical: str, timeout: float = 30.0,
                missing_ok: bool = False,
                on_total: Callable[[int], None] | None = None,
                on_record: Callable[[], None] | None = None,
                last: int | None = None,
                ) -> Generator[dict[str, Any] | None, None, None]:
    """Every record of a topic from its beginning to its end as of the call (None for a
    record that does not decode), through a throwaway group that never commits.

    `last` reads only the last that many records of each partition (partition by
    partition in offset order, not across partitions).

    Stops early when the caller stops iterating. `on_total` gets the number of records
    to read before the first one, `on_record` is called for each (progress bars).
    Raises `TopicNotFound` (unless `missing_ok`: then nothing is read) and
    `TopicStalled` when no record comes for `timeout` seconds before the end.
    """
    name = catalog.name(logical)
    consumer = Consumer(consumer_config(settings, f"ai-trader-read-{uuid.uuid4().hex[:8]}"))
    try:
        ends = _end_offsets(consumer, name, timeout, missing_ok)
        if last is not None:
            if last < 1:
                raise ValueError(f"last must be at least 1, not {last}")
            ends = {p: (end, min(count, last)) for p, (end, count) in ends.items()}
        if on_total is not None:
            on_total(sum(count for _, count in ends.values()))
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING if last is None
                                        else end - count)
                         for p, (end, count) in ends.items()])
        yield from _consume_to_ends(consumer, catalog.codec(logical), name,
                                    {p: end for p, (end, _) in ends.items()}, timeout,
                                    on_record)
    finally:
        consumer.close()


def _end_offsets(consumer: Consumer, name: str, timeout: float, missing_ok: bool
                 ) -> dict[int, tuple[int, int]]:
    """partition -> (end offset, records in it), for the partitions that hold any."""
    meta = consumer.list_topics(name, timeout=timeout).topics.get(name)
    if meta is None or meta.error is not None:
        if missing_ok:
            return {}
        raise TopicNotFound(f"topic {name} not found"
                            + (f": {meta.error}" if meta is not None else ""))
    ends: dict[int, tuple[int, int]] = {}
    for p in sorted(meta.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)
        if high > low:
            ends[p] = (high, high - low)
    return ends


def _consume_to_ends(consumer: Consumer, codec: Any, name: str, ends: dict[int, int],
                     timeout: float, on_record: Callable[[], None] | None
                     ) -> Iterator[dict[str, Any] | None]:
    idle_until = time.monotonic() + timeout
    while ends:
        messages = consumer.consume(1000, 0.5)
        if messages:
            idle_until = time.monotonic() + timeout
        elif time.monotonic() > idle_until:
            raise TopicStalled(f"{name}: no records for {timeout:.0f}s before its end "
                               f"(partitions {sorted(ends)})")
        for msg in messages:
            if msg.error() is not None:
                continue
            if on_record is not None:
                on_record()
            part, offset = msg.partition() or 0, msg.offset() or 0
            try:
                yield codec.decode(msg.value())
            except CodecError:
                yield None
            if part in ends and offset + 1 >= ends[part]:
                del ends[part]
