"""streams/fast_drain.py: faust's record hand-over race, without its cost when nothing
waits, and with faust's behaviour when something does."""

from __future__ import annotations

import asyncio
import inspect
import textwrap
from typing import Any

import faust
import pytest
from faust.transport.consumer import Consumer as FaustConsumer

from streams.fast_drain import FastDrainConsumer


@pytest.fixture
async def consumer() -> FastDrainConsumer:
    app = faust.App("fast-drain-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    app.transport.Consumer = FastDrainConsumer  # type: ignore[misc]
    made = app.consumer
    assert isinstance(made, FastDrainConsumer)
    return made


def test_faust_still_races_each_handover_against_the_flow() -> None:
    """The call FastDrainConsumer recognises is the one faust makes; an upgrade that
    changes it must be looked at again."""
    source = textwrap.dedent(inspect.getsource(FaustConsumer._drain_messages))
    assert "callback(message), self.suspend_flow.wait()" in source
    assert "await self.wait_first(" in source


async def _handover(log: list[str], gate: asyncio.Future[None] | None = None) -> str:
    log.append("started")
    if gate is not None:
        await gate
    log.append("delivered")
    return "ok"


async def test_a_handover_that_does_not_wait_completes_in_place(
        consumer: FastDrainConsumer) -> None:
    log: list[str] = []
    flow = asyncio.Event()
    flow_wait = flow.wait()
    tasks_before = len(asyncio.all_tasks())
    result = await consumer.wait_first(_handover(log), flow_wait)
    assert log == ["started", "delivered"]
    assert result.results == ["ok"]
    assert not result.stopped
    assert inspect.getcoroutinestate(flow_wait) == inspect.CORO_CLOSED  # never scheduled
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_handover_that_waits_is_completed_when_its_wait_ends(
        consumer: FastDrainConsumer) -> None:
    log: list[str] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    flow = asyncio.Event()
    race = asyncio.ensure_future(consumer.wait_first(_handover(log, gate), flow.wait()))
    await asyncio.sleep(0.01)
    assert log == ["started"]
    assert not race.done()
    gate.set_result(None)
    result = await asyncio.wait_for(race, 1)
    assert log == ["started", "delivered"]
    assert result.results == ["ok"]


async def test_a_waiting_handover_still_loses_to_a_flow_suspension(
        consumer: FastDrainConsumer) -> None:
    """As in faust: a record stuck waiting when a rebalance suspends the flow is given
    up (cancelled), and the fetch loop goes on."""
    log: list[str] = []
    cancelled: list[bool] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handover() -> str:
        try:
            return await _handover(log, gate)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    flow = asyncio.Event()
    race = asyncio.ensure_future(consumer.wait_first(handover(), flow.wait()))
    await asyncio.sleep(0.01)
    flow.set()
    result = await asyncio.wait_for(race, 1)
    await asyncio.sleep(0)
    assert result.results == [True]  # the flow event won
    assert log == ["started"]
    assert cancelled == [True]


async def test_an_error_in_a_handover_reaches_the_fetch_loop(
        consumer: FastDrainConsumer) -> None:
    async def broken() -> None:
        raise ValueError("undecodable")

    flow = asyncio.Event()
    with pytest.raises(ValueError, match="undecodable"):
        await consumer.wait_first(broken(), flow.wait())


async def test_other_races_go_to_faust_unchanged(consumer: FastDrainConsumer) -> None:
    one, two = asyncio.Event(), asyncio.Event()
    two.set()
    result = await consumer.wait_first(one.wait(), two.wait())
    assert result.results == [True]
    timed: Any = await consumer.wait_first(one.wait(), timeout=0.01)
    assert timed.results == []
