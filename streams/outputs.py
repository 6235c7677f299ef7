"""The worker's output records, produced by librdkafka and acknowledged per unit of work.

Faust's own producer is aiokafka: every produce request is built, framed and written in
Python on the worker's event loop, and at a few thousand records a second that was a
fifth of the worker's only core (py-spy during `bench_pipeline.py`, 2026-12-02: the
sender routine, request encoding and socket writes). librdkafka does that work in its
own C threads, outside the GIL; the event loop only enqueues. The tables' changelog
records take the same road (streams/changelog.py).

The delivery contract is the one the agents were written for: a unit of work (a batch of
candles, one gate event) enqueues its records into a `Deliveries`, awaits `wait()`, and
only then writes its state. `wait()` raises `DeliveryFailed` when any record was refused
or timed out (librdkafka retries for `message.timeout.ms`), and the agent then stops the
worker with its offsets uncommitted, so the records are produced again after the restart.

Records are partitioned with murmur2 (`murmur2_random` for keyed records), aiokafka's and
faust's partitioner: a key lands on the same partition whichever client produced it.
Idempotence keeps each partition's records in order across librdkafka's retries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from topics.bus import Headers, producer_config
from topics.settings import Settings

log = logging.getLogger("ai_trader.streams.outputs")
#: How long the poll thread blocks in librdkafka waiting for delivery reports.
POLL_SECONDS = 0.05
#: How long `send` waits for room when librdkafka's local queue is full.
QUEUE_FULL_WAIT = 0.005


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge a record of the unit of work."""


class Deliveries:
    """The records one unit of work enqueued; `wait()` returns once every one is
    acknowledged by the broker.

    Delivery reports arrive on the producer's poll thread; the event loop is woken once,
    when the last one of the unit has arrived, not once per record.
    """

    __slots__ = ("_loop", "_lock", "_pending", "_errors", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending = 0
        self._errors: list[str] = []
        self._waiter: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        """Records enqueued and not yet acknowledged (or refused)."""
        return self._pending

    def _enqueued(self) -> None:
        with self._lock:
            self._pending += 1

    def _not_enqueued(self) -> None:
        with self._lock:
            self._pending -= 1

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery report (on the poll thread)."""
        with self._lock:
            self._pending -= 1
            if err is not None:
                self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            wake = self._pending == 0 and self._waiter is not None
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is closed: the worker has stopped, nobody waits
                pass

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until every enqueued record is acknowledged; `DeliveryFailed` if any was not."""
        with self._lock:
            if self._pending:
                self._waiter = self._loop.create_future()
        if self._waiter is not None:
            await self._waiter
            self._waiter = None
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"{len(errors)} record(s) not delivered: {errors[:3]}")


class OutputProducer:
    """A librdkafka producer of the worker's outputs, with a thread that serves its
    delivery reports. The worker has two, by linger (streams/app.py, `BULK_TOPICS`); a
    unit of work's `Deliveries` may hold records of both."""

    def __init__(self, settings: Settings, name: str = "outputs", **overrides: Any) -> None:
        self._producer = Producer(producer_config(settings, **overrides))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve_reports, name=f"{name}-delivery",
                                        daemon=True)
        self._thread.start()

    def _serve_reports(self) -> None:
        # Must outlive any error: without this thread no unit of work ever completes.
        while not self._stopping.is_set():
            try:
                self._producer.poll(POLL_SECONDS)
            except Exception:  # noqa: BLE001 - a report callback failed; keep serving
                log.exception("outputs: a delivery report failed")

    def deliveries(self) -> Deliveries:
        """A new unit of work, bound to the running event loop."""
        return Deliveries(asyncio.get_running_loop())

    async def send(self, deliveries: Deliveries, topic: str, key: bytes | None,
                   value: bytes | None, headers: Headers | None = None) -> None:
        """Enqueue one record of `deliveries` (waits for room while the queue is full)."""
        while True:
            deliveries._enqueued()
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers,
                                       on_delivery=deliveries.on_delivery)
                return
            except BufferError:
                deliveries._not_enqueued()
                await asyncio.sleep(QUEUE_FULL_WAIT)
            except BaseException:
                deliveries._not_enqueued()
                raise

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (up to `timeout`) and stop the report thread; the number
        of records left undelivered (their units never completed: they are produced again
        after the restart)."""
        left = self._producer.flush(timeout)
        self._stopping.set()
        self._thread.join(POLL_SECONDS * 4)
        if left:
            log.warning("outputs: %d record(s) undelivered at stop", left)
        return left
