"""Avro records (as decoded by topics.codec) to and from the decision core's types.

Pure mapping, no I/O: the Faust agents, replay and backtest all read the bus's records
through these functions, so a bundle read back years later becomes exactly the inputs
the core saw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from streams.core.market import Candle, IndicatorValues
from streams.core.model import (
    AccountState,
    CalendarEvent,
    CalendarStatus,
    Position,
    TradeIdea,
    to_decimal,
)

Record = dict[str, Any]
_INDICATOR_FIELDS = tuple(f.name for f in fields(IndicatorValues))
CENT = Decimal("0.01")


def candle(record: Mapping[str, Any]) -> Candle:
    """A market.candles record as a core candle (validation happens in the engine)."""
    return Candle(
        symbol=record["symbol"], timeframe=record["timeframe"], open_time=record["open_time"],
        open=record["open"], high=record["high"], low=record["low"], close=record["close"],
        volume=int(record.get("volume") or 0), spread=float(record.get("spread") or 0.0),
    )


def indicators_record(
    values: IndicatorValues, partition: int | None, offset: int | None
) -> Record:
    """An IndicatorSnapshot record, with where its input candle came from."""
    out: Record = {name: getattr(values, name) for name in _INDICATOR_FIELDS}
    out["input_partition"] = partition
    out["input_offset"] = offset
    return out


def indicators(record: Mapping[str, Any]) -> IndicatorValues:
    """An IndicatorSnapshot record as core indicator values."""
    values: dict[str, Any] = {name: record.get(name) for name in _INDICATOR_FIELDS}
    return IndicatorValues(**values)


def position(record: Mapping[str, Any]) -> Position:
    """An account Position record as a core position (the ticket is its id)."""
    return Position(
        position_id=str(record["ticket"]), symbol=record["symbol"],
        direction=record["direction"], lots=to_decimal(record["volume"]),
        opened_at=record["opened_at"], idea_id=record.get("idea_id"),
        strategy_id=record.get("strategy_id"),
        unrealized_pl=to_decimal(record.get("unrealized_pl") or 0).quantize(CENT),
    )


def account(record: Mapping[str, Any]) -> AccountState:
    """An AccountState record as the core's account."""
    return AccountState(
        balance=to_decimal(record["balance"]), equity=to_decimal(record["equity"]),
        margin_used=to_decimal(record["margin_used"]),
        margin_free=to_decimal(record["margin_free"]),
        open_pl=to_decimal(record["open_pl"]), captured_at=record["captured_at"],
        realized_pl_today=to_decimal(record["realized_pl_today"]),
        positions=tuple(position(p) for p in record.get("positions") or ()),
        currency=record.get("currency") or "USD", reconciled=bool(record["reconciled"]),
    )


def calendar_event(record: Mapping[str, Any]) -> CalendarEvent:
    """A calendar.events record as a core event (impact lower-cased)."""
    return CalendarEvent(
        event_id=record["event_id"], currency=record["currency"].upper(),
        impact=record["impact"].lower(), title=record["title"],
        event_time=record["event_time"], all_day=bool(record.get("all_day")),
    )


def calendar(
    records: Iterable[Mapping[str, Any]], last_success: datetime | None
) -> CalendarStatus:
    """The calendar the core sees: the events and when the feed last succeeded."""
    return CalendarStatus(
        events=tuple(calendar_event(r) for r in records), last_success_at=last_success
    )


def idea_record(
    idea: TradeIdea, account_id: str, confidence: Decimal, confidence_json: str,
    expires_at: datetime | None = None,
) -> Record:
    """A gate.TradeIdea record for a core idea."""
    return {
        "idea_id": idea.idea_id, "account": account_id, "symbol": idea.symbol,
        "timeframe": idea.timeframe, "direction": idea.direction,
        "entry_price": idea.entry_price, "entry_low": None, "entry_high": None,
        "stop_loss": idea.stop_loss, "take_profit": list(idea.take_profit),
        "lot_size": idea.lot_size.quantize(CENT), "expected_hold": idea.expected_hold,
        "strategy_id": idea.strategy_id, "strategy_version": idea.strategy_version,
        "strategy_hash": idea.strategy_hash, "rationale": idea.rationale,
        "rationale_bullets": list(idea.rationale_bullets),
        "confidence": confidence.quantize(CENT), "confidence_json": confidence_json,
        "snapshot_id": idea.snapshot_ref or "", "created_at": idea.created_at,
        "expires_at": expires_at,
    }


def canonical(obj: Any) -> str:
    """Sorted-key, no-whitespace JSON (decimals and times as text)."""
    return _CANONICAL(obj)


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON-able: {type(value).__name__}")


# what json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_text) makes, without
# building an encoder per call
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_text).encode
