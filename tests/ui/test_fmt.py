"""The formatting rules of the UI (pure functions: no API, no Streamlit)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.ui.seed import strategy_definition
from ui import fmt
from ui.api_client import ApiError, ApiUnreachable
from ui.screens.analysis import pl_points
from ui.screens.dashboard import daily_target_text, watched_rows
from ui.screens.history import decision_label
from ui.screens.settings import parse_watchlist, risk_body
from ui.screens.strategies import editable, session_text, validate

RISK = {"ai_trading_enabled": True, "kill_switch": {"active": False},
        "last_halt_reason": None}


@pytest.mark.parametrize(("value", "text"), [
    (12345.678, "12,345.68"), ("2000", "2,000.00"), (None, "—"), ("", "—"), ("n/a", "n/a")])
def test_money(value: object, text: str) -> None:
    assert fmt.money(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (25, "+25.00"), (-10.5, "-10.50"), (0, "0.00"), (None, "—"), ("1234.5", "+1,234.50")])
def test_signed_money_always_shows_the_sign(value: object, text: str) -> None:
    assert fmt.signed_money(value) == text


def test_percentages_ratios_and_progress() -> None:
    assert fmt.ratio_pct(0.5) == "50.0%"
    assert fmt.ratio_pct(None) == "—"
    assert fmt.pct(0.42, signed=True) == "+0.42%"
    assert fmt.pct(-1.5, 1, signed=True) == "-1.5%"
    assert fmt.progress(500, 2000) == 0.25
    assert fmt.progress(-100, 2000) == 0.0
    assert fmt.progress(5000, 2000) == 1.0
    assert fmt.progress(100, None) is None
    assert fmt.progress(100, 0) is None


@pytest.mark.parametrize(("value", "text"), [
    (2385.2, "2,385.20"), (1.08523, "1.08523"), (None, "—"), (0.3, "0.30000")])
def test_prices_under_ten_read_with_five_decimals(value: object, text: str) -> None:
    assert fmt.price(value) == text


def test_distances_read_like_their_price() -> None:
    assert fmt.price(2.3, 2385.2) == "2.30"
    assert fmt.price(0.00012, 1.0852) == "0.00012"


def test_times_in_utc_and_in_the_viewers_zone() -> None:
    at = "2025-10-27T10:15:00+00:00"
    assert fmt.utc_text(at) == "2025-10-27 10:15 UTC"
    assert fmt.utc_text("2025-10-27T12:15:30+02:00", seconds=True) == "2025-10-27 10:15:30 UTC"
    assert fmt.local_text(at, "Africa/Johannesburg") == "2025-10-27 12:15 SAST"
    assert fmt.local_text(at, "Not/AZone") == "2025-10-27 10:15 UTC"
    assert fmt.when("2025-10-27T10:15:00Z") == datetime(2025, 10, 27, 10, 15, tzinfo=UTC)
    assert fmt.when("yesterday") is None
    assert fmt.utc_text(None) == "—"


@pytest.mark.parametrize(("seconds", "text"), [
    (8, "8 s"), (720, "12 min"), (3 * 3600, "3.0 h"), (2 * 86400, "2.0 d"), (None, "—")])
def test_ages(seconds: float | None, text: str) -> None:
    assert fmt.age_text(seconds) == text


def test_minutes_until_release() -> None:
    assert [fmt.minutes_until(m) for m in (45, 0, -12, None)] == \
        ["in 45 min", "now", "12 min ago", "—"]


def test_ai_badge_is_green_when_on_and_says_why_when_off() -> None:
    assert fmt.ai_badge(RISK) == fmt.Badge("AI Trading: ON", "green")
    halted = {**RISK, "ai_trading_enabled": False, "last_halt_reason": "daily_target_reached"}
    assert fmt.ai_badge(halted) == fmt.Badge("AI Trading: OFF (Daily target reached)", "red")
    odd = {**RISK, "ai_trading_enabled": False, "last_halt_reason": "feed_outage"}
    assert fmt.ai_badge(odd).label == "AI Trading: OFF (Feed outage)"
    killed = {**RISK, "kill_switch": {"active": True, "by": "ops@example.com",
                                      "reason": "spread spike"}}
    badge = fmt.ai_badge(killed)
    assert (badge.label, badge.color) == ("AI Trading: OFF (kill switch)", "red")
    assert badge.detail == "Kill switch on by ops@example.com: spread spike"
    assert fmt.ai_badge({**RISK, "ai_trading_enabled": False}).detail == \
        "switched off in the risk settings"
    assert fmt.ai_badge(None).color == "gray"
    assert fmt.kill_switch_badge(killed) == fmt.Badge("Kill switch: ENGAGED", "red",
                                                      "spread spike")


@pytest.mark.parametrize(("status", "label", "color"), [
    ("auto_executed", "Auto-executed", "green"), ("needs_approval", "Needs approval", "yellow"),
    ("rejected", "Rejected", "red"), ("halted_by_risk", "Halted by risk", "red"),
    ("something_new", "Something new", "gray")])
def test_idea_status_badge_colours(status: str, label: str, color: str) -> None:
    assert fmt.idea_status(status) == fmt.Badge(label, color)  # type: ignore[arg-type]


def test_the_idea_status_filter_fits_the_apis_limit() -> None:
    assert len(fmt.IDEA_STATUS_FILTER) <= 8
    assert set(fmt.IDEA_STATUS_FILTER) <= set(fmt.IDEA_STATUSES)


def test_levels_actions_and_impact() -> None:
    idea = {"entry_price": 1.08523, "stop_loss": 1.0831, "take_profit": [1.0889, 1.0901]}
    assert fmt.levels_text(idea) == "1.08523 / 1.08310 / 1.08890, 1.09010"
    assert fmt.levels_text({"entry_price": None, "stop_loss": 2378.5, "take_profit": []}) == \
        "— / 2,378.50 / —"
    assert fmt.action_text("human_approved") == "Human approved"
    assert fmt.direction_text("sell") == "SELL"
    assert fmt.impact_text("high") == "HIGH"
    assert fmt.is_high_impact("High")
    assert fmt.impact_text("medium") == "Medium"


def test_markdown_from_user_text_is_inert() -> None:
    assert fmt.escape("*bold* [link](x) $x$") == "\\*bold\\* \\[link\\](x) \\$x\\$"
    assert fmt.bullets({"max_lot_size": 0.5, "take_profit_rr": [2, 3]}) == \
        "- Max lot size: 0.5\n- Take profit rr: \\[2, 3\\]"
    assert fmt.bullets({}) == "—"


def test_approve_answer_in_words() -> None:
    assert fmt.approve_outcome({"status": "executed", "mt5_order_id": 42}) == \
        ("success", "Executed: MT5 order 42")
    assert fmt.approve_outcome({"status": "blocked", "reason": "kill_switch: on"}) == \
        ("error", "Blocked: kill_switch: on")


def test_errors_read_as_sentences() -> None:
    down = ApiUnreachable(0, "UNREACHABLE", "the API at http://x cannot be reached")
    assert fmt.error_text(down, "load") == \
        "Could not load: the API at http://x cannot be reached. Is `ai-trader api` running?"
    timeout = ApiError(504, "TIMEOUT", "no reply from the gate", {"command_id": "c-1"})
    assert "(command c-1)" in fmt.error_text(timeout)
    assert "may still be applied" in \
        fmt.error_text(timeout)
    refused = ApiError(409, "RISK_VIOLATION", "max lot exceeded",
                       {"reason": "risk_violation: max lot exceeded"})
    assert fmt.error_text(refused) == "max lot exceeded (risk_violation: max lot exceeded)"
    assert "log in again" in fmt.error_text(ApiError(401, "UNAUTHORIZED", "expired"))


def test_field_errors_go_to_their_field() -> None:
    err = ApiError(400, "INVALID_INPUT", "the request is not valid", {"errors": [
        {"loc": ["body", "trading_day_start"], "message": "Value error, must be HH:MM (24h)"},
        {"loc": ["body", "watchlist", "1"], "message": "String should match pattern"},
        {"loc": ["body", "mystery"], "message": "Extra inputs are not permitted"},
        {"path": "$.risk_caps.max_lot_size", "message": "must be positive"}]})
    per_field, other = fmt.field_errors(err, {"trading_day_start", "watchlist", "risk_caps"})
    assert per_field == {"trading_day_start": "must be HH:MM (24h)",
                         "watchlist": "String should match pattern",
                         "risk_caps": "must be positive"}
    assert other == ["mystery: Extra inputs are not permitted"]


# ----------------------------------------------------------------- screens' pure parts


def test_risk_body_rounds_amounts_and_keeps_ai_on_off() -> None:
    values = {"min_confidence_threshold": 85.0000001, "max_lot_size": 0.1 + 0.2,
              "max_concurrent_trades": 3, "daily_profit_target": None,
              "weekly_profit_target": 5000.0, "max_drawdown_amount": 1000.0,
              "stop_after_target": True, "halt_on_drawdown": False,
              "allow_off_watchlist_autotrade": False, "watchlist": "xauusd, EURUSD eurusd",
              "approval_ttl_minutes": 15, "calendar_max_age_minutes": 60,
              "account_max_age_minutes": 2, "trading_day_start": " 22:00 ",
              "trading_day_tz": ""}
    body = risk_body({"ai_trading_enabled": False}, values)
    assert body["ai_trading_enabled"] is False
    assert body["min_confidence_threshold"] == 85.0
    assert body["max_lot_size"] == 0.3
    assert body["daily_profit_target"] is None  # no target is sent as null
    assert body["watchlist"] == ["XAUUSD", "EURUSD"]
    assert body["trading_day_start"] == "22:00"
    assert "trading_day_tz" not in body  # empty: the server keeps its value


def test_watchlist_parsing() -> None:
    assert parse_watchlist("  ") == []
    assert parse_watchlist("us30;XAUUSD\nus30") == ["US30", "XAUUSD"]


def test_strategy_editor_validates_with_json_paths() -> None:
    definition = strategy_definition()
    shown = {**definition, "definition_hash": "h", "updated_by": "x", "updated_at": "t",
             "timeframes": None}
    assert editable(shown) == {k: v for k, v in definition.items() if k != "timeframes"}
    parsed, errors = validate(json.dumps({**definition, "rr_expectation": -1}))
    assert parsed is None
    assert [p for p, _ in errors] == ["$.rr_expectation"]
    parsed, errors = validate("{not json")
    assert parsed is None
    assert errors[0][0] == "$"
    parsed, errors = validate(json.dumps(definition))
    assert errors == []
    assert parsed is not None
    assert parsed["id"] == definition["id"]
    assert session_text(definition["session_windows"]) == \
        "London morning 07:00Z–11:00Z Mon–Fri"


def test_dashboard_and_analysis_helpers() -> None:
    assert daily_target_text({"daily_pl": 75, "daily_profit_target": 2000}) == \
        "+75.00 of 2,000.00 target (3.8%)"
    assert daily_target_text({"daily_pl": -20, "daily_profit_target": None}) == \
        "-20.00 today (no daily target set)"
    rows = [{"symbol": "XAUUSD", "timeframe": "M15", "close": 2385.2, "spread": 0.3,
             "atr": 2.3, "pct_move_today": 0.42, "open_time": None},
            {"symbol": "US30", "timeframe": "M1", "close": 39000, "spread": 2, "atr": 30,
             "pct_move_today": None, "open_time": None}]
    assert [r["Symbol"] for r in watched_rows(rows, ["XAUUSD"])] == ["XAUUSD"]
    assert [r["Symbol"] for r in watched_rows(rows, [])] == ["XAUUSD", "US30"]
    points = pl_points([{"day": "2025-10-27T00:00:00+00:00", "pl": 100},
                        {"day": "2025-10-28T00:00:00+00:00", "pl": -40}])
    assert [(p["day"], p["Cumulative P/L"]) for p in points] == \
        [("2025-10-27", 100.0), ("2025-10-28", 60.0)]
    assert decision_label({"occurred_at": "2025-10-27T10:15:00+00:00", "action": "ai_halted",
                           "symbol": None}) == "2025-10-27 10:15:00 UTC · AI halted · —"
