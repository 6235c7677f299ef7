"""The decision hash chain: what `verify_chain` accepts and what it reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.core.audit import seal, verify_chain

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def chain(n: int, account: str = "acct-1") -> list[dict[str, Any]]:
    events, prev = [], None
    for i in range(n):
        event = seal({"decision_id": f"d-{i}", "account": account,
                      "occurred_at": T0 + timedelta(minutes=i), "action": "ai_proposed",
                      "rationale": f"idea {i}"}, prev)
        prev = event["hash"]
        events.append(event)
    return events


def test_an_intact_chain_verifies_in_any_order() -> None:
    events = chain(5)
    report = verify_chain("acct-1", reversed(events))
    assert report.ok
    assert (report.verified, report.head, report.redelivered) == (5, events[-1]["hash"], 0)


def test_an_identical_copy_is_a_redelivery_not_a_fork() -> None:
    events = chain(4)
    report = verify_chain("acct-1", [*events, dict(events[2]), dict(events[2])])
    assert report.ok, report.first_break
    assert (report.verified, report.redelivered) == (4, 2)


def test_a_different_event_on_the_same_predecessor_is_a_fork() -> None:
    events = chain(3)
    other = seal({**{k: v for k, v in events[2].items() if k not in ("hash", "prev_hash")},
                  "rationale": "decided again, differently"}, events[1]["hash"])
    report = verify_chain("acct-1", [*events, other])
    assert not report.ok
    assert report.first_break is not None
    assert "(fork)" in report.first_break.problem


def test_an_edited_event_and_a_missing_one_are_breaks() -> None:
    events = chain(4)
    edited = [*events[:3], {**events[3], "rationale": "changed"}]
    assert "does not match its hash" in str(verify_chain("acct-1", edited).first_break)
    missing = verify_chain("acct-1", [events[0], events[2], events[3]])
    assert missing.first_break is not None
    assert missing.verified == 1
    assert "not reachable" in missing.first_break.problem
