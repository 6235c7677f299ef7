"""A cheaper hand-over of fetched records in faust's consumer, same semantics.

Faust's fetch loop (`Consumer._drain_messages`) hands every record to the conductor as

    await self.wait_first(callback(message), self.suspend_flow.wait())

so that a record waiting for room in a full stream buffer is given up when a rebalance
suspends the flow. `wait_first` makes four tasks and an `asyncio.wait` for every record:
in `bench_pipeline.py` (py-spy, 2026-12-02) that loop was an eighth of the worker's only
core, and the agents sat idle waiting for it. Almost every call finishes without ever
suspending (the conductor puts the event in a queue with room), and then there is
nothing to race.

`FastDrainConsumer.wait_first` recognises exactly that call, runs the conductor's
coroutine up to its first suspension in place, and returns when it finished there. A
coroutine that did suspend (full buffer, flow control, producer back-pressure) is
resumed inside faust's own race, unchanged: it still loses against a flow suspension as
it did before. Every other `wait_first` call goes to faust's as it is.
`tests/streams/test_fast_drain.py` checks both paths and that faust still makes the call
this recognises (faust is pinned to 0.15.x).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Generator
from typing import Any

from mode.services import WaitArgT, WaitResults

from streams.redelivery import HandOverConsumer


class _Resumed:
    """The rest of a coroutine that suspended once already, as an awaitable: it yields
    what the coroutine yields, passes in what its task sends or throws, and returns what
    the coroutine returns; a task awaiting it behaves as one running the coroutine."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._first
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - relayed into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def _is_flow_wait(arg: Any) -> bool:
    return inspect.iscoroutine(arg) and arg.cr_code is asyncio.Event.wait.__code__


class FastDrainConsumer(HandOverConsumer):
    """faust's aiokafka consumer with the hand-over of each fetched record made cheap."""

    async def wait_first(
            self, *coros: WaitArgT, timeout: Any = None,  # noqa: ASYNC109 - mode's signature
    ) -> WaitResults:
        handover, flow = coros if len(coros) == 2 else (None, None)
        if not (timeout is None and inspect.iscoroutine(handover) and _is_flow_wait(flow)):
            return await super().wait_first(*coros, timeout=timeout)
        assert isinstance(handover, Coroutine) and isinstance(flow, Coroutine)  # noqa: S101, PT018
        try:
            first = handover.send(None)
        except StopIteration as done:
            flow.close()  # never started: nothing to cancel
            return WaitResults([handover], [done.value], False)
        except BaseException:
            flow.close()
            raise
        return await super().wait_first(_Resumed(handover, first), flow)
