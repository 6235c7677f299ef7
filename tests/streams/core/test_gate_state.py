"""GateState transitions: halt and resume (§14.2), kill switch, settings, trading day, positions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from streams.core.gate import GateState
from tests.streams.core.decision_factories import (
    HIGH_CONFIDENCE,
    T0,
    account,
    gate_context,
    gate_state,
    idea,
    position,
    risk_config,
    strategy,
)

NEXT_DAY = datetime(2024, 4, 3, 8, 0, tzinfo=UTC)


def _halted_by_drawdown() -> GateState:
    losing = gate_context(account(open_pl=Decimal("-1500.00")))
    return gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(), losing, T0).state


# ----------------------------------------------------------------------- halt / resume


def test_drawdown_halt_turns_ai_off_sets_the_reason_and_logs_ai_halted() -> None:
    losing = gate_context(account(open_pl=Decimal("-1500.00")))

    moved = gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(), losing, T0)

    assert not moved.state.ai_trading_enabled
    assert moved.state.last_halt_reason == "max_drawdown"
    halt = moved.decisions[-1]
    assert halt.action == "ai_halted"
    assert halt.symbol is None
    assert halt.rationale == "AI halted due to max_drawdown"
    assert halt.risk_check_result == "fail:max_drawdown"


def test_daily_target_halt_sets_daily_target_reached() -> None:
    winning = gate_state(realised_today=Decimal("2100.00"))

    moved = winning.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert moved.state.last_halt_reason == "daily_target_reached"
    assert moved.decisions[-1].risk_check_result == "fail:daily_target_reached"


def test_an_already_halted_gate_does_not_halt_again() -> None:
    halted = _halted_by_drawdown()
    losing = gate_context(account(open_pl=Decimal("-1500.00")))

    moved = halted.on_idea(idea(idea_id="x"), HIGH_CONFIDENCE, strategy(), losing, T0)

    assert [d.action for d in moved.decisions] == ["risk_rejected"]


def test_resume_turns_ai_on_clears_the_reason_and_logs_ai_resumed() -> None:
    moved = _halted_by_drawdown().resume("lead@example.com", T0 + timedelta(minutes=30))

    assert moved.state.ai_trading_enabled
    assert moved.state.last_halt_reason is None
    assert moved.decisions[0].action == "ai_resumed"
    assert moved.decisions[0].rationale.startswith("Human resumed after review")
    assert moved.decisions[0].human_override


def test_resume_with_nothing_to_resume_changes_nothing() -> None:
    moved = gate_state().resume("lead@example.com", T0)

    assert moved.decisions == ()
    assert moved.state == gate_state()


def test_new_trading_day_resets_pnl_but_not_a_halt() -> None:
    halted = _halted_by_drawdown().on_position_closed("1001", Decimal("-300"), T0)

    rolled = halted.roll(NEXT_DAY)

    assert rolled.trading_day == date(2024, 4, 3)
    assert rolled.realised_today == Decimal("0.00")
    assert rolled.last_halt_reason == "max_drawdown"
    assert not rolled.ai_trading_enabled


def test_trading_day_rolls_at_22_utc_not_at_midnight() -> None:
    state = gate_state(realised_today=Decimal("-100.00"))

    before = state.roll(datetime(2024, 4, 2, 21, 59, tzinfo=UTC))
    after = state.roll(datetime(2024, 4, 2, 22, 0, tzinfo=UTC))

    assert before.realised_today == Decimal("-100.00")
    assert after.realised_today == Decimal("0.00")


def test_new_day_carries_realised_pnl_into_the_week_and_a_new_week_resets_it() -> None:
    state = gate_state(realised_today=Decimal("400.00"))

    tuesday = state.roll(NEXT_DAY)
    next_week = tuesday.roll(datetime(2024, 4, 8, 8, 0, tzinfo=UTC))

    assert tuesday.realised_week_before_today == Decimal("400.00")
    assert next_week.realised_week_before_today == Decimal("0.00")


# --------------------------------------------------------------------------- kill switch


def test_kill_switch_blocks_idea_published_after_it_until_resume() -> None:
    killed = gate_state().kill_switch("ops@example.com", T0, "broker outage", "cmd-9")

    blocked = killed.state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)
    resumed = killed.state.resume("ops@example.com", T0, "outage over")
    allowed = resumed.state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert killed.decisions[0].action == "ai_halted"
    assert killed.decisions[0].risk_check_result == "fail:kill_switch_active"
    assert blocked.result.outcome == "halted_by_risk"
    assert resumed.decisions[0].action == "ai_resumed"
    assert allowed.result.outcome == "auto_execute"


def test_killing_twice_logs_once() -> None:
    once = gate_state().kill_switch("ops", T0, "panic")

    assert once.state.kill_switch("ops", T0, "panic again").decisions == ()


def test_resume_into_supervised_mode_keeps_ai_off() -> None:
    killed = gate_state().kill_switch("ops", T0, "panic").state

    resumed = killed.resume("ops", T0, enable_ai=False).state

    assert not resumed.kill.active
    assert not resumed.ai_trading_enabled


# ------------------------------------------------------------------------------ settings


def test_turning_ai_off_in_the_settings_logs_ai_halted_and_goes_supervised() -> None:
    moved = gate_state().apply_config(risk_config(ai_trading_enabled=False), "lead", T0)

    after = moved.state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert moved.decisions[0].action == "ai_halted"
    assert moved.state.last_halt_reason is None
    assert after.result.outcome == "needs_approval"


def test_turning_ai_on_in_the_settings_resumes_a_halt() -> None:
    moved = _halted_by_drawdown().apply_config(risk_config(ai_trading_enabled=True), "lead", T0)

    assert moved.decisions[0].action == "ai_resumed"
    assert moved.state.ai_trading_enabled
    assert moved.state.last_halt_reason is None


def test_settings_cannot_clear_a_halt_reason_directly() -> None:
    moved = _halted_by_drawdown().apply_config(
        risk_config(ai_trading_enabled=False, last_halt_reason=None), "lead", T0
    )

    assert moved.state.last_halt_reason == "max_drawdown"


def test_new_limits_apply_to_the_very_next_idea() -> None:
    tightened = gate_state().apply_config(risk_config(max_lot_size=Decimal("0.10")), "lead", T0)

    after = tightened.state.on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0)

    assert tightened.decisions == ()
    assert after.result.risk_check_result == "fail:lot_size"


def test_settings_do_not_release_the_kill_switch() -> None:
    killed = gate_state(risk_config(ai_trading_enabled=False)).kill_switch("ops", T0, "x").state

    moved = killed.apply_config(risk_config(ai_trading_enabled=True), "lead", T0)

    assert moved.state.kill.active
    assert moved.state.ai_trading_enabled


# ---------------------------------------------------------------------- broker events


def _executed() -> GateState:
    return gate_state().on_idea(idea(), HIGH_CONFIDENCE, strategy(), gate_context(), T0).state


def test_fill_replaces_the_pending_reservation() -> None:
    filled = _executed().on_position_opened(
        position(position_id="555", idea_id=idea().idea_id, opened_at=T0), T0)

    assert [(p.position_id, p.pending) for p in filled.positions] == [("555", False)]


def test_failed_order_releases_the_reservation() -> None:
    assert _executed().on_order_failed(idea().idea_id, T0).positions == ()


def test_close_removes_the_position_and_books_the_realised_pnl() -> None:
    closed = _executed().on_position_closed(idea().idea_id, "-123.456", T0)

    assert closed.positions == ()
    assert closed.realised_today == Decimal("-123.46")


def test_late_close_of_an_earlier_trading_day_is_not_booked_today() -> None:
    today = gate_state().roll(NEXT_DAY)

    closed = today.on_position_closed("1001", "-500", T0)

    assert closed.realised_today == Decimal("0.00")


def test_account_state_syncs_realised_pnl_and_positions_keeping_pending_ones() -> None:
    executed = _executed()
    broker = account(realized_pl_today=Decimal("-50.00"), positions=(position(),),
                     captured_at=T0 + timedelta(seconds=1))

    moved = executed.on_account(broker, T0 + timedelta(seconds=1))

    assert moved.state.realised_today == Decimal("-50.00")
    assert sorted(p.position_id for p in moved.state.positions) == ["1001", idea().idea_id]


def test_older_account_state_does_not_overwrite_a_newer_one() -> None:
    newer = gate_state().on_account(account(realized_pl_today=Decimal("-10.00")), T0).state

    older = newer.on_account(
        account(realized_pl_today=Decimal("-99.00"), captured_at=T0 - timedelta(minutes=1)), T0
    )

    assert older.state.realised_today == Decimal("-10.00")


def test_account_state_with_a_drawdown_breach_halts_without_an_idea() -> None:
    moved = gate_state().on_account(account(open_pl=Decimal("-1000.00")), T0)

    assert moved.state.last_halt_reason == "max_drawdown"
    assert moved.decisions[0].action == "ai_halted"
    assert moved.decisions[0].trade_idea_id is None


# -------------------------------------------------------------------------- serializing


def test_gate_state_round_trips_through_json() -> None:
    state = _halted_by_drawdown().kill_switch("ops", T0, "panic").state
    state = state.on_position_opened(position(), T0).on_position_closed("x", "12.5", T0)
    state = state.on_account(account(captured_at=T0, positions=(position(),)), T0).state

    data = json.loads(json.dumps(state.to_state()))

    assert GateState.from_state(data) == state
    assert data["open_by_strategy"] == {strategy().strategy_id: 1}
