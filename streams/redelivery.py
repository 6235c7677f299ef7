"""Records faust has handed to an agent stay with the agent: no stall, no silent loss.

faust hands each fetched record to its agent's stream buffer and advances its read
offset. `FlowControlEvent.resume()` clears every such buffer. That is meant for a
resume after a suspension (a rebalance): the buffers then hold records from before it,
which faust reads again by seeking to the committed offsets. But faust's recovery also
calls `resume()` when the flow was never suspended, after its seek, in the same
generation (faust 0.15 `Recovery.on_recovery_completed`: resume the stream partitions,
seek to the committed offsets, resume the flow). A record fetched between the
resumption of its partition and that call is handed over, then cleared:

- the seek does not bring it back when it ran before the record left aiokafka's
  buffer (the position was already at the record), so the committed offset stops in
  front of it and the agent idles with records waiting — seen in
  `tests/reliability/test_worker_kill.py` on 2026-12-02 with a trace of every
  hand-over: offsets 35-89 of a candle partition handed over during the seek, 35-55
  taken by the agent, 56-89 cleared; committed stuck at 56, position at 90, until the
  watchdog restarted the worker;
- and when a further record arrives, faust sees the jump from the read offset the seek
  left (35) to it (90) as a gap and counts 36-89 as done: the cleared records would
  then be committed without ever being processed.

Two changes, both in faust's own terms:

- `KeepingFlowControl.resume()` on a flow that is not suspended changes nothing: every
  record in the buffers was then handed over in the current generation and is still
  due (a rebalance always suspends the flow first, and its resume clears as before);
- `HandOverConsumer.perform_seek()`, in the generation in which records were handed
  over, keeps the read offset of each partition at the last record handed over, so a
  record the seek brings back is not handed over twice and the next new one is not
  taken for a gap. After a rebalance (another generation, or the flow stopped) it is
  faust's seek unchanged: read everything again from the committed offsets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from mode.utils.queues import FlowControlEvent


def install(app: faust.App, consumer: type[HandOverConsumer] | None = None) -> None:
    """Use both in `app` (`consumer`: a subclass of HandOverConsumer to use instead). Call
    before its consumer and its agents' buffers exist (right after `faust.App(...)`):
    buffers register with the flow control when they are made."""
    if "flow_control" in app.__dict__ or app._consumer is not None:
        raise RuntimeError("install() must run before the app's consumer and buffers exist")
    app.transport.Consumer = consumer or HandOverConsumer  # type: ignore[misc]
    app.flow_control = KeepingFlowControl(loop=app.loop)


class KeepingFlowControl(FlowControlEvent):
    """faust's flow control; resuming a flow that is not suspended keeps the buffers."""

    def resume(self) -> None:
        if self.is_active():
            return  # nothing was suspended: the buffers hold this generation's records
        super().resume()


class HandOverConsumer(Consumer):
    """faust's aiokafka consumer; a seek within a generation keeps the read offsets of
    the records it handed over."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per partition: (generation, offset) of the last record given to the fetch loop
        self._handed: dict[TP, tuple[int | None, int]] = {}

    async def getmany(
            self, timeout: float,  # noqa: ASYNC109 - faust's signature
    ) -> AsyncIterator[tuple[TP, Any]]:
        handed = self._handed
        async for tp, message in super().getmany(timeout):
            handed[tp] = (message.generation_id, message.offset)
            yield tp, message

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._handed.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        generation = self.app.consumer_generation_id
        flowing = self.flow_active
        await super().perform_seek()
        if not flowing or generation != self.app.consumer_generation_id:
            return  # a rebalance: everything from the committed offsets again
        read_offset = self._read_offset
        for tp, (handed_in, offset) in self._handed.items():
            if handed_in != generation or tp not in read_offset:
                continue
            current = read_offset[tp]
            if current is None or current <= offset:
                read_offset[tp] = offset + 1  # as faust's own seek: the next to hand over
