"""Analysis & Performance: P/L, win rate, average RR and weekly progress for a range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import altair as alt
import streamlit as st

from ui import fmt, state

RANGES = {"Today": "today", "This week": "week", "This month": "month", "Custom": "custom"}


def trade_rows(trades: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The closed trades table."""
    return [{
        "Closed by (UTC)": fmt.utc_text(t.get("last_seen_at")),
        "Ticket": t.get("ticket"),
        "Symbol": t.get("symbol"),
        "Direction": fmt.direction_text(t.get("direction")),
        "Volume": t.get("volume"),
        "P/L": fmt.signed_money(t.get("pl")),
        "RR": fmt.number(t.get("rr"), 2),
        "Idea": t.get("idea_id") or fmt.DASH,
    } for t in trades]


def pl_points(daily: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Daily P/L and its running total, for the chart."""
    total = 0.0
    out = []
    for day in daily:
        total += float(day["pl"])
        at = fmt.when(day["day"])
        out.append({"day": at.strftime("%Y-%m-%d") if at else str(day["day"]),
                    "P/L": float(day["pl"]), "Cumulative P/L": round(total, 2)})
    return out


def pl_chart(points: list[dict[str, Any]]) -> alt.LayerChart | alt.FacetChart:
    """Bars of each day's P/L (green up, red down) under the cumulative line."""
    base = alt.Chart(alt.Data(values=points))
    day = alt.X("day:O", title="Day (UTC)", axis=alt.Axis(labelAngle=0))
    bars = base.mark_bar().encode(
        x=day, y=alt.Y("P/L:Q", title="P/L"),
        color=alt.condition("datum['P/L'] >= 0", alt.value("#2e7d32"), alt.value("#c62828")),
        tooltip=["day:O", "P/L:Q", "Cumulative P/L:Q"])
    line = base.mark_line(point=True, color="#90caf9").encode(x=day, y="Cumulative P/L:Q")
    return alt.layer(bars, line)


def _custom_window() -> tuple[str | None, str | None]:
    today = datetime.now(UTC).date()
    start_col, end_col = st.columns(2)
    start: date = start_col.date_input("From (UTC)", value=today - timedelta(days=30),
                                       key="analysis_from")
    end: date = end_col.date_input("To (UTC, inclusive)", value=today, key="analysis_to")
    if end < start:
        st.error("“To” must not be before “From”.")
        return None, None
    since = datetime.combine(start, time(0), UTC)
    until = datetime.combine(end + timedelta(days=1), time(0), UTC)
    return since.isoformat(), until.isoformat()


def _cards(data: Mapping[str, Any]) -> None:
    cols = st.columns(4)
    cols[0].metric("Total P/L", fmt.signed_money(data.get("total_pl")))
    cols[1].metric("Win rate", fmt.ratio_pct(data.get("win_rate")),
                   help=f"{data.get('wins', 0)} won, {data.get('losses', 0)} lost of "
                        f"{data.get('trades', 0)} closed trades")
    cols[2].metric("Average RR", fmt.number(data.get("avg_rr"), 2))
    target = data.get("weekly_target")
    cols[3].metric("This week", fmt.signed_money(data.get("weekly_pl")),
                   help=f"target {fmt.money(target)} / week" if target else "no weekly target")
    done = fmt.progress(data.get("weekly_pl"), target)
    text = (f"Weekly progress: {fmt.signed_money(data.get('weekly_pl'))} of "
            f"{fmt.money(target)} ({fmt.ratio_pct(data.get('weekly_progress'))})"
            if target else "Weekly progress: no weekly target set")
    st.progress(done or 0.0, text=text)


def render() -> None:
    """The analysis screen."""
    st.title("Analysis & Performance")
    label = st.segmented_control("Range", list(RANGES), default="Today", key="analysis_range")
    name = RANGES.get(label or "Today", "today")
    since = until = None
    if name == "custom":
        since, until = _custom_window()
        if since is None:
            return
    with state.panel("load the analysis"):
        data = state.read("/v1/analysis", range=name, since=since, until=until)
        st.caption(f"{fmt.utc_text(data['since'])} → {fmt.utc_text(data['until'])}")
        _cards(data)
        st.subheader("P/L over time")
        points = pl_points(data.get("daily") or [])
        if points:
            st.altair_chart(pl_chart(points))
        else:
            st.caption("No account snapshots in this range.")
        st.subheader("Closed trades")
        trades = trade_rows(data.get("closed_trades") or [])
        if trades:
            st.dataframe(trades, hide_index=True)
        else:
            st.caption("No trades closed in this range.")


if __name__ == "__main__":
    render()
