"""Can the safety properties fail? Remove one gate check at a time and see who notices.

    .venv/bin/python -m tests.reliability.mutations [--examples N]

For every check of `streams.core.gate` (both the idea gate and the approval
re-validation), the check is removed, then the random sequences of
`test_book_invariants` and its pinned scenarios are played against the weakened gate.
A line per check says how many random sequences produced a rule-breaking order the
referee reported, and which pinned scenarios let an order through. Checks that nothing
catches are defence in depth behind another check (listed at the end with the reason).
Not collected by pytest (a few minutes).
"""

from __future__ import annotations

import argparse
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

import streams.core.gate as gate
from tests.reliability.test_book_invariants import SCENARIOS, _play, sequences, starts
from tests.reliability.world import World

#: Checks another check always fires before or with, for ideas built from bundles.
SHADOWED = {
    "_weekly_target": "weekly targets are not drawn (daily ones are)",
    "_idea_valid": "ideas come from the strategy engine, which never builds invalid levels",
    "_not_duplicate": "the book's decided-store drops a repeated idea before the checks",
    "_strategy_active": "any definition change changes its hash: strategy_version fires",
    "_symbol_allowed": "same: a narrowed symbol list is a new definition",
    "_expiry": "the book expires waiting ideas before an approval is looked at",
}


def _random_hits(examples: int) -> int:
    hits: list[Any] = []

    @settings(max_examples=examples, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(start=starts, steps=sequences)
    def play(start: dict[str, Any], steps: list[tuple[Any, ...]]) -> None:
        world = _play(start, steps)
        if world.referee.violations or world.referee.orders_while_killed:
            hits.append(world.referee.violations[:1])

    play()
    return len(hits)


def _scenario_hits() -> list[str]:
    caught = []
    for name, scenario in sorted(SCENARIOS.items()):
        world = World()
        try:
            scenario(world)
        except Exception:  # noqa: BLE001 - a weakened gate may derail a scenario
            caught.append(f"{name} (derailed)")
            continue
        if world.referee.requests:
            caught.append(name)
    return caught


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    args = parser.parse_args()
    idea_checks, approval_checks = gate.GATE_CHECKS, gate.APPROVAL_CHECKS
    names = dict.fromkeys(c.__name__ for c in (*idea_checks, *approval_checks))
    print(f"{'check removed':24} {'random sequences caught':>24}  pinned scenarios caught")
    try:
        for name in names:
            gate.GATE_CHECKS = tuple(c for c in idea_checks if c.__name__ != name)
            gate.APPROVAL_CHECKS = tuple(c for c in approval_checks if c.__name__ != name)
            hits, pinned = _random_hits(args.examples), _scenario_hits()
            note = "" if hits or pinned else f"  (shadowed: {SHADOWED.get(name, '?')})"
            print(f"{name:24} {hits:>12} / {args.examples:<9}  {', '.join(pinned) or '-'}{note}")
    finally:
        gate.GATE_CHECKS, gate.APPROVAL_CHECKS = idea_checks, approval_checks
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
