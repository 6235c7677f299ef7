"""A snapshot bundle (as the sinks stored its decoded record) in the shape of §6.5.

The bundle's JSON comes from the Avro record, so times may be ISO text or epoch
micros and decimals may be text or numbers; both are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from api.models import (
    AccountSnapOut,
    CalendarSnapOut,
    MarketOut,
    NewsSnapOut,
    PriceOut,
    SnapshotOut,
    StrategyRefOut,
)

INDICATORS = ("rsi_14", "sma_50", "sma_200", "macd", "macd_signal", "macd_hist", "atr_14",
              "pct_move_today", "swing_high", "swing_low", "spread")


def number(value: Any) -> float | None:
    """A float from a number, a decimal string or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        return float(Decimal(str(value)))
    except ArithmeticError:
        return None


def when(value: Any) -> datetime | None:
    """An aware datetime from ISO text, epoch micros/millis/seconds or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1e6 if abs(value) > 1e14 else value / 1e3 if abs(value) > 1e11 \
            else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _calendar(events: Any, captured: datetime | None) -> list[CalendarSnapOut]:
    out = []
    for event in events if isinstance(events, list) else []:
        at = when(event.get("event_time"))
        if at is None:
            continue
        minutes = int((at - captured).total_seconds() // 60) if captured else 0
        out.append(CalendarSnapOut(
            event_time=at, currency=str(event.get("currency", "")),
            impact_level=str(event.get("impact", event.get("impact_level", ""))),
            title=str(event.get("title", "")), minutes_until_release=minutes))
    return sorted(out, key=lambda e: e.event_time)


def _account(state: Any) -> AccountSnapOut | None:
    state = _mapping(state)
    if not state:
        return None
    positions = state.get("positions")
    return AccountSnapOut(
        balance=number(state.get("balance")) or 0.0, equity=number(state.get("equity")) or 0.0,
        margin_free=number(state.get("margin_free")) or 0.0,
        open_positions=len(positions) if isinstance(positions, list)
        else int(state.get("open_positions") or 0))


def _strategy(bundle: Mapping[str, Any], row: Mapping[str, Any]) -> StrategyRefOut:
    name = None
    try:
        name = json.loads(bundle.get("strategy_json") or "{}").get("name")
    except (ValueError, AttributeError):
        name = None
    return StrategyRefOut(id=str(row.get("strategy_id") or bundle.get("strategy_id")),
                          version=row.get("strategy_version") or bundle.get("strategy_version"),
                          definition_hash=row.get("strategy_hash") or bundle.get("strategy_hash"),
                          name=name)


def snapshot_view(row: Mapping[str, Any], decision: Mapping[str, Any]) -> SnapshotOut:
    """§6.5 from a `snapshot_bundles` row and the decision that references it."""
    bundle = _mapping(row.get("bundle"))
    candle = _mapping(bundle.get("candle"))
    indicators = _mapping(bundle.get("indicators"))
    captured = when(bundle.get("captured_at")) or when(row.get("captured_at"))
    values = {name: number(indicators.get(name)) for name in INDICATORS}
    values["atr"] = values.pop("atr_14")
    market = MarketOut(
        symbol=str(bundle.get("symbol") or row.get("symbol")),
        timeframe=str(bundle.get("timeframe") or row.get("timeframe")),
        open_time=when(candle.get("open_time")),
        price=PriceOut(open=number(candle.get("open")) or 0.0,
                       high=number(candle.get("high")) or 0.0,
                       low=number(candle.get("low")) or 0.0,
                       close=number(candle.get("close")) or 0.0),
        indicators=values)
    news = [NewsSnapOut(headline=str(n.get("headline", "")), source=str(n.get("source", "")),
                        published_at=when(n.get("published_at")))
            for n in bundle.get("news") or [] if isinstance(n, Mapping)]
    return SnapshotOut(
        snapshot_id=str(row["snapshot_id"]), captured_at=captured,
        decision_id=str(decision["id"]), rationale=str(decision.get("rationale") or ""),
        market=market, calendar=_calendar(bundle.get("calendar"), captured),
        account=_account(bundle.get("account_state")), news=news,
        strategy=_strategy(bundle, row))
