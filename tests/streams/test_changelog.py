"""streams/changelog.py on the real broker: a flush returns once every earlier changelog
record is acknowledged, each on the partition it was given; a refused record fails its
acknowledgement, stops the worker and every flush after it; faust's flush-before-commit
waits for the changelog."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator

import faust
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from streams.changelog import Changelog, ChangelogAck, ChangelogFailed, install
from topics.bus import admin_client, consumer_config, wait_until_served
from topics.settings import Settings

PARTITIONS = 4


@pytest.fixture
def topic(bus: Settings) -> Iterator[str]:
    """A fresh compacted topic that refuses records over 2,000 bytes."""
    name = f"changelog-{uuid.uuid4().hex[:8]}"
    admin = admin_client(bus)
    admin.create_topics([NewTopic(name, PARTITIONS, 1, config={
        "max.message.bytes": "2000", "cleanup.policy": "compact"})])[name].result(30)
    wait_until_served(admin, {name: PARTITIONS}, 30)
    yield name
    admin.delete_topics([name])[name].result(30)


def _read(bus: Settings, topic: str, count: int) -> list[tuple[int, bytes, bytes | None]]:
    consumer = Consumer(consumer_config(bus, f"changelog-{uuid.uuid4().hex[:6]}"))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got: list[tuple[int, bytes, bytes | None]] = []
    try:
        for _ in range(60):
            for msg in consumer.consume(count, timeout=0.5):
                if msg.error() is None:
                    got.append((msg.partition(), msg.key(), msg.value()))
            if len(got) >= count:
                break
        return got
    finally:
        consumer.close()


def test_a_flush_returns_once_every_earlier_record_is_on_its_partition(
        bus: Settings, topic: str) -> None:
    sent = [(k % PARTITIONS, b"key%d" % k, None if k % 7 == 0 else b"v%d" % k)
            for k in range(300)]

    async def run() -> tuple[list[ChangelogAck], bool]:
        changelog = Changelog(bus, linger_ms=50)
        try:
            acks = [changelog.send(topic, p, k, v) for p, k, v in sent]
            waiting = not all(ack.done() for ack in acks)  # nothing is acknowledged at once
            await changelog.flush()
            return acks, waiting
        finally:
            changelog.close()

    acks, waiting = asyncio.run(run())
    assert waiting
    assert all(ack.done() and ack.exception() is None for ack in acks)
    assert [ack.message.partition for ack in acks] == [p for p, _, _ in sent]
    assert sorted(_read(bus, topic, len(sent))) == sorted(sent)


def test_a_refused_record_fails_its_ack_the_worker_and_every_flush_after_it(
        bus: Settings, topic: str) -> None:
    failures: list[tuple[ChangelogFailed, bool]] = []
    main = threading.get_ident()

    def on_failure(failure: ChangelogFailed) -> None:
        failures.append((failure, threading.get_ident() == main))

    async def run() -> tuple[ChangelogAck, ChangelogAck, list[str]]:
        changelog = Changelog(bus, linger_ms=5, on_failure=on_failure)
        errors = []
        try:
            good = changelog.send(topic, 0, b"good", b"v")
            refused = changelog.send(topic, 1, b"big", os.urandom(3000))  # over max.message.bytes
            try:
                await changelog.flush()
            except ChangelogFailed as exc:
                errors.append(str(exc))
            # a later generation that lands does not make the state durable again
            changelog.send(topic, 2, b"later", b"v")
            try:
                await changelog.flush()
            except ChangelogFailed as exc:
                errors.append(str(exc))
            await asyncio.sleep(0.1)  # on_failure is called on the loop, soon
            return good, refused, errors
        finally:
            changelog.close()

    good, refused, errors = asyncio.run(run())
    assert good.done()
    assert good.exception() is None
    assert refused.done()
    assert isinstance(refused.exception(), ChangelogFailed)
    assert f"{topic}[1]" in str(refused.exception())
    assert len(errors) == 2
    assert all("not durable" in error and f"{topic}[1]" in error for error in errors)
    assert [on_loop for _, on_loop in failures] == [True]


def test_records_are_bytes_on_a_given_partition(bus: Settings, topic: str) -> None:
    changelog = Changelog(bus, linger_ms=5)
    with pytest.raises(TypeError, match="bytes"):
        changelog.send(topic, 0, "key", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        changelog.send(topic, 0, b"key", {"v": 1})  # type: ignore[arg-type]
    with pytest.raises(ChangelogFailed, match="partition"):
        changelog.send(topic, None, b"key", b"v")


def test_faust_flushes_the_changelog_before_it_commits(bus: Settings, topic: str) -> None:
    """faust's `Consumer._commit_offsets` awaits `app.producer.flush()` before it
    commits: after `install` that flush fails while a changelog record is refused."""
    app = faust.App(f"changelog-test-{uuid.uuid4().hex[:6]}", broker="kafka://localhost:1")
    changelog = Changelog(bus, linger_ms=5)
    install(app, changelog)
    assert type(app.producer).__name__ == "FlushingProducer"
    with pytest.raises(RuntimeError, match="before the app's producer"):
        install(app, changelog)  # too late: the producer exists

    async def run() -> tuple[bool, str]:
        ack = changelog.send(topic, 0, b"k", b"v")
        await app.producer.flush()
        landed = ack.done()
        changelog.send(topic, 0, b"big", os.urandom(3000))
        try:
            await app.producer.flush()
        except ChangelogFailed as exc:
            return landed, str(exc)
        return landed, ""

    landed, error = asyncio.run(run())
    changelog.close()
    assert landed
    assert f"{topic}[0]" in error
