"""streams/fetching.py on the real broker: a backlog on one topic does not hold back the
records of another agent for longer than one small fetch.

A faust app in-process, as the worker builds its consumer (its hand-over, its fetch
settings), with two agents: a slow one on a topic with a backlog of thousands of records,
and one on a quiet topic. Once the slow agent is working through its backlog, one record
is published to the quiet topic; the test counts how many backlog records the slow agent
processed before the quiet agent got it: 122-141 in three runs here; with faust's own
consumer (aiokafka returns all it has buffered) 2,433-4,397, the rest of a whole fetch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from streams import redelivery
from streams.app import Worker, WorkerConsumer
from streams.fetching import PER_PARTITION, _Either, next_fetch_wait
from topics.bus import admin_client
from topics.settings import Settings

BACKLOG = 8_000
RECORD = b"c" * 200  # about a candle
STARTED = 300  # backlog records processed before the quiet record is published
#: the rest of the batch being handed over, the next one, and the slow agent's buffer
BOUND = 2 * PER_PARTITION + 64


async def _until(check: Callable[[], bool], what: str, within: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def _topics(bus: Settings, *names: str) -> None:
    admin = admin_client(bus)  # held until the topics exist: its futures die with it
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result()


def _app(bus: Settings, name: str, tmp_path: Path, consumer: dict[str, int],
         **conf: Any) -> faust.App:
    """A faust app in-process with the worker's consumer (`consumer`: its fetch waits)."""
    app = faust.App(name, broker=f"kafka://{bus.kafka_bootstrap_servers}",
                    store="memory://", web_enabled=False, value_serializer="raw",
                    key_serializer="raw", consumer_auto_offset_reset="earliest",
                    topic_allow_declare=True, topic_replication_factor=1,
                    datadir=str(tmp_path), **conf)
    redelivery.install(app, type("Consumer", (WorkerConsumer,), consumer))
    return app


async def _stop(app: faust.App, bus: Settings, prefix: str) -> None:
    await app.stop()
    admin = admin_client(bus)
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(mine, operation_timeout=30).values():
        future.result()


def _publish(bootstrap: str, topic: str, count: int, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for _ in range(count):
        producer.produce(topic, value=value, partition=0)
        producer.poll(0)
    assert producer.flush(30) == 0


async def test_a_backlog_on_one_topic_does_not_hold_back_another_agent(bus: Settings,
                                                                       tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}."
    backlog_topic, quiet_topic = f"{prefix}backlog", f"{prefix}quiet"
    _topics(bus, backlog_topic, quiet_topic)
    _publish(bus.kafka_bootstrap_servers, backlog_topic, BACKLOG, RECORD)
    app = _app(bus, f"{prefix}fetching", tmp_path, {"fetch_max_wait_ms": 7},
               stream_buffer_maxsize=64)
    processed = 0
    seen_at: list[int] = []

    @app.agent(app.topic(backlog_topic, key_type=bytes, value_type=bytes))
    async def slow(stream: Any) -> None:
        nonlocal processed
        async for _ in stream.events():
            processed += 1
            await asyncio.sleep(0.0005)

    @app.agent(app.topic(quiet_topic, key_type=bytes, value_type=bytes))
    async def quiet(stream: Any) -> None:
        async for _ in stream.events():
            seen_at.append(processed)

    await app.start()
    try:
        # faust's fixed 1,500 ms fetch wait is replaced (see streams/fetching.py)
        fetcher = app.consumer._thread._consumer._fetcher  # type: ignore[attr-defined]
        assert fetcher._fetch_max_wait_ms == 7
        await _until(lambda: processed >= STARTED, "the slow agent to start on its backlog")
        await asyncio.get_running_loop().run_in_executor(
            None, _publish, bus.kafka_bootstrap_servers, quiet_topic, 1, b"q")
        published_at = processed  # the quiet record is in the log
        await _until(lambda: bool(seen_at), "the quiet record")
        behind = seen_at[0] - published_at
        assert seen_at[0] < BACKLOG, "the whole backlog went first"
        assert behind <= BOUND, f"{behind} backlog records went first"
    finally:
        await _stop(app, bus, prefix)


def test_the_worker_consumer_fetch_waits_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(KAFKA_CONSUMER_FETCH_WAIT_MS=23, KAFKA_IDLE_FETCH_WAIT_MS=456,
                        AI_TRADER_STATE_DIR=tmp_path)
    consumer = Worker(settings).app.transport.Consumer
    assert issubclass(consumer, WorkerConsumer)
    assert consumer.fetch_max_wait_ms == 23
    assert consumer.idle_fetch_wait_ms == 456


BUSY, IDLE = 7, 10_000


def test_the_long_wait_only_when_the_last_fetch_was_empty_and_nothing_read_is_left_out(
) -> None:
    candles, inbox, changelog = "candles", "inbox", "changelog"
    read = {candles, inbox}
    # records came: more may follow on the partitions left out meanwhile
    assert next_fetch_wait(True, [], read, BUSY, IDLE) == BUSY
    assert next_fetch_wait(True, [changelog], read, BUSY, IDLE) == BUSY
    # a partition the agents read has records buffered: left out of the fetch
    assert next_fetch_wait(False, [candles], read, BUSY, IDLE) == BUSY
    assert next_fetch_wait(False, [changelog, inbox], read, BUSY, IDLE) == BUSY
    # faust reads every partition (none named): anything buffered is left out
    assert next_fetch_wait(False, [changelog], None, BUSY, IDLE) == BUSY
    # held back by faust while the agent's buffer is full: still due, so left out
    held = _Either({candles}, {inbox})
    assert next_fetch_wait(False, [inbox], held, BUSY, IDLE) == BUSY
    assert next_fetch_wait(False, [changelog], held, BUSY, IDLE) == IDLE
    # nothing new, and what is buffered is not read now (a changelog after recovery)
    assert next_fetch_wait(False, [], read, BUSY, IDLE) == IDLE
    assert next_fetch_wait(False, [changelog], read, BUSY, IDLE) == IDLE
    assert next_fetch_wait(False, [], None, BUSY, IDLE) == IDLE


async def test_an_idle_consumer_waits_long_and_a_record_still_arrives_at_once(
        bus: Settings, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}."
    topic = f"{prefix}quiet"
    _topics(bus, topic)
    app = _app(bus, f"{prefix}idle", tmp_path,
               {"fetch_max_wait_ms": BUSY, "idle_fetch_wait_ms": IDLE})
    seen: list[float] = []
    loop = asyncio.get_running_loop()

    @app.agent(app.topic(topic, key_type=bytes, value_type=bytes))
    async def quiet(stream: Any) -> None:
        async for _ in stream.events():
            seen.append(loop.time())

    await app.start()
    try:
        fetcher = app.consumer._thread._consumer._fetcher  # type: ignore[attr-defined]
        waits: list[int] = []  # the wait of every fetch the fetcher built
        build = fetcher._get_actions_per_node

        def spy(assignment: Any) -> Any:
            out = build(assignment)
            if out[0]:
                waits.append(fetcher._fetch_max_wait_ms)
            return out

        fetcher._get_actions_per_node = spy
        await _until(lambda: IDLE in waits, "the idle wait")
        late = []
        for k in range(3):
            await asyncio.sleep(0.3 + 0.2 * k)  # somewhere inside a waiting fetch
            sent = loop.time()
            await loop.run_in_executor(None, _publish, bus.kafka_bootstrap_servers, topic, 1,
                                       b"r")
            await _until(lambda k=k: len(seen) > k, f"record {k}")
            late.append(seen[k] - sent)
        # each within a second of a 10 s wait: by luck, (1 / 10) ** 3
        assert max(late) < 1.0, f"a record waited for the fetch: {late}"
        # and once records came, the short wait again (more may follow)
        await _until(lambda: waits[-1] == IDLE, "the idle wait again")
        mark = len(waits)
        await loop.run_in_executor(None, _publish, bus.kafka_bootstrap_servers, topic, 1, b"r")
        await _until(lambda: BUSY in waits[mark:], "the busy wait")
    finally:
        await _stop(app, bus, prefix)


async def test_a_partition_faust_takes_again_is_read_at_once_not_after_the_timeout(
        bus: Settings, tmp_path: Path) -> None:
    """An agent's buffer fills, faust holds its partition back, the buffer drains and
    faust takes the partition again: its buffered records must come at once. Before
    `FairFetchConsumer.on_buffer_drop` woke the wait, each such turn waited out faust's
    1 s fetch timeout (nothing new arrives on the quiet topic to end it)."""
    prefix = f"t{uuid.uuid4().hex[:12]}."
    backlog_topic, quiet_topic = f"{prefix}backlog", f"{prefix}quiet"
    _topics(bus, backlog_topic, quiet_topic)
    records = 2_000
    _publish(bus.kafka_bootstrap_servers, backlog_topic, records, RECORD)
    app = _app(bus, f"{prefix}held", tmp_path, {"fetch_max_wait_ms": BUSY},
               stream_buffer_maxsize=32)
    loop = asyncio.get_running_loop()
    arrived: list[float] = []
    held_back = 0  # events seen while faust held the partition back

    @app.agent(app.topic(backlog_topic, key_type=bytes, value_type=bytes))
    async def backlog(stream: Any) -> None:
        nonlocal held_back
        async for _ in stream.events():
            arrived.append(loop.time())
            held_back += bool(app.consumer._buffered_partitions)  # type: ignore[attr-defined]

    @app.agent(app.topic(quiet_topic, key_type=bytes, value_type=bytes))
    async def quiet(stream: Any) -> None:
        async for _ in stream.events():
            pass

    await app.start()
    try:
        await _until(lambda: len(arrived) >= records, "the backlog")
        gaps = [b - a for a, b in zip(arrived, arrived[1:], strict=False)]
        assert held_back, "faust never held the partition back: the test proves nothing"
        # a turn without the wake: ~1 s (faust's timeout, less what had passed)
        assert max(gaps) < 0.4, f"records waited {max(gaps):.2f} s after a hold-back"
    finally:
        await _stop(app, bus, prefix)
