"""streams/outputs.py on the real broker: a unit of work's records are acknowledged when
`wait()` returns, a refused record fails its unit, a full local queue is waited out, and
keys land where faust's (aiokafka's) producer puts them."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import NewTopic

from streams.outputs import Deliveries, DeliveryFailed, OutputProducer, ReportPump
from topics.bus import admin_client, consumer_config, wait_until_served
from topics.settings import Settings


@pytest.fixture
def topic(bus: Settings) -> Iterator[str]:
    """A fresh 6-partition topic that refuses records over 2,000 bytes."""
    name = f"outputs-{uuid.uuid4().hex[:8]}"
    admin = admin_client(bus)
    admin.create_topics([NewTopic(name, 6, 1, config={"max.message.bytes": "2000"})]
                        )[name].result(30)
    wait_until_served(admin, {name: 6}, 30)
    yield name
    admin.delete_topics([name])[name].result(30)


def _end_offsets(bus: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer(consumer_config(bus, f"outputs-{uuid.uuid4().hex[:6]}"))
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(6)}
    finally:
        consumer.close()


def test_wait_returns_once_the_broker_has_every_record(bus: Settings, topic: str) -> None:
    async def run() -> tuple[int, int]:
        producer = OutputProducer(bus)
        try:
            unit = producer.deliveries()
            for k in range(300):
                await producer.send(unit, topic, f"key{k % 17}".encode(), b"v%d" % k)
            assert unit.pending > 0  # nothing acknowledged synchronously
            await unit.wait()
            pending = unit.pending
            await unit.wait()  # nothing left: returns at once
            return pending, sum(_end_offsets(bus, topic).values())
        finally:
            producer.close()

    pending, stored = asyncio.run(run())
    assert pending == 0
    assert stored == 300


def test_reports_are_served_on_the_event_loop_and_the_pump_stops_when_all_are_in(
        bus: Settings, topic: str) -> None:
    """No thread takes the GIL from the loop to run a report callback (streams/outputs.py:
    that hand-over made acknowledgements trickle in at full load); once every record is
    acknowledged, nothing wakes an idle loop."""
    async def run() -> tuple[set[int], int, bool, bool]:
        pump = ReportPump()
        quick = OutputProducer(bus, pump=pump)
        slow = OutputProducer(bus, "bulk", pump=pump, **{"linger.ms": 50})
        threads: set[int] = set()

        class Recording(Deliveries):
            __slots__ = ()

            def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
                threads.add(threading.get_ident())
                super().on_delivery(err, msg)

        try:
            unit = Recording(asyncio.get_running_loop())
            for k in range(50):
                await (quick if k % 2 else slow).send(unit, topic, b"k%d" % k, b"v")
            running = pump.running
            await unit.wait()
            for _ in range(100):  # the last tick finds nothing outstanding
                if not pump.running:
                    break
                await asyncio.sleep(0.01)
            return threads, threading.get_ident(), running, pump.running
        finally:
            quick.close()
            slow.close()

    threads, loop_thread, running_while_sending, running_after = asyncio.run(run())
    assert threads == {loop_thread}
    assert running_while_sending
    assert not running_after


def test_a_unit_spread_over_two_producers_waits_for_both(bus: Settings, topic: str) -> None:
    """The worker sends the records no decision waits for through a producer that
    lingers longer (streams/app.py, BULK_TOPICS); one unit of work holds both kinds."""
    async def run() -> int:
        quick, slow = OutputProducer(bus), OutputProducer(bus, "bulk", **{"linger.ms": 400})
        try:
            unit = quick.deliveries()
            await quick.send(unit, topic, b"decision", b"d")
            await slow.send(unit, topic, b"indicators", b"i")
            await unit.wait()
            # read at once: had wait() returned with the first acknowledgement, the
            # lingering record would still be in its producer for most of 400 ms
            return sum(_end_offsets(bus, topic).values())
        finally:
            quick.close()
            slow.close()

    assert asyncio.run(run()) == 2


def test_a_refused_record_fails_its_unit_and_only_its_unit(bus: Settings, topic: str) -> None:
    async def run() -> tuple[str, int]:
        producer = OutputProducer(bus)
        try:
            bad, good = producer.deliveries(), producer.deliveries()
            await producer.send(good, topic, b"a", b"fine")
            await producer.send(bad, topic, b"b", os.urandom(5000))  # over the limit
            await producer.send(bad, topic, b"c", b"fine too")
            with pytest.raises(DeliveryFailed) as failed:
                await asyncio.wait_for(bad.wait(), 60)
            await asyncio.wait_for(good.wait(), 60)
            return str(failed.value), bad.pending
        finally:
            producer.close()

    message, pending = asyncio.run(run())
    assert "1 record(s) not delivered" in message
    assert topic in message
    assert "too large" in message.lower()
    assert pending == 0


def test_a_full_local_queue_is_waited_out_not_lost(bus: Settings, topic: str) -> None:
    async def run() -> int:
        producer = OutputProducer(bus, **{"queue.buffering.max.messages": 5})
        try:
            unit = producer.deliveries()
            for k in range(200):
                await producer.send(unit, topic, b"k", b"%d" % k)
            await asyncio.wait_for(unit.wait(), 60)
            return sum(_end_offsets(bus, topic).values())
        finally:
            producer.close()

    assert asyncio.run(run()) == 200


def test_keys_land_on_the_partitions_faust_producer_chooses(bus: Settings,
                                                            topic: str) -> None:
    """The gate reads an account's ideas and commands from one partition whoever wrote
    them: the worker's outputs, the CLI and the API must agree with aiokafka."""
    keys = [f"account-{k}" for k in range(40)]

    async def run() -> tuple[dict[str, int], dict[str, int]]:
        producer = OutputProducer(bus)
        ours: dict[str, int] = {}
        try:
            unit = producer.deliveries()
            for key in keys:
                await producer.send(unit, topic, key.encode(), key.encode())
            await unit.wait()
        finally:
            producer.close()
        consumer = Consumer(consumer_config(bus, f"outputs-{uuid.uuid4().hex[:6]}"))
        consumer.assign([TopicPartition(topic, p, 0) for p in range(6)])
        while len(ours) < len(keys):
            for msg in consumer.consume(100, 5):
                got, partition = msg.key(), msg.partition()
                if msg.error() is None and got is not None and partition is not None:
                    ours[got.decode()] = partition
        consumer.close()
        aio = AIOKafkaProducer(**bus.aiokafka_config())
        await aio.start()
        try:
            theirs = {key: (await aio.send_and_wait(topic, b"x", key=key.encode())).partition
                      for key in keys}
        finally:
            await aio.stop()
        return ours, theirs

    ours, theirs = asyncio.run(run())
    assert ours == theirs
    assert len(set(ours.values())) == 6


def test_a_report_after_the_worker_stopped_is_ignored() -> None:
    """The report thread can outlive the event loop at shutdown: the report must not
    raise in it (an exception there would end the thread, and no later unit of work
    would ever complete)."""
    loop = asyncio.new_event_loop()
    unit = Deliveries(loop)
    unit._enqueued()
    waiting = loop.create_task(unit.wait())
    loop.run_until_complete(asyncio.sleep(0))  # the wait is registered
    assert not waiting.done()
    waiting.cancel()
    loop.run_until_complete(asyncio.gather(waiting, return_exceptions=True))
    loop.close()
    unit.on_delivery(None, None)  # type: ignore[arg-type]
    assert unit.pending == 0
