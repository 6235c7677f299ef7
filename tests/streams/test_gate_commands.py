"""The gate's verdict on a control command does not depend on when it is processed.

A worker killed after answering a command but before its book recorded it reads the
command again after the restart, possibly much later. The verdict must be the one given
the first time (freshness judged when the command entered the inbox), and a command
the book did record is neither applied nor answered twice; the same id in a new record
is still a replay.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.defaults import parse_risk_config
from streams.gatekeeper import Book
from tests import factories
from tests.backtest.data import RISK_ON
from topics.commands import DEFAULT_MAX_AGE, new_command

KEY = b"k" * 32
T0 = factories.T0


def _book() -> Book:
    return Book.new("acct", parse_risk_config(RISK_ON), "test")


def _kill(at=T0, command_id: str = "cmd-kill") -> dict:
    return new_command("kill_switch", "acct", "ops", KEY, now=at, reason="test",
                       command_id=command_id)


@settings(max_examples=200, deadline=None)
@given(st.timedeltas(min_value=timedelta(0), max_value=DEFAULT_MAX_AGE),
       st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
def test_freshness_is_judged_when_the_command_entered_the_inbox(
        in_transit: timedelta, down: timedelta) -> None:
    book = _book()
    received = T0 + in_transit
    out = book.on_command(_kill(), KEY, now=received + down, received_at=received,
                          origin=(0, 7))
    assert [r["status"] for r in out.replies] == ["accepted"]
    assert book.state.kill.active


@settings(max_examples=100, deadline=None)
@given(st.timedeltas(min_value=DEFAULT_MAX_AGE + timedelta(seconds=1),
                    max_value=timedelta(days=3)))
def test_a_command_that_arrived_stale_is_refused_even_by_an_early_clock(
        in_transit: timedelta) -> None:
    book = _book()
    out = book.on_command(_kill(), KEY, now=T0, received_at=T0 + in_transit, origin=(0, 7))
    assert [(r["status"], r["reason"].split(":")[0]) for r in out.replies] == \
        [("refused", "stale")]
    assert not book.state.kill.active


def test_without_a_receipt_time_the_clock_decides_as_before() -> None:
    book = _book()
    out = book.on_command(_kill(), KEY, now=T0 + DEFAULT_MAX_AGE + timedelta(seconds=1))
    assert out.replies[0]["status"] == "refused"


def test_a_redelivered_command_is_neither_applied_nor_answered_again() -> None:
    book = _book()
    book.on_command(_kill(), KEY, now=T0, received_at=T0, origin=(0, 7))
    resume = new_command("resume", "acct", "ops", KEY, now=T0 + timedelta(seconds=5))
    assert book.on_command(resume, KEY, now=T0 + timedelta(seconds=5),
                           origin=(0, 8)).replies[0]["status"] == "accepted"

    again = book.on_command(_kill(), KEY, now=T0 + timedelta(hours=1), received_at=T0,
                            origin=(0, 7))

    assert again.redelivered
    assert again.empty()
    assert not book.state.kill.active  # the resume that followed still holds


def test_the_same_id_in_a_new_record_is_a_replay() -> None:
    book = _book()
    book.on_command(_kill(), KEY, now=T0, received_at=T0, origin=(0, 7))
    out = book.on_command(_kill(), KEY, now=T0, received_at=T0, origin=(0, 9))
    assert not out.redelivered
    assert out.replies[0]["status"] == "refused"
    assert out.replies[0]["reason"].startswith("replayed")


def test_a_command_recorded_without_its_origin_is_refused_as_a_replay() -> None:
    book = _book()
    book.commands["cmd-kill"] = "kill_switch"  # a book written before origins were kept
    out = book.on_command(_kill(), KEY, now=T0, received_at=T0, origin=(0, 7))
    assert out.replies[0]["reason"].startswith("replayed")
