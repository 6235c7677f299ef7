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
from streams.fetching import PER_PARTITION
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
    admin = admin_client(bus)
    for future in admin.create_topics([NewTopic(backlog_topic, 1, 1),
                                       NewTopic(quiet_topic, 1, 1)]).values():
        future.result()
    _publish(bus.kafka_bootstrap_servers, backlog_topic, BACKLOG, RECORD)

    app = faust.App(f"{prefix}fetching", broker=f"kafka://{bus.kafka_bootstrap_servers}",
                    store="memory://", web_enabled=False, value_serializer="raw",
                    key_serializer="raw", consumer_auto_offset_reset="earliest",
                    topic_allow_declare=True, topic_replication_factor=1,
                    stream_buffer_maxsize=64, datadir=str(tmp_path))
    redelivery.install(app, type("Consumer", (WorkerConsumer,), {"fetch_max_wait_ms": 7}))
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
        await app.stop()
        mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()


def test_the_worker_consumer_fetch_wait_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(KAFKA_CONSUMER_FETCH_WAIT_MS=23, AI_TRADER_STATE_DIR=tmp_path)
    consumer = Worker(settings).app.transport.Consumer
    assert issubclass(consumer, WorkerConsumer)
    assert consumer.fetch_max_wait_ms == 23
