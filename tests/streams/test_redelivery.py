"""streams/redelivery.py on the real broker: records faust has handed to an agent are
processed exactly once and in order, whatever order faust's recovery resumes the flow and
seeks to the committed offsets in.

Each test runs a faust app in-process with one agent on its own one-partition topic,
lets the agent finish a few records (committed), then holds the agent on its next record
so that the following ones wait in its buffer — and then does what faust's
`Recovery.on_recovery_completed` does once the stream partitions are resumed, in the two
orders a running worker can see: the seek lands before the buffered records were
fetched, or after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import NewTopic
from faust.types import TP

from streams import redelivery
from streams.fast_drain import FastDrainConsumer
from topics.bus import admin_client
from topics.settings import Settings

DONE = 5  # processed and committed before the agent is held
HELD = 20  # handed over while the agent is held
AFTER = 5  # published once it goes on


class Harness:
    def __init__(self, app: faust.App, topic: str, bootstrap: str) -> None:
        self.app = app
        self.topic = topic
        self.bootstrap = bootstrap
        self.tp = TP(topic, 0)
        self.seen: list[int] = []
        self.go = asyncio.Event()
        self.go.set()

    @property
    def consumer(self) -> Any:
        return self.app.consumer

    async def publish(self, count: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for _ in range(count):
                await producer.send_and_wait(self.topic, b"x", partition=0)
        finally:
            await producer.stop()

    async def until(self, check: Callable[[], bool], what: str, within: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; agent saw {self.seen}")
            await asyncio.sleep(0.02)

    def handed_over_up_to(self, offset: int) -> bool:
        read = self.consumer._read_offset.get(self.tp)  # faust's own bookkeeping
        return read is not None and read >= offset

    async def hold_agent_with_records_buffered(self, *, seek_first: bool) -> None:
        """Agent done with DONE records (committed); then HELD more arrive, the agent
        holds the first of them and the rest wait in its buffer."""
        await self.publish(DONE)
        await self.until(lambda: self.seen == list(range(DONE)), "the first records")
        await self.until(lambda: self.consumer._committed_offset.get(self.tp) == DONE,
                         "their commit")
        self.go.clear()
        if seek_first:
            # recovery: the partition is resumed and the seek lands while the records
            # are still on their way (the order that stalled the worker)
            self.consumer.pause_partitions({self.tp})
            await self.publish(HELD)
            await self.consumer.perform_seek()
            self.consumer.resume_partitions({self.tp})
        else:
            await self.publish(HELD)
        await self.until(lambda: self.handed_over_up_to(DONE + HELD - 1), "the hand-over")
        assert self.seen == list(range(DONE + 1))  # the agent holds record DONE


@pytest.fixture(params=[redelivery.HandOverConsumer, FastDrainConsumer],
                ids=["faust-hand-over", "worker-hand-over"])
async def harness(bus: Settings, request: pytest.FixtureRequest,
                  tmp_path: Path) -> AsyncIterator[Harness]:
    prefix = f"t{uuid.uuid4().hex[:12]}."
    app = faust.App(f"{prefix}redelivery", broker=f"kafka://{bus.kafka_bootstrap_servers}",
                    store="memory://", web_enabled=False, value_serializer="raw",
                    key_serializer="raw", consumer_auto_offset_reset="earliest",
                    broker_commit_interval=0.1, topic_allow_declare=True,
                    topic_replication_factor=1, datadir=str(tmp_path))
    redelivery.install(app, request.param)
    admin = admin_client(bus)
    for future in admin.create_topics([NewTopic(f"{prefix}records", 1, 1)]).values():
        future.result()
    topic = app.topic(f"{prefix}records", partitions=1, value_type=bytes, key_type=bytes)
    h = Harness(app, topic.get_topic_name(), bus.kafka_bootstrap_servers)

    @app.agent(topic)
    async def agent(stream: Any) -> None:
        async for event in stream.events():
            h.seen.append(event.message.offset)
            await h.go.wait()

    await app.start()
    await h.until(lambda: bool(app.consumer.assignment()), "the assignment")
    try:
        yield h
    finally:
        await app.stop()
        mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()
        del admin


async def _finish(h: Harness) -> None:
    h.go.set()
    await h.publish(AFTER)
    total = DONE + HELD + AFTER
    await h.until(lambda: len(h.seen) >= total
                  and h.consumer._committed_offset.get(h.tp) == total, "every record")
    await asyncio.sleep(0.3)  # a record handed over twice would arrive now
    assert h.seen == list(range(total))  # each once, in order
    assert not h.consumer._gap.get(h.tp)  # nothing counted as done without being processed


async def test_seek_before_the_hand_over_then_resume_keeps_the_buffered_records(
        harness: Harness) -> None:
    await harness.hold_agent_with_records_buffered(seek_first=True)
    harness.app.flow_control.resume()  # what recovery does next; faust cleared the buffer
    await _finish(harness)


async def test_resume_then_seek_after_the_hand_over_hands_nothing_over_twice(
        harness: Harness) -> None:
    await harness.hold_agent_with_records_buffered(seek_first=False)
    harness.app.flow_control.resume()
    await harness.consumer.perform_seek()  # back to the committed offset (DONE)
    await _finish(harness)


async def test_a_resume_after_a_suspension_still_clears_the_buffers(
        harness: Harness) -> None:
    """A rebalance suspends the flow; the records buffered before it are dropped on the
    resume and read again from the committed offsets, as faust does."""
    await harness.hold_agent_with_records_buffered(seek_first=False)
    harness.consumer.stop_flow()
    harness.app.flow_control.suspend()
    harness.app.flow_control.resume()
    assert all(q.empty() for q in harness.app.flow_control._queues)
    await harness.consumer.perform_seek()
    harness.consumer.resume_flow()
    harness.go.set()
    total = DONE + HELD
    await harness.until(lambda: harness.consumer._committed_offset.get(harness.tp) == total,
                        "every record after the seek")
    # DONE was held by the agent when the flow stopped, then read again; the rest once
    assert harness.seen == [*range(DONE + 1), *range(DONE, total)]
