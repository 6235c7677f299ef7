"""Price chart per symbol: candles with SMA 50/200, and markers for ideas and trades.

Candles come from `GET /v1/data/candles?symbol&timeframe&limit` (each candle with the
indicators computed on it). While the API does not serve that series, the chart shows
the ideas and the trades on their own, with the latest SMAs as levels, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt
import streamlit as st

from ui import fmt, state
from ui.api_client import ApiError

UP, DOWN = "#26a69a", "#ef5350"
#: times on the x axis in UTC, 24-hour clock
TIME = alt.X("time:T", title="Time (UTC)", scale=alt.Scale(type="utc"),
             axis=alt.Axis(format="%d %b %H:%M", labelAngle=0))
PRICE = alt.Y("price:Q", title="Price", scale=alt.Scale(zero=False))


def candle_points(candles: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Candles as chart rows (ISO times, floats, up/down)."""
    out = []
    for c in candles:
        at = fmt.when(c.get("open_time"))
        if at is None:
            continue
        o, h, low, close = (float(c[k]) for k in ("open", "high", "low", "close"))
        out.append({"time": at.isoformat(), "open": o, "high": h, "low": low, "close": close,
                    "up": close >= o, "sma_50": c.get("sma_50"), "sma_200": c.get("sma_200")})
    return out


def idea_markers(ideas: Sequence[Mapping[str, Any]], symbol: str) -> list[dict[str, Any]]:
    """One marker per idea of `symbol` at its entry price and creation time."""
    out = []
    for i in ideas:
        at = fmt.when(i.get("created_at"))
        if i["symbol"] != symbol or i.get("entry_price") is None or at is None:
            continue
        out.append({"time": at.isoformat(), "price": float(i["entry_price"]),
                    "kind": f"idea {fmt.direction_text(i['direction'])}",
                    "label": f"{fmt.idea_status(i['status']).label} · "
                             f"confidence {fmt.pct(i.get('confidence_score'), 1)}"})
    return out


def trade_markers(orders: Sequence[Mapping[str, Any]], symbol: str) -> list[dict[str, Any]]:
    """One marker per filled order of `symbol` at its fill price and time."""
    out = []
    for o in orders:
        at = fmt.when(o.get("executed_at"))
        if o.get("symbol") != symbol or o.get("filled_price") is None or at is None:
            continue
        out.append({"time": at.isoformat(), "price": float(o["filled_price"]),
                    "kind": f"trade {fmt.direction_text(o.get('direction'))}",
                    "label": f"order {o.get('mt5_order_id')} · {o.get('status')} · lot "
                             f"{fmt.number(o.get('lot_size'), 2)}"})
    return out


def _levels(levels: Mapping[str, float | None]) -> list[alt.Chart]:
    out = []
    for name, value in levels.items():
        if value is None:
            continue
        out.append(alt.Chart(alt.Data(values=[{"level": float(value), "name": name}]))
                   .mark_rule(strokeDash=[4, 4], color="#b0bec5")
                   .encode(y=alt.Y("level:Q", title="Price"), tooltip=["name:N", "level:Q"]))
    return out


def price_chart(candles: list[dict[str, Any]], markers: list[dict[str, Any]],
                levels: Mapping[str, float | None]) -> alt.LayerChart | alt.FacetChart:
    """Candles (wick + body), SMA lines, idea/trade markers and horizontal levels."""
    layers: list[Any] = []
    if candles:
        base = alt.Chart(alt.Data(values=candles)).encode(x=TIME)
        color = alt.condition("datum.up", alt.value(UP), alt.value(DOWN))
        layers.append(base.mark_rule().encode(y=alt.Y("low:Q", title="Price",
                                                      scale=alt.Scale(zero=False)),
                                              y2="high:Q", color=color))
        layers.append(base.mark_bar().encode(y="open:Q", y2="close:Q", color=color,
                                             tooltip=["time:T", "open:Q", "high:Q", "low:Q",
                                                      "close:Q"]))
        for name, colour in (("sma_50", "#ffb74d"), ("sma_200", "#ba68c8")):
            if any(c.get(name) is not None for c in candles):
                layers.append(base.mark_line(color=colour).encode(y=f"{name}:Q"))
    if markers:
        layers.append(alt.Chart(alt.Data(values=markers)).mark_point(size=120, filled=True)
                      .encode(x=TIME, y=PRICE, shape=alt.Shape("kind:N", title="Marker"),
                              color=alt.Color("kind:N", title="Marker"),
                              tooltip=["time:T", "price:Q", "kind:N", "label:N"]))
    layers.extend(_levels(levels))
    return alt.layer(*layers).properties(height=420)


def _candles(symbol: str, timeframe: str) -> list[dict[str, Any]] | None:
    """The candle series, or None when the API does not serve one."""
    try:
        rows = state.read("/v1/data/candles", symbol=symbol, timeframe=timeframe, limit=300)
    except ApiError as err:
        if err.status == 404 and err.code == "NOT_FOUND":
            return None
        raise
    return candle_points(rows)


def render() -> None:
    """The chart screen."""
    st.title("Price chart")
    with state.panel("load the chart"):
        latest = state.read("/v1/data/indicators")
        pairs = sorted({(r["symbol"], r["timeframe"]) for r in latest})
        if not pairs:
            st.info("No symbol has indicators yet.")
            return
        symbols = sorted({s for s, _ in pairs})
        col_symbol, col_tf = st.columns(2)
        symbol = col_symbol.selectbox("Symbol", symbols, key="chart_symbol")
        timeframe = col_tf.selectbox("Timeframe", sorted({t for s, t in pairs if s == symbol}),
                                     key="chart_timeframe")
        indicator: dict[str, Any] = next((r for r in latest if (r["symbol"], r["timeframe"])
                          == (symbol, timeframe)), {})
        candles = _candles(symbol, timeframe)
        ideas = state.read("/v1/ai/ideas/active", status=fmt.IDEA_STATUS_FILTER, limit=200)
        since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        orders = state.read("/v1/account/history", since=since).get("orders") or []
        markers = idea_markers(ideas, symbol) + trade_markers(orders, symbol)
        levels = {} if candles else {"SMA 50": indicator.get("sma_50"),
                                     "SMA 200": indicator.get("sma_200")}
        if candles is None:
            st.info("The API serves no candle series yet (GET /v1/data/candles): showing the "
                    "ideas and trades of the last 7 days with the latest SMA 50/200 as levels.")
        if not candles and not markers and not any(levels.values()):
            st.caption("Nothing to draw yet for this symbol.")
            return
        st.altair_chart(price_chart(candles or [], markers, levels))
        close = indicator.get("close")
        st.caption(f"Latest {symbol} {timeframe}: close {fmt.price(close)}"
                   f" · RSI {fmt.number(indicator.get('rsi_14'), 1)} · ATR "
                   f"{fmt.price(indicator.get('atr'), close)} · spread "
                   f"{fmt.price(indicator.get('spread'), close)}")
        if markers:
            st.dataframe([{"Time (UTC)": fmt.utc_text(m["time"]), "Marker": m["kind"],
                           "Price": fmt.price(m["price"]), "What": m["label"]}
                          for m in markers],
                         hide_index=True)


if __name__ == "__main__":
    render()
