"""AI Trading: the AI Control Panel (kill switch with confirmation) and the trade ideas.

APPROVE (with an optional lot size) and REJECT go through the API, which waits for the
gate and, for an approval, the broker; the answer is shown as the API gave it:
`executed` with the MT5 order id, or `blocked` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import streamlit as st

from ui import fmt, replay, state
from ui.api_client import ApiError

CONFIRM = "control_confirm"
DONE = "control_done"
ANSWERS = "idea_answers"


# ------------------------------------------------------------------------ control panel


def halt_reason_text(risk: Mapping[str, Any]) -> str:
    """Why AI trading is off (kill switch first), or `—`."""
    kill = risk.get("kill_switch") or {}
    if kill.get("active"):
        return f"Kill switch: {kill.get('reason') or 'no reason given'}"
    return fmt.halt_text(risk.get("last_halt_reason")) or fmt.DASH


def _cards(risk: Mapping[str, Any]) -> None:
    badge = fmt.ai_badge(risk)
    cols = st.columns(4)
    with cols[0]:
        st.caption("AI trading")
        st.badge(badge.label, color=badge.color)
        st.caption(f"Halt reason: {fmt.escape(halt_reason_text(risk))}")
    cols[1].metric("Confidence threshold", fmt.pct(risk.get("min_confidence_threshold"), 1))
    cols[2].metric("Max concurrent trades", str(risk.get("max_concurrent_trades")))
    cols[3].metric("Max drawdown", fmt.money(risk.get("max_drawdown_amount")))
    cols = st.columns(4)
    cols[1].metric("Daily goal", _goal(risk.get("daily_profit_target")))
    cols[2].metric("Weekly goal", _goal(risk.get("weekly_profit_target")))


def _goal(value: Any) -> str:
    return fmt.money(value) if value else "none"


def _confirm_kill() -> None:
    with st.container(border=True):
        st.warning("Engaging the kill switch stops every new trade, even approved ones, "
                   "until someone resumes.", icon=":material/warning:")
        reason = st.text_input("Reason (required, kept in the audit log)", key="kill_reason")
        ok, cancel = st.columns(2)
        if ok.button("Confirm: engage kill switch", type="primary", key="kill_confirm"):
            if not reason.strip():
                st.error("A reason is required to engage the kill switch.")
                return
            _control("engage the kill switch", lambda: state.client().kill(reason.strip()))
        if cancel.button("Cancel", key="kill_cancel"):
            st.session_state.pop(CONFIRM, None)
            st.rerun(scope="fragment")


def _confirm_resume() -> None:
    with st.container(border=True):
        st.info("Resuming lets the AI trade again within the risk limits.",
                icon=":material/play_circle:")
        reason = st.text_input("Reason (optional)", key="resume_reason")
        ok, cancel = st.columns(2)
        if ok.button("Confirm: resume AI trading", type="primary", key="resume_confirm"):
            _control("resume AI trading",
                     lambda: state.client().resume(reason.strip() or None))
        if cancel.button("Cancel", key="resume_cancel"):
            st.session_state.pop(CONFIRM, None)
            st.rerun(scope="fragment")


def _control(doing: str, call: Callable[[], Mapping[str, Any]]) -> None:
    try:
        answer = call()
    except ApiError as err:
        state.show_error(err, doing)
        return
    st.session_state.pop(CONFIRM, None)
    st.session_state[DONE] = control_text(answer)
    state.changed()
    st.rerun()  # the whole app: the header badge shows the new state


def control_text(answer: Mapping[str, Any]) -> str:
    """What the gate answered to a kill / resume."""
    on = answer.get("ai_trading_enabled")
    kill = answer.get("kill_switch") or {}
    state_text = "ON" if on else "OFF" if on is not None else "unchanged"
    kill_text = "engaged" if kill.get("active") else "released"
    return (f"The gate applied it: AI trading {state_text}, kill switch {kill_text} "
            f"(decision {answer.get('decision_id') or fmt.DASH}).")


def _control_panel() -> None:
    done = st.session_state.get(DONE)  # kept: the panel refreshes itself every few seconds
    if done:
        st.success(done, icon=":material/check_circle:")
    risk = state.read_or_none("/v1/settings/risk")
    if risk is None:
        st.info("No risk configuration applied yet: the gate publishes one when it starts.")
        return
    _cards(risk)
    kill = (risk.get("kill_switch") or {}).get("active")
    pending = st.session_state.get(CONFIRM)
    left, right, _ = st.columns([1, 1, 2])
    if left.button("Engage kill switch…", icon=":material/power_settings_new:",
                   key="kill_start", disabled=bool(kill) or pending == "kill"):
        st.session_state[CONFIRM] = pending = "kill"
        st.session_state.pop(DONE, None)
    if right.button("Resume AI trading…", icon=":material/play_arrow:", key="resume_start",
                    disabled=(not kill and bool(risk.get("ai_trading_enabled")))
                    or pending == "resume"):
        st.session_state[CONFIRM] = pending = "resume"
        st.session_state.pop(DONE, None)
    if pending == "kill":
        _confirm_kill()
    elif pending == "resume":
        _confirm_resume()


# -------------------------------------------------------------------------------- ideas


def idea_title(idea: Mapping[str, Any]) -> str:
    """`XAUUSD BUY M15 · confidence 91.3%`."""
    return (f"{idea['symbol']} {fmt.direction_text(idea['direction'])} {idea['timeframe']} · "
            f"confidence {fmt.pct(idea.get('confidence_score'), 1)}")


def short(text: str, limit: int = 180) -> str:
    """The first `limit` characters, on a word boundary."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def _answer(idea_id: str, kind: str, text: str) -> None:
    answers: dict[str, tuple[str, str]] = st.session_state.setdefault(ANSWERS, {})
    answers[idea_id] = (kind, text)


def _show_answer(kind: str, text: str) -> None:
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind == "info":
        st.info(text)
    else:
        st.error(text, icon=":material/block:")


def _approve(idea: Mapping[str, Any], lot: float | None) -> None:
    chosen = None if lot is None or round(lot, 2) == float(idea["lot_size"]) else round(lot, 2)
    try:
        answer = state.client().approve(idea["id"], chosen)
    except ApiError as err:
        _answer(idea["id"], "error", fmt.error_text(err, "approve"))
    else:
        _answer(idea["id"], *fmt.approve_outcome(answer))
    state.changed()


def _reject(idea: Mapping[str, Any], reason: str) -> None:
    try:
        answer = state.client().reject(idea["id"], reason.strip() or None)
    except ApiError as err:
        _answer(idea["id"], "error", fmt.error_text(err, "reject"))
    else:
        _answer(idea["id"], "info", f"Rejected (decision {answer.get('decision_id')}).")
    state.changed()


def _actions(idea: Mapping[str, Any]) -> None:
    ident = idea["id"]
    lot_col, approve_col, reason_col, reject_col = st.columns([2, 2, 4, 2],
                                                              vertical_alignment="bottom")
    lot = lot_col.number_input("Lot size", min_value=0.01, max_value=100_000.0, step=0.01,
                               value=float(idea["lot_size"]), format="%.2f",
                               key=f"lot-{ident}")
    if approve_col.button("APPROVE", type="primary", key=f"approve-{ident}",
                          icon=":material/check:"):
        with st.spinner("Waiting for the gate and the broker…"):
            _approve(idea, lot)
    reason = reason_col.text_input("Reject reason (optional)", key=f"reason-{ident}")
    if reject_col.button("REJECT", key=f"reject-{ident}", icon=":material/close:"):
        _reject(idea, reason)


def _details(idea: Mapping[str, Any]) -> None:
    st.markdown(fmt.escape(str(idea.get("rationale") or "")))
    st.dataframe([{
        "Strategy": idea.get("strategy_id"), "Expected hold": idea.get("expected_hold"),
        "Lot": idea.get("lot_size"), "Created (UTC)": fmt.utc_text(idea.get("created_at")),
        "Expires (UTC)": fmt.utc_text(idea.get("expires_at")),
        "Snapshot": idea.get("snapshot_ref"), "Status reason": idea.get("status_reason"),
    }], hide_index=True)
    created = fmt.when(idea.get("created_at"))
    since = (created - timedelta(minutes=1)).isoformat() if created else None
    rows, _ = state.client().history(symbol=idea["symbol"], since=since, limit=200)
    decisions = [d for d in rows if d.get("trade_idea_id") == idea["id"]]
    if not decisions:
        st.caption("No decision logged for this idea yet.")
        return
    st.markdown("**Decisions (checks)**")
    st.dataframe([{"When (UTC)": fmt.utc_text(d["occurred_at"], seconds=True),
                   "Action": fmt.action_text(d["action"]), "Risk check": d.get("risk_check_result"),
                   "Confidence": fmt.pct(d.get("confidence_score"), 1)} for d in decisions],
                 hide_index=True)
    with st.container(border=True):
        st.markdown("**Snapshot at the proposal**")
        replay.replay(decisions[-1]["id"])


def _idea(idea: Mapping[str, Any]) -> None:
    with st.container(border=True):
        badge = fmt.idea_status(idea.get("status"))
        top = st.columns([2, 4, 3], vertical_alignment="center")
        top[0].badge(badge.label, color=badge.color)
        top[1].markdown(f"**{fmt.escape(idea_title(idea))}**")
        top[2].caption(f"Entry / SL / TP: {fmt.levels_text(idea)}")
        st.caption(fmt.escape(short(idea.get("rationale") or "")))
        if idea.get("status") == "needs_approval":
            _actions(idea)
        answer = (st.session_state.get(ANSWERS) or {}).get(idea["id"])
        if answer:
            _show_answer(*answer)
        if st.toggle("Details", key=f"details-{idea['id']}"):
            _details(idea)


def _recent_answers(shown: set[str]) -> None:
    """Answers to ideas no longer listed (executed ideas leave the open list)."""
    for idea_id, (kind, text) in list((st.session_state.get(ANSWERS) or {}).items())[-5:]:
        if idea_id not in shown:
            _show_answer(kind, f"Idea {idea_id}: {text}")


def _ideas() -> None:
    which = st.segmented_control("Show", ["Open", "Recent (all statuses)"], default="Open",
                                 key="ideas_filter")
    statuses = fmt.IDEA_STATUS_FILTER if which == "Recent (all statuses)" else None
    ideas = state.read("/v1/ai/ideas/active", status=statuses, limit=50)
    _recent_answers({i["id"] for i in ideas})
    if not ideas:
        st.caption("No trade ideas waiting for a decision.")
    for idea in ideas:
        _idea(idea)


def render() -> None:
    """The AI Trading screen."""
    st.title("AI Trading")
    with st.container(border=True):
        st.subheader("AI Control Panel")
        state.live("control", _control_panel)
    st.subheader("Active trade ideas")
    state.live("ideas", _ideas)


if __name__ == "__main__":
    render()
