"""Third Party & Data: economic calendar, market news, RSS feeds, indicators, feed health."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from ui import fmt, state
from ui.api_client import ApiError

HIGH_STYLE = "background-color: #5b1d1d; color: #ffecec; font-weight: 600"


def calendar_frame(events: Sequence[Mapping[str, Any]], tz: str | None) -> pd.DataFrame:
    """The calendar table: time in UTC and in the viewer's zone, HIGH impact spelled out."""
    return pd.DataFrame([{
        "Time (UTC)": fmt.utc_text(e["event_time"]),
        f"Local ({fmt.zone(tz).key})": fmt.local_text(e["event_time"], tz),
        "Currency": e.get("currency"),
        "Impact": fmt.impact_text(e.get("impact_level")),
        "Event": e.get("title"),
        "Previous": e.get("previous_value") or fmt.DASH,
        "Forecast": e.get("forecast_value") or fmt.DASH,
        "Actual": e.get("actual_value") or fmt.DASH,
    } for e in events])


def highlight_high(frame: pd.DataFrame) -> Any:
    """A Styler that paints the high-impact rows."""
    def paint(row: pd.Series) -> list[str]:
        return [HIGH_STYLE if row["Impact"] == "HIGH" else ""] * len(row)
    return frame.style.apply(paint, axis=1)


def news_rows(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Market news: time, headline, the symbols and currencies it was tagged with."""
    return [{
        "Published (UTC)": fmt.utc_text(n["published_at"]),
        "Headline": n.get("headline"),
        "Relevance": ", ".join([*n.get("symbols", []), *n.get("currencies", [])]) or fmt.DASH,
        "Source": n.get("source"),
    } for n in items]


def rss_rows(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """RSS view: time, source, headline, link."""
    return [{
        "Published (UTC)": fmt.utc_text(n["published_at"]),
        "Source": n.get("source"),
        "Headline": n.get("headline"),
        "Link": n.get("url"),
    } for n in items]


def indicator_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The latest RSI / SMA / MACD / ATR per symbol and timeframe."""
    out = []
    for r in rows:
        macd = r.get("macd") or {}
        out.append({
            "Symbol": r["symbol"], "Timeframe": r["timeframe"],
            "Candle (UTC)": fmt.utc_text(r.get("open_time")), "Close": fmt.price(r.get("close")),
            "RSI 14": fmt.number(r.get("rsi_14"), 1), "SMA 50": fmt.price(r.get("sma_50")),
            "SMA 200": fmt.price(r.get("sma_200")),
            "MACD": fmt.number(macd.get("macd", macd.get("value")), 5),
            "MACD signal": fmt.number(macd.get("signal"), 5),
            "ATR": fmt.price(r.get("atr"), r.get("close")),
            "% move today": fmt.pct(r.get("pct_move_today"), signed=True),
            "Spread": fmt.price(r.get("spread"), r.get("close")),
        })
    return out


def health_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per dependency of `GET /v1/health`."""
    return [{"Check": name, "Status": check.get("status"),
             "Detail": check.get("detail") or "", "Age": fmt.age_text(check.get("age_seconds"))}
            for name, check in (report.get("checks") or {}).items()]


def _calendar() -> None:
    events = state.read("/v1/data/calendar")
    if not events:
        st.caption("No releases from a day ago to a week ahead.")
        return
    high = sum(1 for e in events if fmt.is_high_impact(e.get("impact_level")))
    if high:
        st.badge(f"{high} high-impact release{'s' if high > 1 else ''}", color="red",
                 icon=":material/priority_high:")
    st.dataframe(highlight_high(calendar_frame(events, state.local_zone())), hide_index=True)


def _news() -> None:
    items = state.read("/v1/data/news")
    if items:
        st.dataframe(news_rows(items), hide_index=True)
    else:
        st.caption("No headlines in the last two days.")


def _rss() -> None:
    items = state.read("/v1/data/news", limit=300)
    sources = sorted({n["source"] for n in items})
    chosen = st.selectbox("Feed", ["All feeds", *sources], key="rss_source")
    shown = [n for n in items if chosen in ("All feeds", n["source"])]
    if shown:
        st.dataframe(rss_rows(shown), hide_index=True,
                     column_config={"Link": st.column_config.LinkColumn("Link")})
    else:
        st.caption("No feed items in the last two days.")


def _indicators() -> None:
    rows = indicator_rows(state.read("/v1/data/indicators"))
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.caption("No indicators computed yet.")


def _health() -> None:
    try:
        report = state.read("/v1/health")
    except ApiError as err:
        if err.status != 503:
            raise
        st.error(f"A dependency is down: {err.message}", icon=":material/error:")
        report = err.details
    st.dataframe(health_rows(report), hide_index=True)


def render() -> None:
    """The data screen: one tab per source."""
    st.title("Third Party & Data")
    tabs = st.tabs(["Economic Calendar", "Market News", "RSS Feeds", "Indicators",
                    "Feed health"])
    panels = [_calendar, _news, _rss, _indicators, _health]
    for tab, panel in zip(tabs, panels, strict=True):
        with tab:
            state.live(f"data{panel.__name__}", panel)


if __name__ == "__main__":
    render()
