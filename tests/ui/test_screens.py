"""Every screen with Streamlit's AppTest against the real API, database and bus.

The app runs in-process (AppTest); its API client makes real HTTP calls to uvicorn;
changes travel as signed commands over Kafka to the gate's test double, which answers.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from tests.api import rows
from tests.api.conftest import PASSWORD
from tests.api.gate_double import MT5_ORDER_ID
from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI
from tests.ui.conftest import APP, UiStack, app_test, page
from tests.ui.seed import BALANCE
from ui import state
from ui.screens.settings import RISK_FIELDS

# ------------------------------------------------------------------------------ helpers


def texts(at: AppTest) -> str:
    """Everything readable on the page, one element per line."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "title", "subheader", "success", "error", "info",
                 "warning"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(f"{m.label}: {m.value}" for m in at.metric)
    return "\n".join(parts)


def button(at: AppTest, label: str) -> Any:
    """The one button with this label."""
    (found,) = [b for b in at.button if b.label == label]
    return found


def frames(at: AppTest) -> list[Any]:
    """The pandas frames of every table on the page."""
    out = []
    for df in at.dataframe:
        value = df.value
        out.append(getattr(value, "data", value))  # a Styler carries its frame in .data
    return out


def table_with(at: AppTest, column: str) -> Any:
    """The first table that has `column`."""
    for frame in frames(at):
        if column in frame.columns:
            return frame
    raise AssertionError(f"no table with column {column!r}; tables: "
                         f"{[list(f.columns) for f in frames(at)]}")


def commands(stack: UiStack, kind: str, before: int) -> list[dict[str, Any]]:
    """The commands of `kind` the gate received since `before`."""
    return [c for c in stack.gate.commands[before:] if c["kind"] == kind]


@contextmanager
def risk_row(stack: UiStack, **overrides: Any) -> Iterator[None]:
    """The account's risk configuration changed for one test, then put back."""
    with stack.conn() as conn:
        rows.risk_config(conn, stack.seeded.account, weekly_profit_target="5000.00", **overrides)
    state.changed()
    try:
        yield
    finally:
        with stack.conn() as conn:
            rows.risk_config(conn, stack.seeded.account, weekly_profit_target="5000.00")
        state.changed()


def kill_switch_on(stack: UiStack, reason: str) -> None:
    """Mark the kill switch engaged in the stored config (as the gate would publish it)."""
    with stack.conn() as conn:
        conn.execute("UPDATE risk_config SET ai_trading_enabled = false, config = config || "
                     "jsonb_build_object('ai_trading_enabled', false, 'kill_switch', "
                     "jsonb_build_object('active', true, 'by', 'ops@example.com', "
                     "'at', %s::text, 'reason', %s::text)) WHERE account = %s",
                     (datetime.now(UTC).isoformat(), reason, stack.seeded.account))
    state.changed()


# -------------------------------------------------------------------------------- login


def test_login_form_logs_in_and_lands_on_the_dashboard(ui_env: UiStack) -> None:
    at = app_test(ui_env, logged_in=False).run()
    assert [t.label for t in at.text_input] == ["Email", "Password"]
    at.text_input(key="login_email").input(ui_env.email)
    at.text_input(key="login_password").input(PASSWORD)
    button(at, "Log in").click().run()
    assert not at.exception, at.exception
    assert at.session_state[state.LOGIN_KEY]
    assert "Balance: 12,345.67" in texts(at)
    assert ":green-badge[AI Trading: ON]" in texts(at)


def test_login_with_a_wrong_password_says_so(ui_env: UiStack) -> None:
    at = app_test(ui_env, logged_in=False).run()
    at.text_input(key="login_email").input(ui_env.email)
    at.text_input(key="login_password").input("not the password")
    button(at, "Log in").click().run()
    assert [e.value for e in at.error] == ["Wrong email or password."]
    assert state.LOGIN_KEY not in at.session_state


def test_a_refused_token_goes_back_to_login_saying_why(ui_env: UiStack) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[state.LOGIN_KEY] = "not-a-jwt"
    at.session_state[state.USER] = {"email": "x@example.com"}
    at.run()
    assert not at.exception, at.exception
    assert [t.label for t in at.text_input] == ["Email", "Password"]
    assert any("session ended" in i.value for i in at.info), texts(at)


def test_logout_revokes_the_session(ui_env: UiStack) -> None:
    at = app_test(ui_env).run()
    token = at.session_state[state.LOGIN_KEY]
    at.button(key="logout").click().run()
    assert state.LOGIN_KEY not in at.session_state
    assert "You are logged out." in [i.value for i in at.info]
    with pytest.raises(state.ApiError) as refused:
        state.ApiClient(ui_env.url, token).get("/v1/auth/me")
    assert refused.value.status == 401


def test_an_unreachable_api_is_a_message_not_a_traceback(ui_env: UiStack,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    monkeypatch.setenv("AI_TRADER_UI_API_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[state.LOGIN_KEY] = "token"
    at.run()
    assert not at.exception, at.exception
    assert any(f"the API at {url} cannot be reached" in e.value for e in at.error), texts(at)


# ---------------------------------------------------------------------------- dashboard


def test_dashboard_shows_the_account_target_symbols_and_positions(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/dashboard.py")
    shown = texts(at)
    for line in (f"Balance: {float(BALANCE):,.2f}", "Equity: 12,370.67",
                 "Margin available: 9,000.00", "Open P/L: +25.00", "Open positions: 1"):
        assert line in shown
    assert at.get("progress")[0].proto.text == "+75.00 of 2,000.00 target (3.8%)"
    positions = table_with(at, "Ticket")
    assert positions["Ticket"].tolist() == [8]
    assert positions["Open P/L"].tolist() == ["+25.00"]
    watched = table_with(at, "% move today")
    assert watched.iloc[0][["Symbol", "ATR", "% move today"]].tolist() == \
        ["XAUUSD", "2.30", "+0.42%"]


def test_the_ai_badge_says_why_trading_is_off(ui_env: UiStack) -> None:
    with risk_row(ui_env, ai_trading_enabled=False, last_halt_reason="max_drawdown"):
        at = page(ui_env, "screens/dashboard.py")
        assert ":red-badge[AI Trading: OFF (Max drawdown breached)]" in texts(at)
    with risk_row(ui_env):
        kill_switch_on(ui_env, "broker maintenance")
        at = page(ui_env, "screens/dashboard.py")
        shown = texts(at)
        assert ":red-badge[AI Trading: OFF (kill switch)]" in shown
        assert ":red-badge[Kill switch: ENGAGED]" in shown
        assert "broker maintenance" in shown


# -------------------------------------------------------------------------------- ideas


def test_ideas_show_status_badges_and_levels(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/ideas.py")
    shown = texts(at)
    assert ":yellow-badge[Needs approval]" in shown
    assert "XAUUSD BUY M15 · confidence 91.3%" in shown
    assert "Entry / SL / TP: 2,385.20 / 2,378.50 / 2,398.00" in shown
    at.segmented_control(key="ideas_filter").set_value("Recent (all statuses)").run()
    assert ":green-badge[Auto-executed]" in texts(at)


def test_approve_with_a_lot_size_shows_the_executed_order(ui_env: UiStack) -> None:
    idea = ui_env.seeded.idea_fill
    before = len(ui_env.gate.commands)
    at = page(ui_env, "screens/ideas.py")
    at.number_input(key=f"lot-{idea}").set_value(0.3)
    at.button(key=f"approve-{idea}").click().run()
    assert not at.exception, at.exception
    assert f"Executed: MT5 order {MT5_ORDER_ID}" in [s.value for s in at.success]
    (command,) = commands(ui_env, "approve_idea", before)
    assert command["idea_id"] == idea
    assert str(command["lot_size"]) == "0.30"
    assert command["issuer"] == ui_env.email


def test_approve_blocked_by_risk_shows_the_reason(ui_env: UiStack) -> None:
    idea = ui_env.seeded.idea_blocked
    at = page(ui_env, "screens/ideas.py")
    at.button(key=f"approve-{idea}").click().run()
    errors = [e.value for e in at.error]
    assert any(e.startswith("Blocked: risk_violation: max_concurrent_trades_exceeded")
               for e in errors), errors


def test_reject_sends_the_reason(ui_env: UiStack) -> None:
    idea = ui_env.seeded.idea_reject
    before = len(ui_env.gate.commands)
    at = page(ui_env, "screens/ideas.py")
    at.text_input(key=f"reason-{idea}").input("news in 5 minutes")
    at.button(key=f"reject-{idea}").click().run()
    (command,) = commands(ui_env, "reject_idea", before)
    assert (command["idea_id"], command["reason"]) == (idea, "news in 5 minutes")
    assert any(i.value.startswith("Rejected (decision d-") for i in at.info), texts(at)


def test_idea_details_show_the_decision_and_its_snapshot(ui_env: UiStack) -> None:
    idea = ui_env.seeded.idea_fill
    at = page(ui_env, "screens/ideas.py")
    at.toggle(key=f"details-{idea}").set_value(True).run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Gold Pullback Buy" in shown
    assert table_with(at, "Risk check")["Risk check"].tolist() == ["pass"]
    assert "FOMC Rate Decision" in table_with(at, "Event")["Event"].tolist()


def test_kill_switch_needs_a_reason_and_a_confirmation(ui_env: UiStack) -> None:
    before = len(ui_env.gate.commands)
    at = page(ui_env, "screens/ideas.py")
    at.button(key="kill_start").click().run()
    at.button(key="kill_confirm").click().run()
    assert "A reason is required to engage the kill switch." in [e.value for e in at.error]
    assert commands(ui_env, "kill_switch", before) == []
    at.text_input(key="kill_reason").input("spread spike")
    at.button(key="kill_confirm").click().run()
    assert not at.exception, at.exception
    (command,) = commands(ui_env, "kill_switch", before)
    assert (command["reason"], command["issuer"]) == ("spread spike", ui_env.email)
    assert any("AI trading OFF, kill switch engaged" in s.value for s in at.success), texts(at)


def test_resume_is_offered_when_the_kill_switch_is_on(ui_env: UiStack) -> None:
    with risk_row(ui_env):
        kill_switch_on(ui_env, "maintenance")
        before = len(ui_env.gate.commands)
        at = page(ui_env, "screens/ideas.py")
        assert at.button(key="kill_start").disabled
        assert "Halt reason: Kill switch: maintenance" in texts(at)
        at.button(key="resume_start").click().run()
        at.text_input(key="resume_reason").input("all clear")
        at.button(key="resume_confirm").click().run()
        (command,) = commands(ui_env, "resume", before)
        assert command["reason"] == "all clear"


# --------------------------------------------------------------------------- strategies


def test_strategy_switch_and_json_editor(ui_env: UiStack) -> None:
    ident = ui_env.seeded.strategy["id"]
    before = len(ui_env.gate.commands)
    at = page(ui_env, "screens/strategies.py")
    assert "Gold Pullback Buy" in texts(at)
    (switch,) = [t for t in at.toggle if t.key.startswith(f"active-{ident}-")]
    switch.set_value(False).run()
    (command,) = commands(ui_env, "put_strategy", before)
    assert json.loads(command["payload_json"]) == {"is_active": False}
    assert "Strategy switched OFF (version 2)." in [s.value for s in at.success]

    at.toggle(key=f"edit-{ident}").set_value(True).run()
    editor = at.text_area[0]
    broken = json.loads(editor.value)
    broken["rr_expectation"] = "high"
    del broken["allowed_symbols"]
    editor.input(json.dumps(broken)).run()
    at.button(key=f"validate-{ident}").click().run()
    problems = table_with(at, "JSON path")
    assert set(problems["JSON path"]) >= {"$.rr_expectation", "$"}
    assert any("allowed_symbols" in m for m in problems["Problem"])
    at.button(key=f"save-{ident}").click().run()
    assert commands(ui_env, "put_strategy", before) == [command]  # nothing invalid is sent

    fixed = json.loads(editor.value)
    fixed.update(rr_expectation=2.5, allowed_symbols=["XAUUSD"])
    at.text_area[0].input(json.dumps(fixed)).run()
    at.button(key=f"save-{ident}").click().run()
    saved = commands(ui_env, "put_strategy", before)[-1]
    assert json.loads(saved["payload_json"])["definition"]["rr_expectation"] == 2.5


# ------------------------------------------------------------------------------ history


def test_history_filters_and_replays_a_decision(ui_env: UiStack) -> None:
    seeded = ui_env.seeded
    at = page(ui_env, "screens/history.py")
    table = table_with(at, "Action")
    assert "AI proposed" in table["Action"].tolist()
    at.selectbox(key="history_action").set_value("ai_halted").run()
    assert set(table_with(at, "Action")["Action"]) == {"AI halted"}
    assert any("No snapshot to replay" in i.value for i in at.info), texts(at)

    at.selectbox(key="history_action").set_value("All").run()
    at.text_input(key="history_symbol").input("xauusd").run()
    assert set(table_with(at, "Symbol")["Symbol"]) == {"XAUUSD"}
    picker = at.selectbox(key="history_replay")
    (label,) = [o for o in picker.options if "AI proposed" in o and
                seeded.now.strftime("%Y-%m-%d") in o][:1]
    picker.set_value(label).run()
    shown = texts(at)
    assert "Strategy matched" in shown
    assert "Gold Pullback Buy (s-1, version 1, hash abc)" in shown.replace("\\", "")
    assert "FOMC Rate Decision" in table_with(at, "Event")["Event"].tolist()
    assert table_with(at, "Balance")["Balance"].tolist() == ["12,000.00"]


# ----------------------------------------------------------------------------- analysis


def test_analysis_shows_the_week_cards_chart_and_closed_trades(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/analysis.py")
    at.segmented_control(key="analysis_range").set_value("This week").run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Total P/L: +345.67" in shown
    assert "Win rate: 100.0%" in shown
    trades = table_with(at, "Ticket")
    assert trades[["Ticket", "P/L"]].values.tolist() == [["7", "+40.00"]]
    (chart,) = at.get("vega_lite_chart")
    assert "Cumulative P/L" in chart.proto.spec


def test_analysis_custom_range_refuses_an_inverted_window(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/analysis.py")
    at.segmented_control(key="analysis_range").set_value("Custom").run()
    start = at.date_input(key="analysis_from").value
    at.date_input(key="analysis_to").set_value(start.replace(year=start.year - 1)).run()
    assert "“To” must not be before “From”." in [e.value for e in at.error]


# --------------------------------------------------------------------------------- data


def test_data_tabs_show_calendar_news_feeds_indicators_and_health(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/data.py")
    calendar = table_with(at, "Impact")
    fomc = calendar[calendar["Event"] == "FOMC Rate Decision"].iloc[0]
    assert fomc["Impact"] == "HIGH"
    assert fomc["Time (UTC)"].endswith("UTC")
    assert fomc["Local (Africa/Johannesburg)"].endswith("SAST")
    assert any("high-impact release" in m.value for m in at.markdown)
    news = table_with(at, "Relevance")
    assert "XAUUSD, USD" in news[news["Headline"] == ui_env.seeded.headline]["Relevance"].tolist()
    at.selectbox(key="rss_source").set_value("rss-fx").run()
    assert set(table_with(at, "Link")["Source"]) == {"rss-fx"}
    assert "XAUUSD" in table_with(at, "RSI 14")["Symbol"].tolist()
    health = table_with(at, "Check")
    assert set(health["Check"]) == {"bus", "database", "broker", "feeds", "gate"}


# ----------------------------------------------------------------------------- settings


def test_accounts_tab_shows_the_broker_and_asks_for_a_refresh(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/settings.py")
    assert ":green-badge[Broker connection: ok]" in texts(at)
    assert table_with(at, "Account")["Account"].tolist() == [ui_env.seeded.account]
    at.button(key="refresh_account").click().run()
    assert any(s.value.startswith("Refresh requested (command ") for s in at.success)


def test_test_connection_is_green_or_red_in_words(ui_env: UiStack) -> None:
    svc = ui_env.app.state.services
    saved = svc.settings
    at = page(ui_env, "screens/settings.py")
    try:
        at.button(key="ai_test_button").click().run()
        assert [e.value for e in at.error] == ["OpenAI API key not configured"]
        with FakeOpenAI() as fake:
            svc.settings = saved.model_copy(update={"openai_api_key": SecretStr(DEFAULT_KEY),
                                                    "openai_base_url": fake.url})
            at.button(key="ai_test_button").click().run()
            assert [s.value for s in at.success] == ["AI online"]
            svc.settings = saved.model_copy(update={
                "openai_api_key": SecretStr("sk-wrong-key-000000000000"),
                "openai_base_url": fake.url})
            at.button(key="ai_test_button").click().run()
            assert [e.value for e in at.error] == ["Invalid OpenAI API key"]
    finally:
        svc.settings = saved


def _risk_input(at: AppTest, name: str) -> Any:
    (found,) = [w for w in [*at.number_input, *at.text_input, *at.toggle]
                if w.key and w.key.endswith(f"-{name}")]
    return found


def test_risk_form_shows_the_servers_objection_under_the_field(ui_env: UiStack) -> None:
    before = len(ui_env.gate.commands)
    at = page(ui_env, "screens/settings.py")
    assert {k for k in RISK_FIELDS} <= {w.key.rsplit("-", 1)[1] for w in
                                        [*at.number_input, *at.text_input, *at.toggle]
                                        if w.key and w.key.startswith("risk-")}
    _risk_input(at, "trading_day_start").input("25:00")
    _risk_input(at, "watchlist").input("XAUUSD, bad symbol!")
    button(at, "Save risk settings").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert "must be HH:MM (24h)" in errors
    assert any("pattern" in e for e in errors), errors
    assert commands(ui_env, "set_risk_config", before) == []

    _risk_input(at, "trading_day_start").input("21:00")
    _risk_input(at, "watchlist").input("xauusd, EURUSD")
    _risk_input(at, "max_concurrent_trades").set_value(5)
    _risk_input(at, "daily_profit_target").set_value(1500.5)
    button(at, "Save risk settings").click().run()
    (command,) = commands(ui_env, "set_risk_config", before)
    payload = json.loads(command["payload_json"])
    assert payload["max_concurrent_trades"] == 5
    assert payload["daily_profit_target"] == "1500.50"
    assert payload["watchlist"] == ["EURUSD", "XAUUSD"]
    assert payload["trading_day_start"] == "21:00"
    assert any(s.value.startswith("Saved: the gate applied version") for s in at.success)


# -------------------------------------------------------------------------------- chart


def test_chart_draws_the_ideas_of_the_symbol(ui_env: UiStack) -> None:
    at = page(ui_env, "screens/chart.py")
    assert at.selectbox(key="chart_symbol").value == "XAUUSD"
    (chart,) = at.get("vega_lite_chart")
    assert "idea BUY" in chart.proto.spec
    markers = table_with(at, "Marker")
    assert "idea BUY" in markers["Marker"].tolist()
