"""streams/batching.py: when batches seal, the order they complete in, and the bound on
batches in flight."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.batching import Batcher


class Recorder:
    def __init__(self) -> None:
        self.completed: list[list[int]] = []
        self.gate: asyncio.Event | None = None

    async def complete(self, batch: list[int]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.completed.append(batch)


def _batcher(rec: Recorder, **kw: float) -> Batcher[list[int]]:
    options = {"max_size": 3, "inflight": 2, "seal_after": 0.01, **kw}
    return Batcher(list, rec.complete, max_size=int(options["max_size"]),
                   inflight=int(options["inflight"]), seal_after=options["seal_after"])


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_batch_seals_when_nothing_more_waits_or_when_full() -> None:
    rec = Recorder()
    b = _batcher(rec)
    runner = asyncio.ensure_future(b.run())
    for item, more in [(1, True), (2, False), (3, True), (4, True), (5, True), (6, False)]:
        b.open.append(item)
        b.added(more_waiting=more)
    await _settle()
    assert rec.completed == [[1, 2], [3, 4, 5], [6]]
    runner.cancel()


async def test_an_open_batch_is_sealed_by_time_when_the_agent_is_idle() -> None:
    """faust can skip the events the agent was told were waiting (a rebalance): the
    batch must not wait for them forever."""
    rec = Recorder()
    b = _batcher(rec)
    runner = asyncio.ensure_future(b.run())
    b.open.append(1)
    assert not b.added(more_waiting=True)
    await _settle()
    assert rec.completed == []
    await asyncio.sleep(0.03)
    assert rec.completed == [[1]]
    runner.cancel()


async def test_the_timer_waits_for_an_event_in_progress() -> None:
    rec = Recorder()
    b = _batcher(rec)
    runner = asyncio.ensure_future(b.run())
    b.open.append(1)
    b.added(more_waiting=True)
    b.busy = True  # the agent is in the middle of the next event
    await asyncio.sleep(0.03)
    assert rec.completed == []
    b.open.append(2)
    b.busy = False
    b.added(more_waiting=True)
    await asyncio.sleep(0.03)
    assert rec.completed == [[1, 2]]
    runner.cancel()


async def test_the_timer_leaves_a_growing_batch_to_the_agent() -> None:
    rec = Recorder()
    b = _batcher(rec, max_size=100, seal_after=0.01)
    runner = asyncio.ensure_future(b.run())
    for item in range(10):
        b.open.append(item)
        b.added(more_waiting=True)
        await asyncio.sleep(0.004)
    assert rec.completed == []  # 40 ms of a growing batch: still open
    await asyncio.sleep(0.03)
    assert rec.completed == [list(range(10))]
    runner.cancel()


async def test_room_bounds_the_batches_awaiting_completion() -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    b = _batcher(rec, inflight=2)
    runner = asyncio.ensure_future(b.run())
    for item in (1, 2):
        b.open.append(item)
        b.added(more_waiting=False)
    await _settle()
    assert b.pending == 2
    waiting_for_room = asyncio.ensure_future(b.room())
    await _settle()
    assert not waiting_for_room.done()
    rec.gate.set()
    await asyncio.wait_for(waiting_for_room, 1)
    await _settle()
    assert rec.completed == [[1], [2]]
    assert b.pending == 0
    runner.cancel()


async def test_with_one_in_flight_the_agent_waits_for_each_completion() -> None:
    """The gate's mode: its state must not move while a batch is being completed."""
    rec = Recorder()
    rec.gate = asyncio.Event()
    b = _batcher(rec, inflight=1)
    runner = asyncio.ensure_future(b.run())
    b.open.append(1)
    b.added(more_waiting=False)
    room = asyncio.ensure_future(b.room())
    await _settle()
    assert not room.done()
    rec.gate.set()
    await asyncio.wait_for(room, 1)
    assert rec.completed == [[1]]
    runner.cancel()


async def test_an_error_in_completion_ends_the_run() -> None:
    async def broken(batch: list[int]) -> None:
        raise RuntimeError("broker refused")

    b: Batcher[list[int]] = Batcher(list, broken, max_size=5, inflight=2, seal_after=0.01)
    runner = asyncio.ensure_future(b.run())
    b.open.append(1)
    b.added(more_waiting=False)
    with pytest.raises(RuntimeError, match="broker refused"):
        await asyncio.wait_for(runner, 1)


def test_bad_limits_are_refused() -> None:
    async def make() -> None:
        Batcher(list, Recorder().complete, max_size=0, inflight=1, seal_after=0.01)

    with pytest.raises(ValueError, match="max_size"):
        asyncio.run(make())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(1, 7))
def test_every_event_is_completed_once_in_order(more: list[bool], max_size: int) -> None:
    async def run() -> list[list[int]]:
        rec = Recorder()
        b = _batcher(rec, max_size=max_size, inflight=2, seal_after=0.001)
        runner = asyncio.ensure_future(b.run())
        for item, waiting in enumerate(more):
            await b.room()
            b.open.append(item)
            b.added(more_waiting=waiting)
        await asyncio.sleep(0.01)
        await _settle()
        runner.cancel()
        return rec.completed

    completed = asyncio.run(run())
    assert [i for batch in completed for i in batch] == list(range(len(more)))
    assert all(1 <= len(batch) <= max_size for batch in completed)
