"""The worker's stall rule: records waiting on an agent's topics and no progress for too long.

faust can stop delivering events to an agent after a restart while its input keeps
arriving (partitions held, recovery over, nothing received; cf. faust-streaming #21);
the process is alive, so a supervisor that only restarts dead processes would wait
forever while ideas pile up undecided. The worker checks this rule on its lag timer
and stops itself when an agent stalls, leaving its offsets uncommitted, so
`ai-trader run` restarts it and the new process reads the records again.

What such a hang looked like here: the consumer's fetch position for the agent's
partition at its end, the committed offset behind, nothing in the agent's queue. Its
cause was found on 2026-12-02: faust's recovery cleared records from the agents'
buffers after handing them over, in the same generation (see streams/redelivery.py,
which fixes it; the kill -9 test went from a watchdog restart in about half of its runs
to none). The rule stays as the safety net for a hang of any other cause: a fresh
process has no such state and reads from the committed offsets.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class Stall:
    """One agent that has records waiting and has not processed any for `idle` seconds."""

    agent: str
    waiting: int
    idle: float

    def __str__(self) -> str:
        return (f"agent {self.agent}: {self.waiting} records waiting, nothing processed "
                f"for {self.idle:.0f} s")


def stalls(lag: Mapping[str, int], topics: Mapping[str, tuple[str, ...]],
           progress_at: Mapping[str, float], now: float, limit: float) -> list[Stall]:
    """The agents that stalled.

    `lag` is records waiting per logical topic, `topics` the topics each agent reads,
    `progress_at` when each agent last finished an event (or last had nothing to do),
    all on one monotonic clock. An agent with nothing waiting never stalls.
    """
    out = []
    for agent, reads in topics.items():
        waiting = sum(lag.get(topic, 0) for topic in reads)
        idle = now - progress_at.get(agent, now)
        if waiting > 0 and idle > limit:
            out.append(Stall(agent, waiting, idle))
    return out



K = TypeVar("K", bound=Hashable)


def lag_of(ends: Mapping[K, int | None], highwaters: Mapping[K, int | None],
           committed: Mapping[K, int | None]) -> dict[K, int]:
    """Records waiting per partition: the log's end (as the broker reports it, or the
    consumer last saw it, whichever is further) minus the committed offset.

    The consumer's high watermark alone comes from its own fetch responses: a partition
    it stopped fetching keeps the value of its last response, which can equal the
    committed offset while records wait behind it, and the stall rule would never see
    the stall it is there for (a kill -9 test run on 2026-12-02 waited 180 s for one
    idea, the watchdog silent). The broker's end offset does not depend on the fetch."""
    out = {}
    for tp in {*ends, *highwaters}:
        end = max(ends.get(tp) or 0, highwaters.get(tp) or 0)
        out[tp] = max(0, end - (committed.get(tp) or 0))
    return out
