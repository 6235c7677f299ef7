"""Decision history: every decision newest first, filtered, with a replay of what it saw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from ui import fmt, replay, state

PAGES = "history_cursors"
ALL = "All"


def decision_rows(decisions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The history table (§4.1 columns plus the outcome and the idea)."""
    return [{
        "Time (UTC)": fmt.utc_text(d["occurred_at"], seconds=True),
        "Symbol": d.get("symbol") or fmt.DASH,
        "Action": fmt.action_text(d["action"]),
        "Outcome": d.get("outcome") or fmt.DASH,
        "Confidence": fmt.pct(d.get("confidence_score"), 1),
        "Risk check": d.get("risk_check_result") or fmt.DASH,
        "Strategy": d.get("strategy_id") or fmt.DASH,
        "Human": "yes" if d.get("human_override") else "",
        "Idea": d.get("trade_idea_id") or fmt.DASH,
    } for d in decisions]


def decision_label(d: Mapping[str, Any]) -> str:
    """One line naming a decision in the replay picker."""
    return (f"{fmt.utc_text(d['occurred_at'], seconds=True)} · {fmt.action_text(d['action'])}"
            f" · {d.get('symbol') or fmt.DASH}")


def _filters() -> tuple[str | None, str | None, int]:
    symbol_col, action_col, limit_col = st.columns([2, 2, 1])
    symbol = symbol_col.text_input("Symbol", key="history_symbol",
                                   placeholder="all symbols, e.g. XAUUSD").strip().upper()
    action = action_col.selectbox("Action", [ALL, *fmt.ACTIONS], key="history_action",
                                  format_func=lambda a: a if a == ALL else fmt.action_text(a))
    limit = limit_col.selectbox("Rows", [50, 100, 500], key="history_limit")
    return symbol or None, None if action == ALL else action, int(limit)


def render() -> None:
    """The decision history screen."""
    st.title("Decision history")
    symbol, action, limit = _filters()
    filters = (symbol, action, limit)
    if st.session_state.get(PAGES, (None, []))[0] != filters:
        st.session_state[PAGES] = (filters, [None])  # new filters: back to the first page
    cursors: list[str | None] = st.session_state[PAGES][1]
    with state.panel("load the decision history"):
        rows, next_cursor = state.client().history(symbol=symbol, action=action, limit=limit,
                                                   cursor=cursors[-1])
        st.caption(f"Newest first · page {len(cursors)} · {len(rows)} decisions")
        if not rows:
            st.info("No decisions match these filters.")
            return
        st.dataframe(decision_rows(rows), hide_index=True)
        back, more, _ = st.columns([1, 1, 4])
        if back.button("Newer", disabled=len(cursors) == 1, key="history_newer"):
            cursors.pop()
            st.rerun()
        if more.button("Older", disabled=next_cursor is None, key="history_older"):
            cursors.append(next_cursor)
            st.rerun()
        st.subheader("Snapshot replay")
        by_label = {decision_label(d): d for d in rows}
        chosen = st.selectbox("Decision", list(by_label), key="history_replay")
        if chosen:
            with st.container(border=True):
                replay.replay(by_label[chosen]["id"])


if __name__ == "__main__":
    render()
