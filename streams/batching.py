"""Natural batches for an agent whose unit of work completes after the broker's
acknowledgement.

An agent adds each event to the open batch and says whether more events are waiting. The
batch is sealed when it is full or when none is waiting (a lone event is never held back
for company) and handed to `run`, which completes sealed batches one at a time, in order
(await the outputs, write state, ack the events). At most `inflight` sealed batches wait
for completion; the agent awaits `room()` before it takes the next event.

Why a timer as well: faust's stream iterator skips, without showing them to the agent,
events fetched before a rebalance suspended the flow. An agent that saw "more waiting"
after its last event would then wait for an event that never comes, with its open batch
unacked, while faust's rebalance waits for every fetched event to be acked: a deadlock.
So an open batch to which nothing was added for `seal_after` seconds, with no event in
progress, is sealed by a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

B = TypeVar("B")


class Batcher(Generic[B]):
    """The open batch of an agent and the completion of its sealed ones."""

    def __init__(self, new_batch: Callable[[], B], complete: Callable[[B], Awaitable[None]],
                 *, max_size: int, inflight: int, seal_after: float,
                 on_seal: Callable[[B], None] | None = None) -> None:
        if max_size < 1 or inflight < 1 or seal_after <= 0:
            raise ValueError("max_size and inflight must be >= 1, seal_after > 0")
        self._new = new_batch
        self._complete = complete
        self._on_seal = on_seal
        self.max_size = max_size
        self.inflight = inflight
        self.seal_after = seal_after
        self.open: B = new_batch()
        self.size = 0
        #: set by the agent while it works on an event (the timer then waits for it)
        self.busy = False
        self._sealed: asyncio.Queue[B] = asyncio.Queue()
        self._completing = 0
        self._room = asyncio.Event()
        self._room.set()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0
        self._loop = asyncio.get_running_loop()

    @property
    def pending(self) -> int:
        """Sealed batches not completed yet."""
        return self._sealed.qsize() + self._completing

    def added(self, more_waiting: bool) -> bool:
        """One more event is in the open batch; True when that sealed it."""
        self.size += 1
        if self.size >= self.max_size or not more_waiting:
            self.seal()
            return True
        if self._timer is None:
            self._arm()
        return False

    def _arm(self) -> None:
        self._armed_at = self.size
        self._timer = self._loop.call_later(self.seal_after, self._expired)

    def seal(self) -> None:
        """Hand the open batch, if it holds anything, to completion."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.size:
            return
        batch, self.open, self.size = self.open, self._new(), 0
        if self._on_seal is not None:
            self._on_seal(batch)
        self._sealed.put_nowait(batch)
        if self.pending >= self.inflight:
            self._room.clear()

    def _expired(self) -> None:
        """Seal only a batch the agent has stopped adding to: one still growing, or with
        an event in progress, is left to the agent."""
        self._timer = None
        if self.busy or self.size != self._armed_at:
            self._arm()
        else:
            self.seal()

    async def room(self) -> None:
        """Until fewer than `inflight` sealed batches wait for completion."""
        if not self._room.is_set():
            await self._room.wait()

    async def run(self) -> None:
        """Complete sealed batches in order, forever (an error in `complete` ends it)."""
        while True:
            batch = await self._sealed.get()
            self._completing = 1
            try:
                await self._complete(batch)
            finally:
                self._completing = 0
            if self.pending < self.inflight:
                self._room.set()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
