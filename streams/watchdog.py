"""The worker's stall rule: records waiting on an agent's topics and no progress for too long.

faust can stop delivering events to an agent after a restart while its input keeps
arriving (partitions held, recovery over, nothing received; cf. faust-streaming #21);
the process is alive, so a supervisor that only restarts dead processes would wait
forever while ideas pile up undecided. The worker checks this rule on its lag timer.
What such a hang looked like here: the consumer's fetch position for the agent's
partitions at their end, their committed offsets behind, nothing in the agent's queue —
records fetched and dropped on faust's way to the agent during the start-up rebalance.
So the first remedy is the one faust itself applies when it drops records (seek every
partition back to its committed offset, which re-delivers them: effects are idempotent);
if the agent still makes no progress, the worker stops itself with its offsets
uncommitted and `ai-trader run` restarts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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


#: A stall is sought back after this long at most: the seek is harmless (records after the
#: committed offsets come again, and every effect is idempotent), the stall is not.
RESEEK_AFTER = 10.0


def reseek_after(limit: float) -> float:
    """How long an agent may sit idle with records waiting before the seek back."""
    return min(limit / 2, RESEEK_AFTER)


def may_reseek(progress_at: float, reseeked_at: float | None) -> bool:
    """Whether a stalled agent gets the seek-back remedy: not yet tried in this stall,
    i.e. never, or the agent has made progress since the last try."""
    return reseeked_at is None or progress_at > reseeked_at
