"""Fetched records go to the agents a few hundred per partition at a time, so that a
backlog on one topic cannot hold back the records of another.

Faust hands fetched records to the agents from one loop, in the order of each batch it
gets from its consumer (`Consumer._drain_messages`), and gets the next batch only once
the whole batch is handed over. A record whose agent's buffer is full waits there, and
every record behind it waits too, whichever agent it is for. aiokafka's consumer returns
everything it has buffered for the partitions asked for: after a backlog of candles,
a batch of tens of thousands of records. While the market agent worked through one,
at its own pace, the gate's records were not even fetched: in `bench_pipeline.py`
(120,000 candles as fast as the bench could publish, 2026-12-02) the gate got nothing
for over 20 s and the watchdog stopped the worker, in 3 runs out of 3. Ideas and kill
switches would wait the same way behind any candle backlog in production (a restart
after an outage, a feed catching up).

Limiting the fetch size does not bound it: the broker returns whole record batches, and
a producer that batched its candles (1 MB batches are librdkafka's default) gets them
fetched whole whatever the limit. So `FairFetchConsumer` takes at most `PER_PARTITION`
records from each partition per batch (aiokafka's `max_poll_records` counts over all
partitions and drains them in order, the first partitions first); the rest stays in
aiokafka's buffer for the next batch, where every partition again has its turn. A
record of the quiet topic is then handed over after at most one such batch.
`tests/streams/test_fetching.py` checks the bound on the real broker.

The fetch wait. faust's worker consumer asks the broker to hold each fetch up to
1,500 ms while nothing new arrives, and aiokafka keeps one fetch in flight per broker,
leaving out the partitions that still have records buffered. So once a partition's
buffered records are taken, its next records wait for the fetch in flight for the
*other* partitions, which a quiet topic (the gate's inbox between ideas, the account
states) keeps open for the whole 1,500 ms. `FairFetchConsumer.fetch_max_wait_ms`
replaces it (the worker sets it from `KAFKA_CONSUMER_FETCH_WAIT_MS`, 10 ms by default):
a candle arriving after a busy moment no longer waits for the gate's topics. Asking
every 10 ms when idle cost 13.9-16.5 % of a core for the worker and 11.4-15.3 % for the
broker (`tests/bench/bench_idle.py`); hence the idle wait below.

The idle wait. The wait matters only while some partition the agents read is left out
of the fetch in flight (records of it still buffered). When the last fetch brought
nothing and none is left out, every partition is in the next fetch and a new record ends
it at once, so that fetch may wait `idle_fetch_wait_ms` (the worker: 500 ms,
`KAFKA_IDLE_FETCH_WAIT_MS`) instead: an idle worker then asks a few times a second
rather than a hundred (`next_fetch_wait`, `AdaptiveFetchWait`). Partitions faust does
not read at the time (a table's changelog after recovery, whose last fetched records
stay buffered) do not count: nothing waits for them; those it holds back while their
agent's buffer is full do.

Held-back partitions. When an agent's buffer fills, faust stops taking its partition
(`on_buffer_full`) and takes it again once the buffer has drained (`on_buffer_drop`). A
wait for fetched records that began meanwhile looks only at the partitions it could take
then: with the partition's records already buffered and nothing new arriving elsewhere,
it slept out faust's whole 1 s timeout while those records waited and the agent sat idle.
In `bench_pipeline.py`'s reference worker (each candle forwarded, nothing else) that was
0.7-0.9 s of idle in every 1.5-2 s of a burst, worker and broker both waiting. So a
partition let go again wakes the wait (`FairFetchConsumer.on_buffer_drop`), which then
takes its records at once.

What it replaces is aiokafka 0.14's `Fetcher.fetched_records`, the same steps with the
limit per partition (private aiokafka state: `tests/streams/test_fetching.py` fails if
it changes shape; aiokafka is pinned below 0.15).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Container, Iterable
from typing import Any

from aiokafka.consumer.fetcher import FetchResult
from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

#: Most records taken from one partition for one batch of faust's hand-over loop.
PER_PARTITION = 256


async def fetched_records(fetcher: Any, partitions: set[Any] | None,
                          timeout: float,  # noqa: ASYNC109 - aiokafka's signature
                          per_partition: int) -> dict[Any, list[Any]]:
    """aiokafka's `Fetcher.fetched_records` with at most `per_partition` records from
    each partition: records fetched and not taken stay buffered for the next call."""
    while True:
        if fetcher._subscriptions.reassignment_in_progress:
            # records fetched before a rebalance may not be this member's any more
            await fetcher._subscriptions.wait_for_assignment()
        start_time = time.monotonic()
        drained: dict[Any, list[Any]] = {}
        for tp in list(fetcher._records.keys()):
            if partitions and tp not in partitions:
                if not fetcher._subscriptions.is_assigned(tp):
                    del fetcher._records[tp]
                continue
            if not _take(fetcher, tp, per_partition, drained):
                return drained  # an error waits for the next call
        if drained or not timeout or not await _more_fetched(fetcher, timeout):
            return drained
        timeout = max(0.0, timeout - (time.monotonic() - start_time))


async def _more_fetched(fetcher: Any, timeout: float) -> bool:  # noqa: ASYNC109
    """Until a fetch completes (True) or `timeout` passes or the fetcher closes."""
    waiter = fetcher._create_fetch_waiter()
    done, pending = await asyncio.wait([waiter], timeout=timeout)
    if not done or fetcher._closed:
        for fut in pending:
            fut.cancel()
        return False
    if waiter.done():
        waiter.result()  # authorization errors
    return True


def _wake_waiters(fetcher: Any) -> None:
    """Ends every wait of `_more_fetched` (on the fetcher's own loop)."""
    for waiter in list(fetcher._fetch_waiters):
        fetcher._notify(waiter)


def _take(fetcher: Any, tp: Any, per_partition: int, drained: dict[Any, list[Any]]) -> bool:
    """Add up to `per_partition` of the partition's buffered records to `drained`; False
    when the partition holds an error and `drained` must be returned first (raises it
    when `drained` is empty, as aiokafka does)."""
    res_or_error = fetcher._records[tp]
    if type(res_or_error) is not FetchResult:
        if drained:
            return False
        del fetcher._records[tp]  # fetch this partition again after the error
        fetcher._notify(fetcher._wait_consume_future)
        res_or_error.check_raise()
        return True
    records = res_or_error.getall(per_partition)
    if not res_or_error.has_more():
        del fetcher._records[tp]  # all taken: fetch this partition again
        fetcher._notify(fetcher._wait_consume_future)
    if records:
        drained[tp] = records
    return True


def next_fetch_wait(last_added: bool, buffered: Iterable[Any], wanted: Container[Any] | None,
                    busy_ms: int, idle_ms: int) -> int:
    """How long the broker may hold the next fetch: `idle_ms` when the last fetch added
    no records and no partition the agents read (`wanted`; None: every one) has records
    buffered, and so left out of the fetch; else `busy_ms`."""
    if last_added:
        return busy_ms
    if any(wanted is None or tp in wanted for tp in buffered):
        return busy_ms
    return idle_ms


class _Either:
    """Membership in either of two live sets (faust changes them in place)."""

    __slots__ = ("_a", "_b")

    def __init__(self, a: Container[Any], b: Container[Any]) -> None:
        self._a, self._b = a, b

    def __contains__(self, item: object) -> bool:
        return item in self._a or item in self._b


class AdaptiveFetchWait:
    """Sets an aiokafka fetcher's wait before each fetch it builds (`next_fetch_wait`).

    Wraps two methods of the fetcher instance that its fetch routine calls on every
    round: `_get_actions_per_node`, which builds the fetch request with
    `_fetch_max_wait_ms`, and `_proc_fetch_request`, which says whether a fetch added
    records (private aiokafka 0.14 API, checked by `tests/streams/test_fetching.py`).
    """

    def __init__(self, fetcher: Any, busy_ms: int, idle_ms: int) -> None:
        self.busy_ms = busy_ms
        self.idle_ms = idle_ms
        #: the partitions faust reads (None: all)
        self.wanted: Container[Any] | None = None
        self.last_added = True
        self._fetcher = fetcher
        self._actions = fetcher._get_actions_per_node
        self._process = fetcher._proc_fetch_request
        fetcher._get_actions_per_node = self._actions_per_node
        fetcher._proc_fetch_request = self._proc_fetch_request

    def _actions_per_node(self, assignment: Any) -> Any:
        self._fetcher._fetch_max_wait_ms = next_fetch_wait(
            self.last_added, self._fetcher._records, self.wanted, self.busy_ms, self.idle_ms)
        return self._actions(assignment)

    async def _proc_fetch_request(self, assignment: Any, node_id: Any, request: Any) -> Any:
        added = await self._process(assignment, node_id, request)
        self.last_added = bool(added)
        return added


class FairConsumerThread(AIOKafkaConsumerThread):
    """faust's aiokafka consumer thread, taking `PER_PARTITION` records per partition,
    with the fetch wait of its faust consumer (`FairFetchConsumer.fetch_max_wait_ms`)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # faust passes a fixed 1,500 ms; aiokafka reads it when the consumer starts
        consumer._fetch_max_wait_ms = getattr(self.consumer, "fetch_max_wait_ms",
                                              FairFetchConsumer.fetch_max_wait_ms)
        return consumer

    def wake_fetched_records(self) -> None:
        """From any thread: a wait for fetched records (`fetched_records`) looks again at
        which partitions it may take and what is buffered for them."""
        consumer, loop = self._consumer, self.thread_loop
        if consumer is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(_wake_waiters, consumer._fetcher)
        except RuntimeError:  # closed between the check and the call: nobody waits
            pass

    async def _fetch_records(self, consumer: Any, active_partitions: set[Any],
                             timeout: float | None = None,  # noqa: ASYNC109
                             max_records: int | None = None) -> Any:
        if not self.consumer.flow_active:
            return {}
        fetcher = consumer._fetcher
        if consumer._closed or fetcher._closed:
            raise ConsumerStoppedError()
        waits = getattr(fetcher, "_ai_trader_waits", None)
        if waits is None:
            busy = getattr(self.consumer, "fetch_max_wait_ms",
                           FairFetchConsumer.fetch_max_wait_ms)
            idle = getattr(self.consumer, "idle_fetch_wait_ms",
                           FairFetchConsumer.idle_fetch_wait_ms)
            waits = fetcher._ai_trader_waits = AdaptiveFetchWait(fetcher, busy, max(idle, busy))
        # faust reads its active partitions, and those it holds back while their agent's
        # buffer is full (their records are still due); none named: it reads them all
        waits.wanted = (_Either(active_partitions, self.consumer._buffered_partitions)
                        if active_partitions else None)
        per_partition = PER_PARTITION if max_records is None else min(PER_PARTITION,
                                                                      max_records)
        with fetcher._subscriptions.fetch_context():
            return await fetched_records(fetcher, active_partitions, timeout or 0.0,
                                         per_partition)


class FairFetchConsumer(Consumer):
    """faust's aiokafka consumer with `FairConsumerThread` as its fetching thread."""

    #: How long the broker may hold a fetch with nothing new (the module docstring).
    fetch_max_wait_ms: int = 10
    #: ... when the last fetch brought nothing and no partition is left out of it.
    idle_fetch_wait_ms: int = 500

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FairConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def on_buffer_drop(self, tp: Any) -> None:
        """faust takes `tp` again after its agent's buffer drained: a wait for fetched
        records that began without it must not sleep on while its records are buffered
        (the module docstring, "Held-back partitions")."""
        held = tp in self._buffered_partitions
        super().on_buffer_drop(tp)
        if held:
            thread = self._thread
            if isinstance(thread, FairConsumerThread):
                thread.wake_fetched_records()
