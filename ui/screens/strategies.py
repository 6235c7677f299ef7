"""Strategies: each one's rules, an ON/OFF switch, and an editor for its rule JSON.

The editor validates with the same JSON Schema and rules the gate uses
(`streams.core.strategy`) before anything is sent; every problem is listed with its
JSON path. Saving and switching go through the API (a signed command to the gate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import streamlit as st

from streams.core.strategy import StrategyError, parse_strategy_json
from ui import fmt, state
from ui.api_client import ApiError

#: Fields of `GET /v1/strategies` that are state, not part of the definition one edits.
STATE_FIELDS = ("definition_hash", "updated_by", "updated_at")
NOTES = "strategy_notes"


def editable(strategy: Mapping[str, Any]) -> dict[str, Any]:
    """The definition to edit: the API's strategy without its state fields and nulls."""
    return {k: v for k, v in strategy.items() if k not in STATE_FIELDS and v is not None}


def validate(text: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """(definition, []) when the JSON is a valid strategy, else (None, [(path, message)])."""
    try:
        return parse_strategy_json(text).definition(), []
    except StrategyError as exc:
        return None, list(exc.errors)


def session_text(windows: list[Mapping[str, Any]]) -> str:
    """`London morning 07:00Z–11:00Z Mon–Fri`, one per line."""
    out = []
    for w in windows:
        days = w.get("days") or []
        span = f"{days[0]}–{days[-1]}" if len(days) > 2 else ", ".join(days)
        tz = f" ({w['tz']})" if w.get("tz") else ""
        out.append(f"{w.get('name', 'session')} {w.get('start')}–{w.get('end')} {span}{tz}")
    return "; ".join(out) or fmt.DASH


def _note(strategy_id: str, kind: str, text: str) -> None:
    notes: dict[str, tuple[str, str]] = st.session_state.setdefault(NOTES, {})
    notes[strategy_id] = (kind, text)


def _on_toggle(strategy_id: str, key: str) -> None:
    """Called once when the user flips the switch (not on every rerun)."""
    active = bool(st.session_state[key])
    try:
        answer = state.client().set_strategy_active(strategy_id, active)
    except ApiError as err:
        _note(strategy_id, "error", fmt.error_text(err, "switch the strategy"))
        st.session_state[key] = not active  # show the state the gate still has
        return
    _note(strategy_id, "success", f"Strategy switched {'ON' if active else 'OFF'} "
                                  f"(version {answer.get('version')}).")
    state.changed()


def _errors(errors: list[tuple[str, str]]) -> None:
    st.error(f"The definition is not valid ({len(errors)} problem"
             f"{'' if len(errors) == 1 else 's'}):", icon=":material/error:")
    st.dataframe([{"JSON path": path, "Problem": message} for path, message in errors],
                 hide_index=True)


def _save(strategy_id: str, text: str) -> None:
    definition, errors = validate(text)
    if definition is None:
        _errors(errors)
        return
    if definition.get("id") != strategy_id:
        _errors([("$.id", f"must stay {strategy_id} (create a new strategy with "
                          "`ai-trader strategy apply FILE`)")])
        return
    try:
        answer = state.client().put_strategy(strategy_id, definition)
    except ApiError as err:
        state.show_error(err, "save the strategy")
        return
    _note(strategy_id, "success", f"Saved: version {answer.get('version')}, hash "
                                  f"{str(answer.get('definition_hash') or '')[:12]}.")
    state.changed()
    st.rerun()


def _editor(strategy: Mapping[str, Any]) -> None:
    ident = strategy["id"]
    key = f"json-{ident}-{strategy.get('definition_hash')}"
    text = st.text_area("Rule JSON", value=json.dumps(editable(strategy), indent=2),
                        height=420, key=key)
    check, save, _ = st.columns([1, 1, 4])
    if check.button("Validate", key=f"validate-{ident}", icon=":material/fact_check:"):
        definition, errors = validate(text)
        if definition is None:
            _errors(errors)
        else:
            st.success("Valid: the gate will accept this definition.")
    if save.button("Save", key=f"save-{ident}", type="primary", icon=":material/save:"):
        _save(ident, text)


def _rules(strategy: Mapping[str, Any]) -> None:
    st.dataframe([{
        "Allowed symbols": ", ".join(strategy.get("allowed_symbols") or []),
        "Timeframes": ", ".join(strategy.get("timeframes") or []) or fmt.DASH,
        "Sessions": session_text(strategy.get("session_windows") or []),
        "RR expectation": strategy.get("rr_expectation"),
    }], hide_index=True)
    caps, forbidden = st.columns(2)
    caps.markdown("**Risk caps**\n\n" + fmt.bullets(strategy.get("risk_caps") or {}))
    forbidden.markdown("**Forbidden conditions**\n\n"
                       + fmt.bullets(strategy.get("forbidden_conditions") or {}))
    entry, exits = st.columns(2)
    entry.markdown("**Entry conditions**\n\n"
                   + fmt.bullets(strategy.get("entry_conditions") or {}))
    exits.markdown("**Exit rules**\n\n" + fmt.bullets(strategy.get("exit_rules") or {}))


def _show(kind: str, text: str) -> None:
    (st.success if kind == "success" else st.error)(text)


def _strategy(strategy: Mapping[str, Any]) -> None:
    ident = strategy["id"]
    with st.container(border=True):
        title, switch = st.columns([5, 1], vertical_alignment="center")
        title.markdown(f"**{fmt.escape(strategy['name'])}** · version {strategy['version']} · "
                       f"`{ident}`")
        key = f"active-{ident}-{strategy['version']}-{strategy['is_active']}"
        switch.toggle("ON" if strategy["is_active"] else "OFF", value=bool(strategy["is_active"]),
                      key=key, on_change=_on_toggle, args=(ident, key))
        note = (st.session_state.get(NOTES) or {}).get(ident)
        if note:
            _show(*note)
        _rules(strategy)
        if st.toggle("Edit rule JSON", key=f"edit-{ident}"):
            _editor(strategy)


def render() -> None:
    """The strategies screen."""
    st.title("Strategies")
    st.caption("The AI only proposes trades that match at least one strategy that is ON.")
    with state.panel("load the strategies"):
        strategies = state.read("/v1/strategies")
        if not strategies:
            st.info("No strategies yet: the gate seeds them from strategies/*.json at start.")
        for strategy in strategies:
            _strategy(strategy)


if __name__ == "__main__":
    render()
