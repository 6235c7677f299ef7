"""Topic-level rules a record must meet beyond its Avro schema.

Avro says a price is a double; these say it is a finite positive one. They are
deterministic (no clock): a timestamp is rejected when it lies outside a fixed
sane range, not relative to "now", so replaying old topics gives the same result.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from topics.codec import InvalidRecord

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIMEFRAMES = frozenset({"M1", "M5", "M15", "M30", "H1", "H4", "D1"})
DIRECTIONS = frozenset({"buy", "sell"})
IMPACTS = frozenset({"high", "medium", "low", "holiday"})
MAX_TEXT = 64 * 1024

Record = dict[str, Any]
_CONTROL = re.compile(r"[\x00-\x1f]")


def _fail(message: str) -> None:
    raise InvalidRecord(message)


def require_text(record: Record, *names: str) -> None:
    """Identifiers must be non-empty, short enough, and free of control characters."""
    for name in names:
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            _fail(f"{name} is empty")
        elif len(value) > 256 or _CONTROL.search(value):
            _fail(f"{name} is not a valid identifier: {value[:40]!r}")


def require_finite(record: Record, names: Iterable[str], *, positive: bool = False) -> None:
    """Numbers must be finite (no NaN, no infinity); prices must also be > 0."""
    for name in names:
        value = record.get(name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            _fail(f"{name} is not finite: {value!r}")
        if isinstance(value, Decimal) and not value.is_finite():
            _fail(f"{name} is not finite: {value!r}")
        if positive and value <= 0:
            _fail(f"{name} must be positive: {value!r}")


def require_time(record: Record, *names: str) -> None:
    """Timestamps must be timezone-aware and lie in a sane, fixed range (a naive one
    would be written as the machine's local time)."""
    for name in names:
        value = record.get(name)
        if value is None:
            continue
        if isinstance(value, datetime) and value.tzinfo is None:
            _fail(f"{name} has no timezone: {value!r}")
        if not isinstance(value, datetime) or not EARLIEST <= value < LATEST:
            _fail(f"{name} is outside {EARLIEST.year}-{LATEST.year}: {value!r}")


def require_word(record: Record, name: str, allowed: frozenset[str]) -> None:
    """A field holding one word of a closed vocabulary."""
    if record.get(name) not in allowed:
        _fail(f"{name} must be one of {sorted(allowed)}, got {record.get(name)!r}")


def require_text_size(record: Record, *names: str) -> None:
    """Free text must stay below a size that could flood the sinks or the UI."""
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            _fail(f"{name} is longer than {MAX_TEXT} characters")


def candle(record: Record) -> None:
    """A bar: known timeframe, finite positive prices, high >= low, open/close inside."""
    require_text(record, "symbol")
    require_word(record, "timeframe", TIMEFRAMES)
    require_time(record, "open_time")
    # One chained comparison accepts exactly the bars `candle_rules` accepts (NaN and
    # infinities fail it); only a bar it refuses pays for the rule-by-rule message.
    low, high, spread = record["low"], record["high"], record.get("spread", 0.0)
    if not (0 < low <= record["open"] <= high < math.inf and low <= record["close"] <= high
            and 0 <= spread < math.inf and record["volume"] >= 0):
        candle_rules(record)


def candle_rules(record: Record) -> None:
    """The price rules of `candle` one by one, naming the first one broken."""
    require_finite(record, ("open", "high", "low", "close"), positive=True)
    require_finite(record, ("spread",))
    if record.get("spread", 0.0) < 0:
        _fail("spread is negative")
    if record["volume"] < 0:
        _fail("volume is negative")
    if record["high"] < record["low"]:
        _fail(f"high {record['high']} < low {record['low']}")
    for name in ("open", "close"):
        if not record["low"] <= record[name] <= record["high"]:
            _fail(f"{name} {record[name]} outside the high-low range")


def indicator_snapshot(record: Record) -> None:
    """Indicator values: finite or null."""
    require_text(record, "symbol")
    require_word(record, "timeframe", TIMEFRAMES)
    require_time(record, "open_time")
    numbers = [k for k, v in record.items() if isinstance(v, float)]
    require_finite(record, numbers)


def calendar_event(record: Record) -> None:
    """A calendar release: a currency code, a known impact, a sane time."""
    require_text(record, "event_id", "currency", "title", "source")
    require_word(record, "impact", IMPACTS)
    require_time(record, "event_time", "captured_at")
    require_finite(record, ("previous", "forecast", "actual"))
    require_text_size(record, "title", "previous_raw", "forecast_raw", "actual_raw")


def news_item(record: Record) -> None:
    """A headline: an id, a source, a non-empty headline of sane size."""
    require_text(record, "item_id", "source")
    if not record.get("headline", "").strip():
        _fail("headline is empty")
    require_text_size(record, "headline", "summary", "url")
    require_time(record, "published_at", "captured_at")


def account_state(record: Record) -> None:
    """An account: finite money, margin never negative, every position well-formed."""
    require_text(record, "account", "broker")
    require_time(record, "captured_at")
    require_finite(record, ("balance", "equity", "margin_used", "margin_free", "open_pl"))
    for position in record.get("positions", ()):
        require_word(position, "direction", DIRECTIONS)
        require_finite(position, ("entry_price",), positive=True)
        require_finite(position, ("volume",), positive=True)


def trade_idea(record: Record) -> None:
    """An idea: a direction, finite prices, a positive lot size, confidence 0-100."""
    require_text(record, "idea_id", "account", "symbol", "strategy_id", "snapshot_id")
    require_word(record, "direction", DIRECTIONS)
    require_word(record, "timeframe", TIMEFRAMES)
    require_finite(record, ("entry_price", "stop_loss"), positive=True)
    require_finite(record, ("lot_size",), positive=True)
    for tp in record.get("take_profit", ()):
        if not math.isfinite(tp) or tp <= 0:
            _fail(f"take_profit {tp!r} is not a positive finite price")
    if not Decimal(0) <= record["confidence"] <= Decimal(100):
        _fail(f"confidence {record['confidence']} outside 0-100")
    require_time(record, "created_at", "expires_at")


def control_command(record: Record) -> None:
    """A command: identified, issued by someone, signed (the gate verifies the signature)."""
    require_text(record, "command_id", "kind", "account", "issuer")
    require_time(record, "issued_at")
    if not record.get("signature"):
        _fail("command is not signed")
    require_text_size(record, "payload_json", "reason")


def gate_inbox(record: Record) -> None:
    """Exactly one of idea (with its bundle) or command."""
    has_idea, has_command = record.get("idea") is not None, record.get("command") is not None
    if has_idea == has_command:
        _fail("a gate message carries exactly one of idea or command")
    if has_idea:
        if record.get("bundle") is None:
            _fail("an idea reaches the gate with its snapshot bundle")
        trade_idea(record["idea"])
    else:
        control_command(record["command"])


def order_request(record: Record) -> None:
    """An order: the idea id as its key, positive lots, finite prices."""
    require_text(record, "request_id", "idea_id", "account", "symbol")
    require_word(record, "direction", DIRECTIONS)
    require_finite(record, ("lot_size", "stop_loss"), positive=True)
    require_finite(record, ("price",), positive=True)
    require_time(record, "requested_at", "expires_at")


def with_times(*names: str) -> Callable[[Record], None]:
    """A validator that only checks the record's timestamps (for audit/state records)."""

    def check(record: Record) -> None:
        require_time(record, *names)

    return check
