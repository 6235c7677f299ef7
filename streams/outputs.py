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

Delivery reports are served on the event loop itself (`ReportPump`), not by a thread per
producer. Each report runs a Python callback, so a report thread needs the GIL, and the
event loop, busy with the agents, hands it over only every switch interval (20 ms in the
worker, `configure_interpreter`): a unit of work's acknowledgements trickled in one hand-
over at a time. In `bench_pipeline.py` bursts (2026-12-03, scratch instrumentation of the
batchers) a gate batch waited 97-423 ms for its acknowledgements, and the gate, which
commits one batch at a time, sat blocked 24-77 % of the time; served on the loop, 3-4 ms
and 1-6 %; a market batch's, 43-356 ms before and 13-28 ms after.

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
#: How often the event loop serves delivery reports while records are outstanding: the
#: most a unit of work's completion waits past its last acknowledgement.
PUMP_SECONDS = 0.001
#: How long `send` waits for room when librdkafka's local queue is full.
QUEUE_FULL_WAIT = 0.005


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge a record of the unit of work."""


class Deliveries:
    """The records one unit of work enqueued; `wait()` returns once every one is
    acknowledged by the broker.

    Delivery reports arrive on the event loop (`ReportPump`), or on the thread of a
    producer's `close()` at shutdown; the waiter is woken once, when the last one of the
    unit has arrived, not once per record.
    """

    __slots__ = ("_loop", "_thread", "_lock", "_pending", "_errors", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: the thread of the loop the unit was made on: a report served there wakes the
        #: waiter directly, without a round trip through the loop's self-pipe
        self._thread = threading.get_ident()
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
        """librdkafka's delivery report (served by the producer's `poll` or `flush`)."""
        with self._lock:
            self._pending -= 1
            if err is not None:
                self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            wake = self._pending == 0 and self._waiter is not None
        if wake:
            try:
                if threading.get_ident() == self._thread:
                    self._wake()
                else:
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


class ReportPump:
    """Serves the delivery reports of librdkafka producers on the event loop.

    While any of its producers has a record outstanding (enqueued, in flight, or with a
    report not served yet: `len(producer)`), a timer polls them every `PUMP_SECONDS`;
    each send `kick`s it. An idle worker's loop is not woken. At full load the timer
    fires between the agents' events. A failing report callback is logged and the pump
    goes on: without it no unit of work would ever complete.
    """

    def __init__(self, name: str = "outputs") -> None:
        self.name = name
        self._producers: list[Producer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        """Whether the timer is set (records are outstanding)."""
        return self._timer is not None

    def add(self, producer: Producer) -> None:
        self._producers.append(producer)

    def kick(self) -> None:
        """Records are outstanding: serve their reports soon (on the running loop; a
        timer left on a loop that has gone is replaced)."""
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(PUMP_SECONDS, self._tick)

    def serve(self) -> int:
        """Serve the reports that arrived; the records still outstanding."""
        outstanding = 0
        for producer in self._producers:
            try:
                producer.poll(0)
            except Exception:  # noqa: BLE001 - a report callback failed; keep serving
                log.exception("%s: a delivery report failed", self.name)
            outstanding += len(producer)
        return outstanding

    def _tick(self) -> None:
        self._timer = None
        if self.serve():
            self.kick()


class OutputProducer:
    """A librdkafka producer of the worker's outputs, its delivery reports served on the
    event loop by `pump` (the worker's producers share one). The worker has two, by
    linger (streams/app.py, `BULK_TOPICS`); a unit of work's `Deliveries` may hold records
    of both."""

    def __init__(self, settings: Settings, name: str = "outputs",
                 pump: ReportPump | None = None, **overrides: Any) -> None:
        self._producer = Producer(producer_config(settings, **overrides))
        self._pump = ReportPump(name) if pump is None else pump
        self._pump.add(self._producer)

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
                self._pump.kick()
                return
            except BufferError:
                deliveries._not_enqueued()
                self._pump.kick()  # the reports it serves make room
                await asyncio.sleep(QUEUE_FULL_WAIT)
            except BaseException:
                deliveries._not_enqueued()
                raise

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (up to `timeout`; from any thread, whose reports are
        then served on it); the number of records left undelivered (their units never
        completed: they are produced again after the restart). The producer stays
        usable: the agents may still be finishing a unit of work."""
        left: int = self._producer.flush(timeout)
        if left:
            log.warning("outputs: %d record(s) undelivered at stop", left)
        return left
