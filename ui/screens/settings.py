"""Settings: accounts (broker status, refresh), API integrations (OpenAI test), risk management.

The risk form holds every limit of §4.1 plus the gate's extra settings; it is saved
through `PUT /v1/settings/risk` (validated there and applied by the gate) and the
server's objections are shown under the field they are about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import streamlit as st

from ui import fmt, state
from ui.api_client import ApiError

RISK_ERRORS = "risk_errors"
RISK_DONE = "risk_done"
AI_TEST = "ai_test"

#: The form's fields, in the order they are shown.
RISK_FIELDS = (
    "min_confidence_threshold", "max_lot_size", "max_concurrent_trades", "daily_profit_target",
    "weekly_profit_target", "max_drawdown_amount", "stop_after_target", "halt_on_drawdown",
    "allow_off_watchlist_autotrade", "watchlist", "approval_ttl_minutes",
    "calendar_max_age_minutes", "account_max_age_minutes", "trading_day_start",
    "trading_day_tz",
)
MONEY = ("max_lot_size", "daily_profit_target", "weekly_profit_target", "max_drawdown_amount",
         "min_confidence_threshold")


def parse_watchlist(text: str) -> list[str]:
    """`xauusd, EURUSD  us30` -> `["XAUUSD", "EURUSD", "US30"]` (order kept, no repeats)."""
    out: list[str] = []
    for part in re.split(r"[\s,;]+", text.strip()):
        symbol = part.upper()
        if symbol and symbol not in out:
            out.append(symbol)
    return out


def risk_body(current: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The PUT body: the form's values, amounts to two decimals, AI on/off unchanged
    (that is the kill switch's and the gate's business)."""
    body: dict[str, Any] = {"ai_trading_enabled": bool(current["ai_trading_enabled"])}
    for name in RISK_FIELDS:
        value = values.get(name)
        if name in MONEY and value is not None:
            value = round(float(value), 2)
        elif name == "watchlist":
            value = parse_watchlist(str(value or ""))
        elif name in ("trading_day_start", "trading_day_tz"):
            value = str(value or "").strip() or None
        body[name] = value
    return {k: v for k, v in body.items()
            if v is not None or k in ("daily_profit_target", "weekly_profit_target")}


# ------------------------------------------------------------------------------ accounts


def _accounts() -> None:
    account = state.read_or_none("/v1/account")
    try:
        broker = state.read("/v1/health")["checks"].get("broker") or {}
    except ApiError as err:
        if err.status != 503:
            raise
        broker = (err.details.get("checks") or {}).get("broker") or {}
    status = broker.get("status", "unknown")
    colors: dict[str, fmt.Color] = {"ok": "green", "degraded": "orange", "error": "red"}
    color = colors.get(status, "gray")
    st.badge(f"Broker connection: {status}", color=color)
    if broker.get("detail"):
        st.caption(fmt.escape(str(broker["detail"])))
    if account is None:
        st.info("No account snapshot yet.")
    else:
        st.dataframe([{"Account": account["account"], "Broker": account["broker"],
                       "Balance": fmt.money(account["balance"]),
                       "Equity": fmt.money(account["equity"]),
                       "Last snapshot (UTC)": fmt.utc_text(account["captured_at"], seconds=True)}],
                     hide_index=True)
    if st.button("Refresh account info now", icon=":material/refresh:", key="refresh_account"):
        try:
            answer = state.client().refresh_account()
        except ApiError as err:
            state.show_error(err, "ask for a refresh")
            return
        state.changed()
        st.success(f"Refresh requested (command {answer.get('command_id')}): the broker "
                   "service publishes the account in a few seconds.")


# ---------------------------------------------------------------------- integrations


def _integrations() -> None:
    st.markdown("**OpenAI**")
    st.caption("The key is configured on the server (OPENAI_API_KEY in its environment or "
               ".env); the UI never sees it. Test Connection asks the API to try it.")
    if st.button("Test Connection", icon=":material/network_check:", key="ai_test_button"):
        try:
            st.session_state[AI_TEST] = state.client().test_connection()
        except ApiError as err:
            st.session_state[AI_TEST] = {"status": "error", "message": fmt.error_text(err)}
    result = st.session_state.get(AI_TEST)
    if result is None:
        st.caption("Key status: not tested yet in this session.")
    elif result.get("status") == "ok":
        st.success(result.get("message") or "AI online", icon=":material/check_circle:")
    else:
        st.error(result.get("message") or "AI unreachable", icon=":material/error:")
        configured = result.get("message") != "OpenAI API key not configured"
        st.caption(f"Key status: {'configured' if configured else 'not configured'}.")


# ------------------------------------------------------------------------ risk form


class _Form:
    """Renders the risk inputs, keeps their values, and puts each server objection
    right under the field it is about."""

    def __init__(self, risk: Mapping[str, Any], prefix: str, errors: Mapping[str, str]) -> None:
        self.risk = risk
        self.prefix = prefix
        self.errors = errors
        self.values: dict[str, Any] = {}

    def _after(self, col: Any, name: str, value: Any) -> None:
        self.values[name] = value
        if name in self.errors:
            col.error(self.errors[name], icon=":material/error:")

    def number(self, col: Any, name: str, label: str, bounds: tuple[float, float],
               step: float, *, optional: bool = False) -> None:
        current = self.risk.get(name)
        value = None if current is None and optional else float(current or 0)
        self._after(col, name, col.number_input(label, bounds[0], bounds[1], value, step,
                                                format="%.2f", key=self.prefix + name))

    def integer(self, col: Any, name: str, label: str, bounds: tuple[int, int],
                default: int) -> None:
        current = self.risk.get(name)
        value = default if current is None else int(current)
        self._after(col, name, col.number_input(label, bounds[0], bounds[1], value, 1,
                                                key=self.prefix + name))

    def toggle(self, col: Any, name: str, label: str) -> None:
        self._after(col, name, col.toggle(label, bool(self.risk.get(name)),
                                          key=self.prefix + name))

    def text(self, col: Any, name: str, label: str, value: str) -> None:
        self._after(col, name, col.text_input(label, value, key=self.prefix + name))


def _inputs(risk: Mapping[str, Any], prefix: str, errors: Mapping[str, str]) -> dict[str, Any]:
    form = _Form(risk, prefix, errors)
    a, b, c = st.columns(3)
    form.number(a, "min_confidence_threshold", "Confidence threshold (%)", (0.0, 100.0), 0.5)
    form.number(b, "max_lot_size", "Max lot size per trade", (0.01, 100_000.0), 0.01)
    form.integer(c, "max_concurrent_trades", "Max concurrent trades", (0, 1000), 1)
    a, b, c = st.columns(3)
    form.number(a, "daily_profit_target", "Daily profit target (empty = none)", (0.01, 1e12),
                50.0, optional=True)
    form.number(b, "weekly_profit_target", "Weekly profit target (empty = none)",
                (0.01, 1e12), 100.0, optional=True)
    form.number(c, "max_drawdown_amount", "Max daily drawdown", (0.01, 1e12), 50.0)
    a, b, c = st.columns(3)
    form.toggle(a, "stop_after_target", "Stop new trades after hitting target?")
    form.toggle(b, "halt_on_drawdown", "Stop trading if drawdown breached?")
    form.toggle(c, "allow_off_watchlist_autotrade", "Allow off-watchlist auto trades?")
    form.text(st, "watchlist", "Watchlist (symbols, comma separated)",
              ", ".join(risk.get("watchlist") or []))
    a, b, c = st.columns(3)
    form.integer(a, "approval_ttl_minutes", "Approval expires after (minutes)", (1, 1440), 15)
    form.integer(b, "calendar_max_age_minutes", "Calendar older than (minutes) blocks",
                 (1, 10_080), 240)
    form.integer(c, "account_max_age_minutes", "Account older than (minutes) blocks",
                 (1, 1440), 5)
    a, b = st.columns(2)
    form.text(a, "trading_day_start", "Trading day starts at (HH:MM)",
              risk.get("trading_day_start") or "22:00")
    form.text(b, "trading_day_tz", "Trading day time zone", risk.get("trading_day_tz") or "UTC")
    return form.values


def _save_risk(risk: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    try:
        answer = state.client().put_risk(risk_body(risk, values))
    except ApiError as err:
        per_field, other = fmt.field_errors(err, set(RISK_FIELDS))
        st.session_state[RISK_ERRORS] = (per_field, other or ([] if per_field else
                                                               [fmt.error_text(err, "save")]))
        return
    st.session_state.pop(RISK_ERRORS, None)
    st.session_state[RISK_DONE] = (f"Saved: the gate applied version {answer.get('version')} "
                                   f"(hash {str(answer.get('config_hash') or '')[:12]}).")
    state.changed()


def _risk() -> None:
    risk = state.read_or_none("/v1/settings/risk")
    if risk is None:
        st.info("No risk configuration applied yet: the gate publishes one when it starts.")
        return
    done = st.session_state.pop(RISK_DONE, None)
    if done:
        st.success(done, icon=":material/check_circle:")
    per_field, other = st.session_state.get(RISK_ERRORS, ({}, []))
    for text in other:
        st.error(text, icon=":material/error:")
    with st.form("risk_form", border=True):
        values = _inputs(risk, f"risk-{risk['version']}-", per_field)
        saved = st.form_submit_button("Save risk settings", type="primary",
                                      icon=":material/save:")
    if saved:
        _save_risk(risk, values)
        st.rerun()
    st.caption(f"Version {risk['version']} · by {risk.get('updated_by') or fmt.DASH} · "
               f"{fmt.utc_text(risk.get('updated_at'))}. AI trading itself is switched with "
               "the kill switch on the AI Trading page.")
    if per_field:
        st.caption("Fix the fields marked above and save again.")


def render() -> None:
    """The settings screen."""
    st.title("Settings")
    tabs = st.tabs(["Accounts", "API Integrations", "Risk Management", "Appearance"])
    for tab, (doing, panel) in zip(tabs[:3], [("load the account", _accounts),
                                              ("test the connection", _integrations),
                                              ("load the risk settings", _risk)], strict=True):
        with tab, state.panel(doing):
            panel()
    with tabs[3]:
        st.caption("Dark theme (ui/.streamlit/config.toml). Streamlit's ⋮ menu → Settings "
                   "switches to light for this browser.")


if __name__ == "__main__":
    render()
