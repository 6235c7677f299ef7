"""The tables' changelog records, produced by librdkafka instead of faust's producer.

Faust writes a table's changelog through its own aiokafka producer: each record is
framed, batched and sent by Python code on the worker's only event loop. The gate writes
a book record and a decided-idea record per idea and the market agent an engine record
per symbol and batch, and in `bench_pipeline.py` that path cost about as much as the
gate's own work. librdkafka does it in its C threads; the loop only enqueues.

What faust's producer guaranteed is kept:

- **Durable before the offsets move.** Faust flushes its producer before it commits the
  consumers' offsets (`Consumer._commit_offsets`); `install` makes that flush also wait
  for every changelog record enqueued before it, and fail if any was refused, so no
  offset is committed past a table write that did not land.
- **Each write's acknowledgement.** `send` returns a `ChangelogAck` with `done()` and
  `exception()`, what the gate's journal reads (streams/gate_journal.py), and the
  `message.partition` faust's `Table.on_key_set` reads.
- **Order within a partition:** the producer is idempotent, as the outputs' are.

A record the broker refuses (after librdkafka's retries for `message.timeout.ms`) also
calls `on_failure`: the worker stops with its offsets uncommitted, and its tables are
restored from what did land.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.outputs import PUMP_SECONDS, ReportPump
from topics.bus import producer_config
from topics.settings import Settings

log = logging.getLogger("ai_trader.streams.changelog")
#: How long `send` (synchronous: faust's table API is) waits for room in librdkafka's
#: queue before it gives up; the queue holds 100,000 records, so only a broker that has
#: stopped acknowledging fills it.
QUEUE_FULL_TIMEOUT = 30.0


class ChangelogFailed(RuntimeError):
    """A changelog record was not acknowledged: the table's state is not durable."""


class _Sent:
    """What faust's `Table.on_key_set` reads of a send's result: `message.partition`."""

    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition


class ChangelogAck:
    """One changelog record's acknowledgement (the journal's `Ack`)."""

    __slots__ = ("message", "_done", "_error")

    def __init__(self, partition: int) -> None:
        self.message = _Sent(partition)
        self._done = False
        self._error: ChangelogFailed | None = None

    def done(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        return self._error


class _Generation:
    """The records enqueued between two flushes: a count the reports lower. The
    flush that closes a generation waits for its count to reach zero; records of later
    generations do not hold it (a busy gate never lets the whole queue drain)."""

    __slots__ = ("lock", "pending", "drained")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.drained = threading.Event()
        self.drained.set()


class Changelog:
    """A librdkafka producer of changelog records (made by the first record: a worker
    that is built but never run has none), its reports served on the event loop by
    `pump` (streams/outputs.py; the worker's producers share one)."""

    def __init__(self, settings: Settings, linger_ms: float,
                 on_failure: Callable[[ChangelogFailed], None] | None = None,
                 pump: ReportPump | None = None) -> None:
        self._config = producer_config(settings, **{"linger.ms": linger_ms})
        self._producer: Producer | None = None
        self._pump = ReportPump("changelog") if pump is None else pump
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_failure = on_failure
        self._generation = _Generation()
        self._flush_lock: asyncio.Lock | None = None
        #: the first refusal; sticky: no flush succeeds after it (see `flush`)
        self.failure: ChangelogFailed | None = None

    def _start(self) -> Producer:
        producer = self._producer = Producer(self._config)
        self._loop = asyncio.get_running_loop()
        self._pump.add(producer)
        return producer

    def send(self, topic: str, partition: int | None, key: bytes | None,
             value: bytes | None) -> ChangelogAck:
        """Enqueue one record on an explicit partition (faust's: the current event's).
        Called on the worker's event loop (faust's table API is synchronous)."""
        if partition is None:
            raise ChangelogFailed(f"{topic}: a changelog record needs its partition")
        if not (key is None or type(key) is bytes) or not (value is None
                                                            or type(value) is bytes):
            raise TypeError(f"{topic}: changelog keys and values are bytes here, not "
                            f"{type(key).__name__}/{type(value).__name__}")
        producer = self._producer or self._start()
        ack = ChangelogAck(partition)
        generation = self._generation
        with generation.lock:
            generation.pending += 1
            generation.drained.clear()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self._delivered(generation, ack, err, msg)

        deadline = time.monotonic() + QUEUE_FULL_TIMEOUT
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition,
                                 on_delivery=delivered)
                self._pump.kick()
                return ack
            except BufferError:
                if time.monotonic() < deadline:
                    # synchronous, on the loop: the pump cannot run, the reports are
                    # served here (they make the room)
                    self._pump.serve()
                    time.sleep(0.001)
                    continue
                self._forget(generation)
                raise ChangelogFailed(f"{topic}: librdkafka's queue stayed full for "
                                      f"{QUEUE_FULL_TIMEOUT:.0f} s") from None
            except BaseException:
                self._forget(generation)
                raise

    @staticmethod
    def _forget(generation: _Generation) -> None:
        with generation.lock:
            generation.pending -= 1
            if not generation.pending:
                generation.drained.set()

    def _delivered(self, generation: _Generation, ack: ChangelogAck,
                   err: KafkaError | None, msg: Message) -> None:
        """A delivery report (on the event loop, or on the thread of `close`)."""
        failure = None
        if err is not None:
            failure = ChangelogFailed(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            ack._error = failure
            if self.failure is None:
                self.failure = failure
        ack._done = True
        with generation.lock:
            generation.pending -= 1
            if not generation.pending:
                generation.drained.set()
        if failure is not None:
            log.error("changelog: %s", failure)
            if self._on_failure is not None and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._on_failure, failure)
                except RuntimeError:  # the loop is closed: the worker has stopped
                    pass

    async def flush(self) -> None:
        """Until every record enqueued before the call is acknowledged.

        Raises ChangelogFailed once any record was ever refused, not only one of this
        flush's: faust would otherwise commit, at its next try, offsets past a table
        write that never landed. Flushes run one at a time, so when one returns, every
        earlier generation has drained too.
        """
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            generation, self._generation = self._generation, _Generation()
            # served by the pump on this loop (or by `close` on another thread); a table
            # written while the worker stops still learns its fate: this loop keeps the
            # pump going for as long as the last flush waits
            while not generation.drained.is_set():
                self._pump.kick()
                await asyncio.sleep(PUMP_SECONDS)
        if self.failure is not None:
            raise ChangelogFailed(f"a table's changelog record was not written "
                                  f"({self.failure}): its state is not durable")

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (up to `timeout`); the records left undelivered. The
        producer stays usable (see `_start`)."""
        if self._producer is None:
            return 0
        left: int = self._producer.flush(timeout)
        if left:
            log.warning("changelog: %d record(s) undelivered at stop", left)
        return left


def install(app: Any, changelog: Changelog) -> None:
    """Make faust's flush-before-commit also wait for `changelog`'s records. Call before
    the app's producer exists (right after `faust.App(...)`)."""
    if app._producer is not None:
        raise RuntimeError("install() must run before the app's producer exists")
    base = app.transport.Producer

    class FlushingProducer(base):  # type: ignore[misc, valid-type]
        async def flush(self) -> None:
            await super().flush()
            await changelog.flush()

    app.transport.Producer = FlushingProducer


class LibrdkafkaChangelogMixin:
    """For a faust Table: `send_changelog` through the installed `Changelog`."""

    changelog: Changelog | None = None
    changelog_topic: Any

    def send_changelog(self, partition: int | None, key: Any, value: Any,
                       key_serializer: Any = None, value_serializer: Any = None) -> Any:
        if self.changelog is None:
            raise ChangelogFailed("the table's changelog producer is not installed")
        return self.changelog.send(self.changelog_topic.get_topic_name(), partition,
                                   key, value)
