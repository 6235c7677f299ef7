"""The snapshot replay view (§6.5): what a decision saw, exactly as it was frozen.

Indicators, the candle, calendar events, the account, headlines, the rationale and the
strategy (id, version and hash) at the moment of the decision, from
`GET /v1/ai/history/{id}/snapshot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from ui import fmt, state
from ui.api_client import ApiError

INDICATOR_NAMES = {
    "rsi_14": "RSI 14", "sma_50": "SMA 50", "sma_200": "SMA 200", "macd": "MACD",
    "macd_signal": "MACD signal", "macd_hist": "MACD histogram", "atr": "ATR 14",
    "pct_move_today": "% move today", "swing_high": "Swing high", "swing_low": "Swing low",
    "spread": "Spread",
}


def indicator_rows(indicators: Mapping[str, Any]) -> list[dict[str, str]]:
    """The indicator values in reading order, `—` for those not computed yet."""
    return [{"Indicator": label, "Value": fmt.number(indicators.get(key), 5)}
            for key, label in INDICATOR_NAMES.items() if key in indicators]


def calendar_rows(events: list[Mapping[str, Any]], tz: str | None) -> list[dict[str, str]]:
    """Calendar events as the decision saw them (minutes until release at that moment)."""
    return [{
        "Time (UTC)": fmt.utc_text(e.get("event_time")),
        "Local": fmt.local_text(e.get("event_time"), tz),
        "Currency": str(e.get("currency", "")),
        "Impact": fmt.impact_text(e.get("impact_level")),
        "Event": str(e.get("title", "")),
        "Release": fmt.minutes_until(e.get("minutes_until_release")),
    } for e in events]


def strategy_text(strategy: Mapping[str, Any] | None) -> str:
    """`Gold Pullback Buy (s-1, version 1, hash abc…)`."""
    if not strategy:
        return fmt.DASH
    name = strategy.get("name") or strategy.get("id")
    digest = str(strategy.get("definition_hash") or "")[:12]
    version = strategy.get("version")
    parts = [str(strategy.get("id"))]
    if version is not None:
        parts.append(f"version {version}")
    if digest:
        parts.append(f"hash {digest}")
    return f"{name} ({', '.join(parts)})"


def show_snapshot(snap: Mapping[str, Any]) -> None:
    """Render one §6.5 snapshot."""
    market = snap.get("market") or {}
    price = market.get("price") or {}
    st.markdown(f"**{fmt.escape(str(market.get('symbol')))} {market.get('timeframe')}** · "
                f"captured {fmt.utc_text(snap.get('captured_at'), seconds=True)} · candle "
                f"{fmt.utc_text(market.get('open_time'))}")
    st.markdown("**Rationale**")
    st.markdown(fmt.escape(str(snap.get("rationale") or fmt.DASH)))
    st.markdown(f"**Strategy:** {fmt.escape(strategy_text(snap.get('strategy')))}")
    left, right = st.columns(2)
    with left:
        st.markdown("**Candle**")
        st.dataframe([{k.capitalize(): price.get(k) for k in ("open", "high", "low", "close")}],
                     hide_index=True)
        st.markdown("**Indicators**")
        st.dataframe(indicator_rows(market.get("indicators") or {}), hide_index=True)
    with right:
        account = snap.get("account")
        st.markdown("**Account**")
        if account:
            st.dataframe([{"Balance": fmt.money(account.get("balance")),
                           "Equity": fmt.money(account.get("equity")),
                           "Margin free": fmt.money(account.get("margin_free")),
                           "Open positions": account.get("open_positions")}], hide_index=True)
        else:
            st.caption("No account state in the snapshot.")
        st.markdown("**Calendar**")
        events = calendar_rows(snap.get("calendar") or [], state.local_zone())
        if events:
            st.dataframe(events, hide_index=True)
        else:
            st.caption("No calendar events in the window.")
    news = snap.get("news") or []
    if news:
        st.markdown("**Headlines**")
        st.dataframe([{"Published (UTC)": fmt.utc_text(n.get("published_at")),
                       "Source": n.get("source"), "Headline": n.get("headline")}
                      for n in news], hide_index=True)


def replay(decision_id: str) -> None:
    """Fetch and render the snapshot of a decision; a readable note when there is none."""
    try:
        snap = state.read(f"/v1/ai/history/{decision_id}/snapshot")
    except ApiError as err:
        if err.status == 404:
            st.info(f"No snapshot to replay: {err.message}.")
            return
        raise
    show_snapshot(snap)
