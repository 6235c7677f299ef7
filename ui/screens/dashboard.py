"""Dashboard: the account, today's P/L against the target, watched symbols, open positions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from ui import fmt, state


def position_rows(positions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The open positions table."""
    return [{
        "Ticket": p.get("ticket"),
        "Symbol": p.get("symbol"),
        "Direction": fmt.direction_text(p.get("direction")),
        "Volume": fmt.number(p.get("volume"), 2),
        "Entry": fmt.price(p.get("entry_price")),
        "SL": fmt.price(p.get("stop_loss")),
        "TP": ", ".join(fmt.price(t) for t in p.get("take_profit") or []) or fmt.DASH,
        "Open P/L": fmt.signed_money(p.get("unrealized_pl")),
        "Opened (UTC)": fmt.utc_text(p.get("opened_at")),
    } for p in positions]


def watched_rows(indicators: Sequence[Mapping[str, Any]],
                 watchlist: Sequence[str]) -> list[dict[str, Any]]:
    """Spread, ATR and % move today of the watched symbols (all symbols without a list)."""
    wanted = set(watchlist)
    return [{
        "Symbol": row["symbol"],
        "Timeframe": row["timeframe"],
        "Price": fmt.price(row.get("close")),
        "Spread": fmt.price(row.get("spread"), row.get("close")),
        "ATR": fmt.price(row.get("atr"), row.get("close")),
        "% move today": fmt.pct(row.get("pct_move_today"), signed=True),
        "Candle (UTC)": fmt.utc_text(row.get("open_time")),
    } for row in indicators if not wanted or row["symbol"] in wanted]


def daily_target_text(account: Mapping[str, Any]) -> str:
    """`+75.00 of 2,000.00 target (3.8%)`, or the P/L alone without a target."""
    pl, target = account.get("daily_pl"), account.get("daily_profit_target")
    if not target:
        return f"{fmt.signed_money(pl)} today (no daily target set)"
    share = fmt.ratio_pct(float(pl or 0) / float(target))
    return f"{fmt.signed_money(pl)} of {fmt.money(target)} target ({share})"


def _account(account: Mapping[str, Any]) -> None:
    cols = st.columns(5)
    cols[0].metric("Balance", fmt.money(account["balance"]))
    cols[1].metric("Equity", fmt.money(account["equity"]))
    cols[2].metric("Margin available", fmt.money(account["margin_free"]))
    cols[3].metric("Open P/L", fmt.signed_money(account["open_pl"]))
    cols[4].metric("Open positions", str(account["open_positions"]))
    st.markdown("**Daily P/L vs target**")
    done = fmt.progress(float(account.get("daily_pl") or 0), account.get("daily_profit_target"))
    st.progress(done or 0.0, text=daily_target_text(account))
    captured = fmt.when(account.get("captured_at"))
    age = (datetime.now(UTC) - captured).total_seconds() if captured else None
    st.caption(f"Account {account['account']} on {account['broker']} · snapshot "
               f"{fmt.utc_text(captured, seconds=True)} ({fmt.age_text(age)} ago)")
    st.subheader("Open positions")
    rows = position_rows(account.get("positions") or [])
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.caption("No open positions.")


def _live() -> None:
    with state.panel("load the account"):
        account = state.read_or_none("/v1/account")
        if account is None:
            st.info("No account snapshot yet: the broker service publishes one every "
                    "ACCOUNT_SNAPSHOT_INTERVAL_SECONDS (Settings → Accounts → Refresh).")
        else:
            _account(account)
    st.subheader("Watched symbols")
    with state.panel("load the watched symbols"):
        risk = state.read_or_none("/v1/settings/risk") or {}
        rows = watched_rows(state.read("/v1/data/indicators"), risk.get("watchlist") or [])
        if rows:
            st.dataframe(rows, hide_index=True)
        else:
            st.caption("No indicators yet for the watched symbols.")


def render() -> None:
    """The dashboard (refreshes itself)."""
    st.title("Dashboard")
    state.live("dashboard", _live)


if __name__ == "__main__":
    render()
