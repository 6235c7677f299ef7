"""`proposals.Derivations`: the gate takes the market agent's message and derivation of
an idea only for the very bytes that carried it; any other record is decoded and derived
from its own bundle.

(That a record reads back as the message sent, and its bundle derives the same idea, is
checked over random ideas by the book invariants: `tests/reliability/world.py`,
`World.candle`.)
"""

from __future__ import annotations

from typing import Any

import pytest

from streams.defaults import parse_risk_config
from streams.gatekeeper import Book, InvalidInboxMessage
from streams.proposals import Derivations, Proposal
from tests import factories
from tests.backtest.data import ANY_BAR, RISK_ON, any_bar_proposal
from topics.catalog import Catalog
from topics.commands import new_command

INBOX = Catalog().codec("gate.inbox.v1")
KEY = b"k" * 32


def _message(proposal: Proposal, **bundle: Any) -> dict[str, Any]:
    return {"account": "acct", "idea": proposal.idea_record,
            "bundle": {**proposal.bundle, **bundle}, "command": None}


def _book() -> Book:
    book = Book.new("acct", parse_risk_config(RISK_ON), "test")
    book.on_command(new_command("put_strategy", "acct", "t", KEY, now=factories.T0,
                                strategy_id=ANY_BAR["id"], payload={"definition": ANY_BAR}),
                    KEY, factories.T0)
    return book


def test_a_derivation_is_taken_once_for_exactly_its_bytes() -> None:
    proposal = any_bar_proposal()
    derivations = Derivations()
    message = _message(proposal)
    wire = INBOX.encode(message)
    derivations.put(wire, message, proposal)

    assert derivations.take(wire[:20] + bytes([wire[20] ^ 1]) + wire[21:]) is None  # a bit off
    assert derivations.take(None) is None
    assert derivations.take(bytes(wire)) == (message, proposal)
    assert derivations.take(wire) is None  # taken: a redelivery derives again
    assert len(derivations) == 0


def test_only_the_last_ideas_are_kept() -> None:
    proposal = any_bar_proposal()
    derivations = Derivations(capacity=2)
    for n in range(3):
        derivations.put(b"record %d" % n, {"n": n}, proposal)
    assert len(derivations) == 2
    assert derivations.take(b"record 0") is None
    assert derivations.take(b"record 1") == ({"n": 1}, proposal)
    assert derivations.take(b"record 2") == ({"n": 2}, proposal)


def test_the_gate_decides_the_same_with_and_without_the_derivation() -> None:
    proposal = any_bar_proposal()
    message = _message(proposal)
    wire = INBOX.encode(message)
    derivations = Derivations()
    derivations.put(wire, message, proposal)
    inputs = [{"topic": "gate.inbox.v1", "partition": 0, "offset": 7}]

    taken = derivations.take(wire)
    assert taken is not None
    with_derivation = _book().on_idea(taken.message, inputs, taken.proposal)
    derived = _book().on_idea(INBOX.decode(wire), inputs)

    assert with_derivation.decisions
    assert with_derivation.decisions == derived.decisions
    assert with_derivation.statuses == derived.statuses
    assert with_derivation.orders == derived.orders


def test_a_forged_record_with_a_known_idea_id_is_derived_from_its_own_bundle() -> None:
    """Someone else's record carrying an idea this process derived, with other inputs:
    its bytes differ, so its own bundle is derived, and it does not reproduce the idea."""
    proposal = any_bar_proposal()
    derivations = Derivations()
    derivations.put(INBOX.encode(_message(proposal)), _message(proposal), proposal)
    forged = INBOX.encode(_message(proposal, indicators={
        **proposal.bundle["indicators"], "rsi_14": 0.5}))

    assert derivations.take(forged) is None
    with pytest.raises(InvalidInboxMessage, match="not reproducible"):
        _book().on_idea(INBOX.decode(forged), [])
    assert len(derivations) == 1  # the genuine record's derivation is still there
