"""Replay's pure core: re-decide recorded decisions from their bundles and compare.

The decisions come from the real core (`propose` + `Book`, through the backtest's
simulation) and through the Avro codec, so they are the records the bus carries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from streams import records
from streams.audit_cli import parse_when, render_view
from streams.backtest.engine import BacktestConfig, Simulation
from streams.core.audit import seal
from streams.defaults import parse_risk_config
from streams.gatekeeper import Book, config_hash
from streams.replay import context_view, is_idea_decision, verify_decision, verify_range
from tests import factories
from tests.backtest.data import ANY_BAR, RISK_ON, any_bar_proposal, strategy, synthetic
from topics.catalog import Catalog
from topics.commands import new_command

CATALOG = Catalog()
Pair = tuple[dict[str, Any], dict[str, Any] | None]


def _wire(logical: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as a consumer of the topic decodes it."""
    codec = CATALOG.codec(logical)
    return codec.decode(codec.encode(record))


def _recorded(n: int, seed: int, **risk: object) -> list[Pair]:
    """Decisions (and bundles) of a simulated account over n synthetic bars, as on the bus."""
    pairs: list[Pair] = []
    sim = Simulation(BacktestConfig(
        strategies=(strategy(ANY_BAR),), risk=parse_risk_config({**RISK_ON, **risk}),
        price_timeframes={"XAUUSD": "M1"}),
        listener=lambda e, b: pairs.append((e, b)))
    # Idea ids are per strategy and bar (not per account): each run gets its own bars.
    for candle in synthetic(n, seed=seed, start=factories.T0 + timedelta(days=seed)):
        sim.step(candle)
    return [(_wire("decisions.log.v1", e), None if b is None else
             _wire("snapshots.bundles.v1", b)) for e, b in pairs]


@pytest.fixture(scope="module")
def recorded() -> list[Pair]:
    """Auto-executed, rejected (max concurrent trades) and, AI off, proposed ideas."""
    return _recorded(90, 1) + _recorded(40, 2, ai_trading_enabled=False)


def _first(recorded: list[Pair], test: Callable[[dict[str, Any]], bool]) -> Pair:
    return next(p for p in recorded if test(p[0]))


def _reseal(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An edited event with a valid hash: what a forger with the chain's code would make."""
    edited = {k: v for k, v in event.items() if k != "hash"}
    edited.update(changes)
    return seal(edited, event["prev_hash"])


def test_recorded_decisions_replay_with_zero_differences(recorded: list[Pair]) -> None:
    events = [e for e, _ in recorded]
    bundles = {b["snapshot_id"]: b for _, b in recorded if b is not None}
    done: list[int] = []

    report = verify_range(events, bundles, done.append)

    assert report.ok, [v.to_dict() for v in report.failed][:2]
    ideas = [e for e in events if is_idea_decision(e)]
    assert len(report.verifications) == len(ideas) == done[-1]
    assert {"ai_auto_executed", "risk_rejected", "ai_proposed"} <= {e["action"] for e in ideas}
    assert report.decisions_read == len(events)


def test_a_tampered_confidence_is_reported_with_both_values(recorded: list[Pair]) -> None:
    event, bundle = _first(recorded, lambda e: e["action"] == "ai_auto_executed")
    forged = _reseal(event, confidence=event["confidence"] + Decimal("1.00"))

    verdict = verify_decision(forged, bundle)

    assert not verdict.ok
    (diff,) = [d for d in verdict.differences if d.field == "confidence"]
    assert diff.recorded == str(event["confidence"] + Decimal("1.00"))
    assert diff.replayed == str(event["confidence"])
    assert verify_decision(event, bundle).ok


def test_a_rewritten_outcome_is_reported(recorded: list[Pair]) -> None:
    event, bundle = _first(recorded, lambda e: e["risk_check_result"]
                           == "fail:max_concurrent_trades")
    forged = _reseal(event, action="ai_auto_executed", outcome="auto_execute",
                     risk_check_result="pass")

    fields = {d.field: d for d in verify_decision(forged, bundle).differences}

    assert {"action", "outcome", "risk_check_result"} <= set(fields)
    assert fields["risk_check_result"].replayed == "fail:max_concurrent_trades"
    assert fields["outcome"].recorded == "auto_execute"


def test_a_rewritten_gate_state_changes_the_decision(recorded: list[Pair]) -> None:
    event, bundle = _first(recorded, lambda e: e["risk_check_result"]
                           == "fail:max_concurrent_trades")
    state = json.loads(event["gate_state_json"])
    state["gate"]["config"]["max_concurrent_trades"] = 9
    state["config_hash"] = config_hash(parse_risk_config(state["gate"]["config"]))
    forged = _reseal(event, gate_state_json=records.canonical(state))

    fields = {d.field for d in verify_decision(forged, bundle).differences}

    # the recorded state now allows the trade: re-decided, it is executed
    assert {"action", "outcome", "risk_check_result", "checks.max_concurrent_trades"} <= fields


def test_an_edit_without_a_new_hash_is_caught_by_the_hash(recorded: list[Pair]) -> None:
    event, bundle = _first(recorded, lambda e: e["action"] == "ai_proposed")
    edited = {**event, "rationale": event["rationale"] + " (edited)"}

    fields = {d.field for d in verify_decision(edited, bundle).differences}

    assert fields == {"hash", "rationale"}


def test_missing_or_altered_bundles_are_differences(recorded: list[Pair]) -> None:
    event, bundle = _first(recorded, lambda e: e["action"] == "ai_proposed")
    assert bundle is not None

    (missing,) = verify_decision(event, None).differences
    assert (missing.field, missing.replayed) == ("snapshot_ref", "no such snapshot bundle")

    altered = {**bundle, "indicators": {**bundle["indicators"], "rsi_14": 0.5}}
    (gone,) = verify_decision(event, altered).differences
    assert gone.field == "trade_idea_id"
    assert "condition_not_met" in gone.replayed

    cheaper = {**bundle, "account_state": {**bundle["account_state"],
                                           "margin_free": Decimal("1.00")}}
    fields = {d.field for d in verify_decision(event, cheaper).differences}
    assert {"confidence", "confidence_json"} <= fields  # account comfort fell


def _halting_decision() -> list[dict[str, Any]]:
    """An idea whose bundle shows a loss beyond the drawdown limit: rejected, and a halt."""
    key, at0 = b"k" * 32, factories.T0
    book = Book.new("acct", parse_risk_config({**RISK_ON, "max_drawdown_amount": "100.00"}),
                    "test")
    book.on_command(new_command("put_strategy", "acct", "t", key, now=at0,
                                strategy_id=ANY_BAR["id"], payload={"definition": ANY_BAR}),
                    key, at0)
    proposal = any_bar_proposal(open_pl=Decimal("-150.00"), start=at0)
    out = book.on_idea({"idea": proposal.idea_record, "bundle": proposal.bundle}, [])
    return [_wire("snapshots.bundles.v1", proposal.bundle),
            *(_wire("decisions.log.v1", d) for d in out.decisions)]


def test_the_halt_an_idea_triggers_must_be_in_the_log() -> None:
    bundle, main, halt = _halting_decision()
    assert (main["risk_check_result"], halt["action"]) == ("fail:max_drawdown", "ai_halted")
    bundles = {bundle["snapshot_id"]: bundle}

    assert verify_range([main, halt], bundles).ok
    (missing,) = verify_range([main], bundles).failed
    assert [d.field for d in missing.differences] == ["followup.ai_halted"]
    reworded = _reseal(halt, rationale="AI halted for no reason")
    (wrong,) = verify_range([main, reworded], bundles).failed
    assert [d.field for d in wrong.differences] == ["followup.rationale"]


def test_context_view_shows_what_the_ai_saw(recorded: list[Pair]) -> None:
    event, bundle = _first(recorded, lambda e: e["action"] == "ai_auto_executed")
    assert bundle is not None
    release = event["occurred_at"] + timedelta(minutes=45)
    bundle = {**bundle, "calendar": [factories.calendar_event(event_time=release)]}

    view = context_view(event, bundle)

    assert view["bundle"]["calendar"][0]["minutes_until_release"] == 45.0
    assert view["bundle"]["market"]["indicators"]["rsi_14"] == bundle["indicators"]["rsi_14"]
    assert view["bundle"]["account"]["balance"] == bundle["account_state"]["balance"]
    assert view["bundle"]["strategy"]["name"] == ANY_BAR["name"]
    assert [c["name"] for c in view["confidence"]["components"]] == [
        "strategy_match", "market_risk", "account_comfort"]
    assert view["risk_config"]["max_concurrent_trades"] == RISK_ON["max_concurrent_trades"]
    assert all(c["passed"] for c in view["checks"])
    assert len(view["checks"]) > 10
    text = render_view(view)
    for part in ("Decision " + event["decision_id"], "Confidence", "Checks:", "Indicators:",
                 "+45.0 min until release", "Risk config", "Account:", "Strategy:"):
        assert part in text


def test_times_without_an_offset_are_utc() -> None:
    assert parse_when("2026-03-02").isoformat() == "2026-03-02T00:00:00+00:00"
    assert parse_when("2026-03-02T10:00Z") == parse_when("2026-03-02T10:00:00+00:00")
    assert parse_when("2026-03-02T12:00+02:00").hour == 12


def test_a_halt_is_shown_but_not_re_decided() -> None:
    bundle, main, halt = _halting_decision()
    assert not is_idea_decision(halt)

    text = render_view(context_view(halt, None))

    assert f"Decision {halt['decision_id']}: ai_halted" in text
    assert "risk check: fail:max_drawdown" in text
    assert "Snapshot" not in text  # a halt has no bundle of its own
    assert "Snapshot " + bundle["snapshot_id"] in render_view(context_view(main, bundle))
