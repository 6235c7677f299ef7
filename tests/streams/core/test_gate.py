"""Risk & autonomy gate: blueprint §8.1, every check, the outcome mapping, and approvals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from streams.core.gate import (
    GATE_CHECKS,
    GateContext,
    GateResult,
    GateState,
    decide,
    gate_rationale,
    revalidate_approval,
)
from streams.core.model import Approval, KillSwitch, TradeIdea
from streams.core.strategy import Strategy
from tests.streams.core.decision_factories import (
    HIGH_CONFIDENCE,
    T0,
    account,
    event,
    gate_context,
    gate_state,
    idea,
    position,
    risk_config,
    strategy,
)

CHECK_NAMES = [
    "kill_switch", "ai_halted", "account_fresh", "max_drawdown", "daily_target", "weekly_target",
    "idea_valid", "not_duplicate", "strategy_active", "strategy_version", "symbol_allowed",
    "session", "calendar_fresh", "news_blackout", "lot_size", "max_concurrent_trades",
    "strategy_positions", "ai_trading_enabled", "confidence_threshold", "watchlist",
]


def _decide(
    the_idea: TradeIdea | None = None,
    confidence: Decimal | str = HIGH_CONFIDENCE,
    strat: Strategy | None | str = "default",
    state: GateState | None = None,
    context: GateContext | None = None,
    now: datetime = T0,
) -> GateResult:
    chosen = strategy() if strat == "default" else strat
    assert not isinstance(chosen, str)
    return decide(the_idea or idea(), Decimal(confidence), chosen, state or gate_state(),
                  context or gate_context(), now)


def _state(**config: Any) -> GateState:
    return gate_state(risk_config(**config))


def _loss(amount: str) -> GateContext:
    return gate_context(account(open_pl=Decimal(amount), equity=Decimal(10000) + Decimal(amount)))


# ------------------------------------------------------------------ blueprint §8.1


def test_default_scenario_auto_executes_with_every_check_passed() -> None:
    result = _decide()

    assert result.outcome == "auto_execute"
    assert result.risk_check_result == "pass"
    assert all(check.passed for check in result.checks)


def test_ai_trading_disabled_never_auto_executes() -> None:
    result = _decide(state=_state(ai_trading_enabled=False), confidence="100")

    assert result.outcome == "needs_approval"
    assert result.risk_check_result == "fail:ai_trading_disabled"


def test_ai_trading_disabled_and_a_hard_rule_broken_is_rejected() -> None:
    result = _decide(state=_state(ai_trading_enabled=False), context=gate_context(no_account=True))

    assert result.outcome == "rejected"
    assert result.risk_check_result == "fail:account_stale"


def test_drawdown_breach_returns_halted_by_risk_and_triggers_a_halt() -> None:
    result = _decide(context=_loss("-1000.00"))

    assert result.outcome == "halted_by_risk"
    assert result.risk_check_result == "fail:max_drawdown"
    assert result.halt_reason == "max_drawdown"


def test_confidence_below_threshold_needs_approval_and_is_not_executed() -> None:
    state = gate_state()

    moved = state.on_idea(idea(), Decimal("89.99"), strategy(), gate_context(), T0)

    assert moved.result.outcome == "needs_approval"
    assert moved.result.risk_check_result == "fail:confidence_below_threshold"
    assert moved.decisions[0].action == "ai_proposed"
    assert moved.state.positions == ()


# ---------------------------------------------------------------- outcome mapping


def test_every_check_is_listed_for_every_outcome() -> None:
    outcomes = {
        _decide().outcome: _decide(),
        _decide(confidence="10").outcome: _decide(confidence="10"),
        _decide(context=gate_context(no_account=True)).outcome:
            _decide(context=gate_context(no_account=True)),
        _decide(context=_loss("-5000")).outcome: _decide(context=_loss("-5000")),
    }

    assert set(outcomes) == {"auto_execute", "needs_approval", "rejected", "halted_by_risk"}
    for result in outcomes.values():
        assert [c.name for c in result.checks] == CHECK_NAMES
    assert len(GATE_CHECKS) == len(CHECK_NAMES)


def test_halt_severity_wins_over_reject_and_approval_failures() -> None:
    state = gate_state(risk_config(), kill=KillSwitch(True, "ops", T0, "panic"))

    result = _decide(state=state, confidence="10", context=gate_context(no_account=True))

    assert result.outcome == "halted_by_risk"
    assert result.risk_check_result == "fail:kill_switch_active"
    assert {c.name for c in result.failed} >= {"kill_switch", "account_fresh",
                                               "confidence_threshold"}


def test_first_failed_reject_check_in_order_is_the_decisive_one() -> None:
    too_big = idea(lot_size=Decimal("5.00"))

    result = _decide(too_big, now=datetime(2024, 4, 2, 12, 0, tzinfo=UTC),
                     context=gate_context(account(captured_at=datetime(2024, 4, 2, 12, 0,
                                                                       tzinfo=UTC)),
                                          last_success_at=datetime(2024, 4, 2, 12, 0,
                                                                   tzinfo=UTC)))

    assert [c.name for c in result.failed] == ["session", "lot_size"]
    assert result.risk_check_result == "fail:outside_session"


def test_rationale_is_deterministic_and_names_the_decisive_check() -> None:
    result = _decide(confidence="85")

    text = gate_rationale(idea(), result)

    assert text == gate_rationale(idea(), _decide(confidence="85"))
    assert text.startswith("Needs approval: buy 0.50 lots XAUUSD M5")
    assert "confidence_threshold fail:confidence_below_threshold (confidence=85.00, " \
           "threshold=90.00)" in text


# ------------------------------------------------------------------------- checks


def test_confidence_equal_to_the_threshold_passes() -> None:
    assert _decide(confidence="90.00").outcome == "auto_execute"
    assert _decide(confidence="89.99").outcome == "needs_approval"


def test_confidence_is_compared_after_rounding_to_cents() -> None:
    assert _decide(confidence="89.995").outcome == "auto_execute"  # rounds half-even to 90.00
    assert _decide(confidence="89.9949").outcome == "needs_approval"


def test_strategy_lot_cap_below_the_global_cap_wins() -> None:
    strat = strategy(risk_caps={"max_lot_size": 0.4, "max_concurrent_positions": 2})
    big = idea(strat, lot_size=Decimal("0.50"))

    result = _decide(big, strat=strat)

    lot = next(c for c in result.checks if c.name == "lot_size")
    assert result.risk_check_result == "fail:lot_size"
    assert dict(lot.values)["cap"] == "0.40"
    assert dict(lot.values)["binding"] == "strategy"


def test_global_lot_cap_below_the_strategy_cap_wins() -> None:
    result = _decide(state=_state(max_lot_size=Decimal("0.30")))

    lot = next(c for c in result.checks if c.name == "lot_size")
    assert result.risk_check_result == "fail:lot_size"
    assert dict(lot.values)["binding"] == "global"


def test_lot_equal_to_the_smaller_cap_passes() -> None:
    assert _decide(state=_state(max_lot_size=Decimal("0.50"))).outcome == "auto_execute"


def test_float_noise_in_the_lot_size_does_not_fail_an_equal_cap() -> None:
    noisy = idea(lot_size=Decimal(repr(0.1 + 0.2)))

    assert _decide(noisy, state=_state(max_lot_size=Decimal("0.30"))).outcome == "auto_execute"


def test_lot_between_steps_counts_as_the_next_step_up() -> None:
    odd = idea(lot_size=Decimal("0.301"))

    result = _decide(odd, state=_state(max_lot_size=Decimal("0.30")))

    assert result.risk_check_result == "fail:lot_size"


def test_global_concurrent_trades_at_the_limit_is_rejected() -> None:
    full = gate_state(positions=tuple(position(position_id=str(i), strategy_id="other")
                                      for i in range(3)))

    assert _decide(state=full).risk_check_result == "fail:max_concurrent_trades"


def test_strategy_positions_at_its_cap_is_rejected() -> None:
    two = gate_state(positions=(position(position_id="1"), position(position_id="2")))

    assert _decide(state=two).risk_check_result == "fail:strategy_max_positions"


def test_pending_auto_execution_counts_for_the_next_idea() -> None:
    state = _state(max_concurrent_trades=1)
    first = state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)
    second_idea = idea(idea_id="another-candle")

    second = first.state.on_idea(second_idea, HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert first.result.outcome == "auto_execute"
    assert first.state.positions[0].pending
    assert second.result.risk_check_result == "fail:max_concurrent_trades"


def test_same_idea_delivered_twice_is_executed_once() -> None:
    once = gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    twice = once.state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert twice.result.risk_check_result == "fail:duplicate_idea"
    assert len(twice.state.positions) == 1


def test_drawdown_one_cent_short_of_the_limit_passes() -> None:
    assert _decide(context=_loss("-999.99")).outcome == "auto_execute"


def test_realised_and_open_losses_add_up_to_the_drawdown() -> None:
    state = gate_state(realised_today=Decimal("-600.00"))

    assert _decide(state=state, context=_loss("-400.00")).outcome == "halted_by_risk"


def test_drawdown_without_halt_on_drawdown_is_rejected_without_a_halt() -> None:
    result = _decide(state=_state(halt_on_drawdown=False), context=_loss("-1500"))

    assert result.outcome == "rejected"
    assert result.risk_check_result == "fail:max_drawdown"
    assert result.halt_reason is None


def test_daily_target_reached_with_stop_after_target_halts() -> None:
    state = gate_state(realised_today=Decimal("2000.00"))

    result = _decide(state=state)

    assert result.outcome == "halted_by_risk"
    assert result.risk_check_result == "fail:daily_target_reached"
    assert result.halt_reason == "daily_target_reached"


def test_daily_target_reached_without_stop_after_target_keeps_trading() -> None:
    state = gate_state(risk_config(stop_after_target=False), realised_today=Decimal("2500.00"))

    assert _decide(state=state).outcome == "auto_execute"


def test_weekly_target_counts_earlier_days_of_the_trading_week() -> None:
    config = risk_config(weekly_profit_target=Decimal("3000.00"))
    state = gate_state(config, realised_week_before_today=Decimal("2500.00"),
                       realised_today=Decimal("500.00"))

    assert _decide(state=state).risk_check_result == "fail:weekly_target_reached"


def test_kill_switch_halts_every_idea() -> None:
    state = gate_state(kill=KillSwitch(True, "ops", T0, "broker outage"))

    result = _decide(state=state)

    assert result.outcome == "halted_by_risk"
    assert result.risk_check_result == "fail:kill_switch_active"
    assert result.halt_reason is None


def test_halted_gate_halts_ideas_even_after_the_loss_recovers() -> None:
    state = _state(ai_trading_enabled=False, last_halt_reason="max_drawdown")

    assert _decide(state=state).risk_check_result == "fail:ai_halted"


def test_inactive_strategy_is_rejected() -> None:
    result = _decide(strat=strategy(is_active=False))

    assert result.risk_check_result == "fail:strategy_inactive"


def test_unknown_strategy_is_rejected() -> None:
    assert _decide(strat=None).risk_check_result == "fail:strategy_unknown"


def test_idea_from_an_older_strategy_definition_is_rejected() -> None:
    assert _decide(strat=strategy(version=2)).risk_check_result == "fail:strategy_changed"


def test_symbol_not_allowed_by_the_strategy_is_rejected() -> None:
    assert _decide(idea(symbol="XAGUSD")).risk_check_result == "fail:symbol_not_allowed"


def test_buy_idea_with_stop_above_entry_is_rejected() -> None:
    broken = idea(stop_loss=2390.0)

    assert _decide(broken).risk_check_result == "fail:invalid_idea"


def test_gate_time_at_session_end_is_rejected() -> None:
    at_end = datetime(2024, 4, 2, 11, 0, tzinfo=UTC)
    context = gate_context(account(captured_at=at_end), last_success_at=at_end)

    assert _decide(now=at_end, context=context).risk_check_result == "fail:outside_session"


def test_news_blackout_at_gate_time_is_rejected() -> None:
    assert _decide(context=gate_context(None, event(-5))).risk_check_result == "fail:news_blackout"
    assert _decide(context=gate_context(None, event(-6))).outcome == "auto_execute"


def test_stale_calendar_is_treated_as_a_blackout() -> None:
    stale = gate_context(last_success_at=T0 - timedelta(hours=1, seconds=1))

    assert _decide(context=stale).risk_check_result == "fail:calendar_stale"


def test_calendar_that_never_succeeded_is_treated_as_a_blackout() -> None:
    never = gate_context(last_success_at=None)

    assert _decide(context=never).risk_check_result == "fail:calendar_stale"


def test_stale_calendar_does_not_matter_to_a_strategy_without_a_news_rule() -> None:
    no_news = strategy(forbidden_conditions={"block_high_impact_news_minutes": 0})

    result = _decide(idea(no_news), strat=no_news, context=gate_context(last_success_at=None))

    assert result.outcome == "auto_execute"


def test_stale_account_is_rejected() -> None:
    stale = gate_context(account(captured_at=T0 - timedelta(minutes=2, seconds=1)))

    assert _decide(context=stale).risk_check_result == "fail:account_stale"


def test_account_exactly_at_its_max_age_is_fresh() -> None:
    edge = gate_context(account(captured_at=T0 - timedelta(minutes=2)))

    assert _decide(context=edge).outcome == "auto_execute"


def test_missing_account_is_rejected() -> None:
    assert _decide(context=gate_context(no_account=True)).risk_check_result == "fail:account_stale"


def test_unreconciled_account_is_rejected() -> None:
    context = gate_context(account(reconciled=False))

    assert _decide(context=context).risk_check_result == "fail:account_unreconciled"


def test_off_watchlist_symbol_needs_approval() -> None:
    result = _decide(state=_state(watchlist=frozenset({"EURUSD"})))

    assert result.outcome == "needs_approval"
    assert result.risk_check_result == "fail:off_watchlist"


def test_off_watchlist_symbol_auto_executes_when_allowed() -> None:
    state = _state(watchlist=frozenset(), allow_off_watchlist_autotrade=True)

    assert _decide(state=state).outcome == "auto_execute"


def test_needs_approval_result_carries_its_expiry() -> None:
    assert _decide(confidence="50").expires_at == T0 + timedelta(minutes=15)
    assert _decide().expires_at is None


# -------------------------------------------------------------------------- approval


def _approve(
    state: GateState | None = None,
    lots: str | None = None,
    now: datetime = T0 + timedelta(minutes=1),
    context: GateContext | None = None,
    strat: Strategy | None = None,
) -> Any:
    approval = Approval(idea().idea_id, "trader@example.com",
                        None if lots is None else Decimal(lots), "cmd-1")
    ctx = context or gate_context(account(captured_at=now))
    return (state or _state(ai_trading_enabled=False)).on_approval(
        idea(), approval, strat or strategy(), ctx, now)


def test_valid_approval_executes_and_logs_a_human_override() -> None:
    moved = _approve()

    assert moved.check.ok
    assert moved.check.reason is None
    assert moved.decisions[0].action == "human_approved"
    assert moved.decisions[0].human_override
    assert moved.state.positions[0].lots == Decimal("0.50")


def test_approval_with_a_smaller_lot_size_reserves_that_size() -> None:
    assert _approve(lots="0.2").state.positions[0].lots == Decimal("0.20")


def test_approval_with_a_lot_size_above_the_cap_is_refused() -> None:
    moved = _approve(lots="1.5")

    assert moved.check.reason == "lot_size_exceeds_max"
    assert moved.decisions[0].action == "risk_rejected"
    assert moved.state.positions == ()


def test_approval_after_the_book_filled_up_is_refused() -> None:
    full = gate_state(risk_config(max_concurrent_trades=1),
                      positions=(position(strategy_id="other"),))

    assert _approve(full).check.reason == "max_concurrent_trades_exceeded"


def test_approval_after_a_drawdown_breach_is_refused_and_halts() -> None:
    now = T0 + timedelta(minutes=1)
    losing = gate_context(account(captured_at=now, open_pl=Decimal("-1200.00")))

    moved = _approve(context=losing, now=now)

    assert moved.check.reason == "max_drawdown_breached"
    assert [d.action for d in moved.decisions] == ["risk_rejected", "ai_halted"]
    assert moved.state.last_halt_reason == "max_drawdown"


def test_approval_outside_the_session_is_refused() -> None:
    late = datetime(2024, 4, 2, 11, 0, tzinfo=UTC)
    ctx = gate_context(account(captured_at=late), last_success_at=late)

    state = gate_state(risk_config(approval_ttl=timedelta(hours=8)))

    assert _approve(state, now=late, context=ctx).check.reason == "outside_session"


def test_approval_into_a_news_blackout_is_refused() -> None:
    now = T0 + timedelta(minutes=1)
    ctx = gate_context(account(captured_at=now), event(4))

    assert _approve(context=ctx, now=now).check.reason == "news_blackout"


def test_approval_under_the_kill_switch_is_refused() -> None:
    killed = gate_state(kill=KillSwitch(True, "ops", T0, "panic"))

    assert _approve(killed).check.reason == "kill_switch_active"


def test_approval_at_the_ttl_is_refused_as_expired() -> None:
    at_ttl = T0 + timedelta(minutes=15)

    assert _approve(now=at_ttl).check.reason == "idea_expired"
    assert _approve(now=at_ttl - timedelta(seconds=1)).check.ok


def test_strategy_ttl_overrides_the_configured_ttl() -> None:
    short = strategy(approval_ttl_minutes=5)
    the_idea = idea(short)
    now = T0 + timedelta(minutes=5)
    approval = Approval(the_idea.idea_id, "trader@example.com")

    check = revalidate_approval(the_idea, approval, short, gate_state(),
                                gate_context(account(captured_at=now)), now)

    assert check.reason == "idea_expired"
    assert check.expires_at == T0 + timedelta(minutes=5)


def test_approving_twice_is_refused_the_second_time() -> None:
    first = _approve()

    second = _approve(first.state)

    assert second.check.reason == "already_executed"


def test_approval_is_not_blocked_by_confidence_or_supervised_mode() -> None:
    moved = _approve(_state(ai_trading_enabled=False, min_confidence_threshold=Decimal("100")))

    assert moved.check.ok


def test_approval_while_halted_is_refused_until_resumed() -> None:
    halted = _state(ai_trading_enabled=False, last_halt_reason="daily_target_reached")

    assert _approve(halted).check.reason == "ai_halted"


def test_approval_for_another_idea_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="approval for"):
        revalidate_approval(idea(), Approval("other", "x"), strategy(), gate_state(),
                            gate_context(), T0)


def test_human_rejection_is_logged_with_the_override_flag() -> None:
    moved = gate_state().on_human_reject(idea(), "trader@example.com", T0, "not convinced")

    decision = moved.decisions[0]
    assert decision.action == "human_rejected"
    assert decision.human_override
    assert decision.rationale.endswith(": not convinced.")


# ------------------------------------------------------------------ decision records


def test_idea_decision_records_what_the_gate_decided() -> None:
    moved = gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    decision = moved.decisions[0]
    assert decision.action == "ai_auto_executed"
    assert decision.outcome == "auto_execute"
    assert decision.confidence == HIGH_CONFIDENCE
    assert decision.risk_check_result == "pass"
    assert decision.trade_idea_id == idea().idea_id
    assert decision.strategy_id == strategy().strategy_id
    assert decision.snapshot_ref == "snap-1"
    assert not decision.human_override
    assert len(decision.checks) == len(CHECK_NAMES)


def test_reprocessing_an_idea_from_the_same_state_gives_identical_decisions() -> None:
    state = gate_state()

    first = state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)
    again = state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert again == first


def test_rejected_idea_is_logged_as_risk_rejected() -> None:
    moved = gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(is_active=False),
                                 gate_context(), T0)

    assert moved.decisions[0].action == "risk_rejected"
    assert moved.decisions[0].outcome == "rejected"


def test_decision_to_dict_is_json_ready() -> None:
    moved = gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    data = moved.decisions[0].to_dict()

    assert data["confidence"] == "95.00"
    assert data["checks"][0] == {"name": "kill_switch", "passed": True, "severity": "halt",
                                 "code": "pass", "values": {"active": "false", "by": "null",
                                                            "at": "null", "why": "null"}}


def test_idea_lot_size_is_reserved_as_requested_after_rounding() -> None:
    odd = dataclasses.replace(idea(), lot_size=Decimal("0.2"))

    moved = gate_state().on_idea(odd, HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert moved.state.positions[0].lots == Decimal("0.20")
