"""Money, lot rounding and the JSON round trips of the core's records."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from streams.core.model import (
    AccountState,
    CalendarStatus,
    KillSwitch,
    RiskConfig,
    TradeIdea,
    lots_cap,
    lots_floor,
    lots_requested,
    money,
    to_decimal,
)
from tests.streams.core.decision_factories import (
    T0,
    account,
    calendar,
    event,
    idea,
    position,
    risk_config,
)


def test_float_noise_in_lots_does_not_fail_an_equal_cap() -> None:
    requested = lots_requested(0.1 + 0.2)  # 0.30000000000000004

    assert requested == Decimal("0.30")
    assert requested <= lots_cap(0.3)


def test_lot_between_steps_is_rounded_up_and_fails_the_cap_below_it() -> None:
    assert lots_requested(0.301) == Decimal("0.31")
    assert lots_requested(0.301) > lots_cap(0.30)


def test_cap_between_steps_is_rounded_down() -> None:
    assert lots_cap("0.299999") == Decimal("0.29")


def test_sizing_rounds_down_to_the_lot_step() -> None:
    assert lots_floor(0.567) == Decimal("0.56")


def test_money_rounds_half_even_to_cents() -> None:
    assert money("0.125") == Decimal("0.12")
    assert money("0.135") == Decimal("0.14")
    assert money(0.1 + 0.2) == Decimal("0.30")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "abc", None])
def test_to_decimal_refuses_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="number"):
        to_decimal(bad)  # type: ignore[arg-type]


def test_float_becomes_the_decimal_it_was_written_as() -> None:
    assert to_decimal(0.1) == Decimal("0.1")


def test_naive_times_are_refused_in_records() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        account(captured_at=datetime(2024, 4, 2, 8, 0))  # noqa: DTZ001 - the point of the test


def _through_json(data: dict) -> dict:
    loaded: dict = json.loads(json.dumps(data))
    return loaded


def test_trade_idea_round_trips_through_json() -> None:
    original = idea()

    assert TradeIdea.from_dict(_through_json(original.to_dict())) == original


def test_account_state_round_trips_through_json() -> None:
    original = account(positions=(position(), position(position_id="2", pending=True)))

    assert AccountState.from_dict(_through_json(original.to_dict())) == original


def test_risk_config_round_trips_through_json() -> None:
    original = risk_config(weekly_profit_target=Decimal("5000.00"),
                           approval_ttl=timedelta(minutes=7), trading_day_tz="America/New_York")

    assert RiskConfig.from_dict(_through_json(original.to_dict())) == original


def test_calendar_and_kill_switch_round_trip_through_json() -> None:
    status = calendar(event(5), event(-30, currency="EUR", all_day=True))
    kill = KillSwitch(True, "ops@example.com", T0, "broker outage")

    assert CalendarStatus.from_dict(_through_json(status.to_dict())) == status
    assert KillSwitch.from_dict(_through_json(kill.to_dict())) == kill


def test_risk_config_accepts_the_settings_api_shape() -> None:
    body = {
        "ai_trading_enabled": False, "min_confidence_threshold": 92.5, "max_lot_size": 0.50,
        "max_concurrent_trades": 2, "daily_profit_target": 2000.00, "stop_after_target": True,
        "max_drawdown_amount": 800.00, "halt_on_drawdown": True,
        "allow_off_watchlist_autotrade": False,
    }

    config = RiskConfig.from_dict(body)

    assert config.min_confidence_threshold == Decimal("92.5")
    assert config.max_lot_size == Decimal("0.5")
    assert config.max_drawdown_amount == Decimal("800.00")
    assert config.approval_ttl == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_confidence_threshold", Decimal("100.01")),
        ("max_lot_size", Decimal(0)),
        ("max_drawdown_amount", Decimal(0)),
        ("daily_profit_target", Decimal("-1")),
        ("max_concurrent_trades", -1),
        ("account_max_age", timedelta(0)),
    ],
)
def test_risk_config_refuses_impossible_limits(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        risk_config(**{field: value})
