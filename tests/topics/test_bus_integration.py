"""The bus for real: topics, Avro records, dead letters and partitioning on a live broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from tests import factories
from tests.connectors.bus import read
from topics.bus import (
    ERR_CLASS,
    ERR_MESSAGE,
    ERR_OFFSET,
    ERR_PARTITION,
    ERR_STAGE,
    ERR_TOPIC,
    BusConsumer,
    BusError,
    BusProducer,
    TopicMismatch,
    TopicNotFound,
    admin_client,
    close_consumer,
    consumer_config,
    ensure_topics,
    producer_config,
    read_to_end,
    wait_until_served,
)
from topics.catalog import Catalog
from topics.codec import MAGIC, AvroCodec
from topics.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _drain(consumer: BusConsumer, want: int, timeout: float = 60.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(consumer.poll(1000, 0.5))
    consumer.commit()
    return got


def _publish_candles(bus: Settings, catalog: Catalog, n: int) -> list[dict[str, Any]]:
    """`n` random candles on the candle topic, keyed by symbol, acknowledged."""
    candles = factories.random_candles(n)
    producer = BusProducer(bus, catalog)
    for rec in candles:
        producer.send("market.candles.v1", rec["symbol"], rec)
    producer.flush()
    return candles


def _consumer(bus: Settings, catalog: Catalog, topic: str) -> BusConsumer:
    return BusConsumer(bus, catalog, [topic], group_id=f"{catalog.prefix}g", name="test")


def test_ten_thousand_candles_come_back_equal_field_by_field(
    bus: Settings, catalog: Catalog
) -> None:
    candles = _publish_candles(bus, catalog, 10_000)

    with _consumer(bus, catalog, "market.candles.v1") as consumer:
        received = _drain(consumer, len(candles))

    assert len(received) == len(candles)
    # per key (symbol) order is preserved; across partitions it is not
    by_symbol: dict[str, list] = {}
    for r in received:
        assert r.key == r.value["symbol"]
        by_symbol.setdefault(r.key, []).append(r.value)
    for symbol, values in by_symbol.items():
        assert values == [c for c in candles if c["symbol"] == symbol]
    assert consumer.dead_letters == 0


def test_corrupt_and_unknown_records_go_to_dead_letters_and_the_rest_flows(
    bus: Settings, catalog: Catalog
) -> None:
    producer = BusProducer(bus, catalog)
    topic = catalog.name("market.candles.v1")
    codec = catalog.codec("market.candles.v1")
    good = [factories.candle(i) for i in range(6)]
    unknown = MAGIC + b"\xee" * 8 + codec.encode(good[0])[10:]
    corrupt = b"\x00garbage that is not avro"
    # schema-valid but hostile: written by a codec without the topic's rules
    hostile = AvroCodec(catalog.registry, codec.name).encode(factories.candle(close=float("nan")))
    for i, rec in enumerate(good):
        producer.send("market.candles.v1", "XAUUSD", rec)
        if i == 1:
            producer.send_raw(topic, b"XAUUSD", corrupt, [("origin", b"fuzzer")])
        if i == 3:
            producer.send_raw(topic, b"XAUUSD", unknown)
        if i == 4:
            producer.send_raw(topic, b"XAUUSD", hostile)
    producer.flush()

    with _consumer(bus, catalog, "market.candles.v1") as consumer:
        received = _drain(consumer, len(good))
    assert [r.value for r in received] == good
    assert consumer.dead_letters == 3

    dlq = BusConsumer(bus, catalog, [], group_id=f"{catalog.prefix}dlq")
    dlq._consumer.subscribe([catalog.dlq("market.candles.v1")])
    letters = []
    deadline = time.monotonic() + 30
    while len(letters) < 3 and time.monotonic() < deadline:
        letters.extend(m for m in dlq._consumer.consume(10, 0.5) if m.error() is None)
    dlq.close()

    assert [m.value() for m in letters] == [corrupt, unknown, hostile]
    headers = [dict(m.headers()) for m in letters]
    assert [h[ERR_CLASS] for h in headers] == [b"CorruptRecord", b"UnknownFingerprint",
                                               b"InvalidRecord"]
    assert b"close is not finite" in headers[2][ERR_MESSAGE]
    source_partition = str(received[0].partition).encode()
    for h, offset in zip(headers, (2, 5, 7), strict=True):
        assert h[ERR_TOPIC] == topic.encode()
        assert h[ERR_PARTITION] == source_partition
        assert h[ERR_OFFSET] == str(offset).encode()
        assert h[ERR_STAGE] == b"decode"
    assert headers[0]["origin"] == b"fuzzer"  # original headers travel with the letter


def test_same_key_lands_on_same_partition_from_both_clients(
    bus: Settings, catalog: Catalog
) -> None:
    name = f"{catalog.prefix}partitioning"
    admin = admin_client(bus)  # referenced until the future resolves (else _DESTROY)
    admin.create_topics([NewTopic(name, 12, 1)])[name].result()
    keys = [f"SYM{i}" for i in range(200)] + ["XAUUSD", "EURUSD", "US30", "ñandú-€"]

    confluent_parts: dict[str, int] = {}
    producer = Producer(producer_config(bus))
    for key in keys:
        producer.produce(
            name, key=key.encode(), value=b"x",
            on_delivery=lambda err, msg: confluent_parts.__setitem__(
                msg.key().decode(), msg.partition()
            ),
        )
    producer.flush(30)

    async def aiokafka_partitions() -> dict[str, int]:
        p = AIOKafkaProducer(**bus.aiokafka_config())
        await p.start()
        try:
            out = {}
            for key in keys:
                meta = await p.send_and_wait(name, b"x", key=key.encode())
                out[key] = meta.partition
            return out
        finally:
            await p.stop()

    aio_parts = asyncio.run(aiokafka_partitions())
    admin.delete_topics([name])[name].result()

    assert confluent_parts == aio_parts
    assert len(set(aio_parts.values())) > 6  # keys really spread over partitions


def test_ensure_topics_is_idempotent(bus: Settings, catalog: Catalog) -> None:
    report = ensure_topics(bus, catalog)
    assert report.created == []
    assert set(report.existing) == set(catalog.physical_topics())


def test_topic_with_other_settings_is_reported_not_reused(bus: Settings) -> None:
    catalog = Catalog(prefix=f"t{time.monotonic_ns()}.")
    wrong = catalog.name("market.candles.v1")
    admin = admin_client(bus)
    admin.create_topics([NewTopic(wrong, 2, 1, config={"cleanup.policy": "compact"})])[
        wrong
    ].result()
    try:
        with pytest.raises(TopicMismatch) as info:
            ensure_topics(bus, catalog)
        text = str(info.value)
        assert f"{wrong}: 2 partitions, catalog says 6" in text
        assert f"{wrong}: cleanup.policy=compact, catalog says delete" in text
    finally:
        admin.delete_topics(list(catalog.physical_topics()), operation_timeout=30)


def test_the_broker_stamps_inbox_records_producers_cannot_backdate_them(
        bus: Settings, catalog: Catalog) -> None:
    """Command freshness is judged at the inbox record's timestamp: it must be the broker's."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer

    topic = catalog.name("gate.inbox.v1")
    producer = Producer(producer_config(bus))
    week_ago_ms = int((time.time() - 7 * 86400) * 1000)
    producer.produce(topic, key=b"acct", value=b"x", timestamp=week_ago_ms)
    assert producer.flush(30) == 0
    before_ms = int(time.time() * 1000) - 60_000
    consumer = Consumer({"bootstrap.servers": bus.kafka_bootstrap_servers,
                         "group.id": f"ts-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline, msg = time.monotonic() + 30, None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
    finally:
        close_consumer(consumer, "timestamps")
    assert msg is not None
    assert msg.error() is None
    kind, ms = msg.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert ms > before_ms  # the append time, not the week-old time the producer set


def test_an_existing_inbox_without_append_time_is_switched_to_it(bus: Settings) -> None:
    catalog = Catalog(prefix=f"t{time.monotonic_ns()}.")
    inbox = catalog.name("gate.inbox.v1")
    admin = admin_client(bus)
    admin.create_topics([NewTopic(inbox, 3, 1, config={"cleanup.policy": "delete",
                                                        "retention.ms": "-1"})])[inbox].result()
    try:
        report = ensure_topics(bus, catalog)
        assert report.altered == [f"{inbox}: message.timestamp.type=LogAppendTime"]
        assert ensure_topics(bus, catalog).altered == []
    finally:
        admin.delete_topics(list(catalog.physical_topics()), operation_timeout=30)


def test_broker_does_not_auto_create_topics(bus: Settings) -> None:
    name = f"t{time.monotonic_ns()}.never-declared"
    producer = Producer(producer_config(bus, **{"message.timeout.ms": 3000}))
    errors: list = []
    producer.produce(name, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert len(errors) == 1
    assert errors[0] is not None
    assert name not in admin_client(bus).list_topics(timeout=10).topics


def test_created_topics_are_served_when_ensure_topics_returns(bus: Settings) -> None:
    catalog = Catalog(prefix=f"t{time.monotonic_ns()}.")
    admin = admin_client(bus)
    try:
        report = ensure_topics(bus, catalog)
        metadata = admin.list_topics(timeout=10)
        for name in report.created:
            partitions = metadata.topics[name].partitions
            assert partitions, name
            assert all(p.leader >= 0 for p in partitions.values()), name
        with pytest.raises(BusError, match="not served within"):
            wait_until_served(admin, {f"{catalog.prefix}never-created": 1}, 1.0)
    finally:
        admin.delete_topics(list(catalog.physical_topics()), operation_timeout=30)


def test_flush_waits_for_librdkafkas_verdict_not_a_fixed_timeout() -> None:
    """A bus that is away is waited for as long as librdkafka retries (here 7 s, longer
    than one flush step), then the failure is reported, not a timeout."""
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")  # nothing listens there
    producer = BusProducer(settings, Catalog(prefix="t."), **{"message.timeout.ms": 7000})
    producer.send_raw("t.anything", b"k", b"v")
    started = time.monotonic()
    with pytest.raises(BusError, match="1 records failed"):
        producer.flush()
    assert time.monotonic() - started >= 6.5


def test_read_to_end_reads_what_was_there_when_called_and_marks_bad_records(
    bus: Settings, catalog: Catalog
) -> None:
    candles = factories.random_candles(300)
    producer = BusProducer(bus, catalog)
    for rec in candles:
        producer.send("market.candles.v1", rec["symbol"], rec)
    producer.send_raw(catalog.name("market.candles.v1"), b"XAUUSD", b"\x00garbage")
    producer.flush()
    totals: list[int] = []
    ticks: list[None] = []
    got = list(read_to_end(bus, catalog, "market.candles.v1", timeout=30,
                           on_total=totals.append, on_record=lambda: ticks.append(None)))
    assert totals == [301]
    assert len(ticks) == 301
    assert got.count(None) == 1
    assert sorted((r["symbol"], r["open_time"]) for r in got if r is not None) == sorted(
        (r["symbol"], r["open_time"]) for r in candles)


def test_read_to_end_last_reads_the_newest_records_of_each_partition(
    bus: Settings, catalog: Catalog
) -> None:
    candles = _publish_candles(bus, catalog, 300)
    expected: dict[int, list[tuple[int, tuple[str, object]]]] = {}
    for r in read(bus, catalog, "market.candles.v1", len(candles)):
        expected.setdefault(r.partition, []).append(
            (r.offset, (r.value["symbol"], r.value["open_time"])))
    newest = [item for records in expected.values() for _, item in sorted(records)[-7:]]
    totals: list[int] = []

    got = list(read_to_end(bus, catalog, "market.candles.v1", timeout=30, last=7,
                           on_total=totals.append))

    assert len(expected) > 1  # several partitions, each cut on its own
    assert totals == [len(newest)]
    assert sorted((r["symbol"], r["open_time"]) for r in got if r is not None) == sorted(newest)
    with pytest.raises(ValueError, match="at least 1"):
        list(read_to_end(bus, catalog, "market.candles.v1", timeout=30, last=0))


def test_read_to_end_says_when_a_topic_does_not_exist(bus: Settings) -> None:
    catalog = Catalog(prefix=f"t{time.monotonic_ns()}.")  # its topics were never created
    with pytest.raises(TopicNotFound, match="decisions.log.v1 not found"):
        list(read_to_end(bus, catalog, "decisions.log.v1", timeout=10))
    assert list(read_to_end(bus, catalog, "decisions.log.v1", timeout=10,
                            missing_ok=True)) == []


def test_a_consumer_leaves_its_group_when_closed(bus: Settings, catalog: Catalog) -> None:
    group = f"close-{time.monotonic_ns()}"
    consumer = BusConsumer(bus, catalog, ["market.candles.v1"], group)
    admin = admin_client(bus)

    def members() -> int:
        described = admin.describe_consumer_groups([group])[group].result(30)
        return len(described.members)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        consumer.poll(timeout=0.5)  # joins the group
        if members() == 1:
            break
    assert members() == 1
    assert close_consumer(consumer._consumer, group, timeout=30) is True
    assert members() == 0  # left at once, not dropped at the end of its session


class _Stuck:
    """A consumer that is not a member of a group and whose close() does not return."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def unsubscribe(self) -> None:
        return None

    def poll(self, timeout: float) -> None:
        return None

    def memberid(self) -> str | None:
        return None

    def close(self) -> None:
        self.release.wait(30)


def test_a_close_that_does_not_return_is_left_behind_after_the_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka#4884 cannot be provoked on demand: a stand-in whose close() blocks
    (without the GIL) checks that the caller gets its thread back and the hang is logged."""
    stuck = _Stuck()
    started = time.monotonic()
    try:
        assert close_consumer(stuck, "stuck", timeout=0.3) is False  # type: ignore[arg-type]
    finally:
        stuck.release.set()
    assert time.monotonic() - started < 10
    assert "consumer stuck: close() did not return in 0 s" in caplog.text


_FROZEN_CLOSE = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from topics.bus import close_consumer

class Frozen:  # close() stops the interpreter: a C call that holds the GIL for good
    def unsubscribe(self): pass
    def poll(self, timeout): pass
    def memberid(self): return None
    def close(self): ctypes.PyDLL(None).pause()

close_consumer(Frozen(), "frozen", timeout=0.5, grace=1.0)
print("returned")
"""


def test_a_close_that_holds_the_interpreter_ends_the_process(tmp_path: Path) -> None:
    """The hang of librdkafka#4884 holds the GIL (confluent-kafka calls rd_kafka_assign
    from its rebalance callback without releasing it): no Python thread, signal handler
    or timeout runs again. The process must end by itself, saying where it was."""
    script = tmp_path / "frozen.py"
    script.write_text(_FROZEN_CLOSE)
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script), str(ROOT)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1, done
    assert "returned" not in done.stdout
    assert 1.5 <= time.monotonic() - started < 30
    assert "Timeout (0:00:01.500000)!" in done.stderr
    assert "in close" in done.stderr
    assert "close_consumer" in done.stderr


class _Recording(Consumer):
    """Records the order of its rebalance callbacks and of the call to close()."""

    events: list[str]

    def close(self) -> None:
        self.events.append("close")
        super().close()


def test_an_assignment_waiting_in_the_queue_is_served_before_close(
        bus: Settings, catalog: Catalog) -> None:
    """The state librdkafka#4884 hangs in: the group assigned partitions while the
    consumer was not polling, so the assignment waits in its queue. close_consumer
    serves it (and the revocation) before calling close(), and leaves the group."""
    group = f"waiting-{time.monotonic_ns()}"
    consumer = _Recording(consumer_config(bus, group))
    consumer.events = []
    consumer.subscribe(
        [catalog.name("market.candles.v1")],
        on_assign=lambda c, parts: consumer.events.append(f"assign {len(parts)}"),
        on_revoke=lambda c, parts: consumer.events.append(f"revoke {len(parts)}"))
    consumer.poll(0)  # sends the join; nothing is polled after it
    deadline = time.monotonic() + 30
    while not consumer.memberid() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the SyncGroup answer, and with it the assignment, arrive meanwhile
    assert consumer.events == []  # nothing served yet: the assignment is waiting

    assert close_consumer(consumer, group, timeout=30) is True

    assigned, revoked, closed = consumer.events
    assert (assigned.split()[0], revoked.split()[0], closed) == ("assign", "revoke", "close")
    assert assigned.split()[1] == revoked.split()[1] != "0"  # every partition, then back
    admin = admin_client(bus)  # kept: a client collected early fails its futures
    assert admin.describe_consumer_groups([group])[group].result(30).members == []
