"""Records the decision core passes around: ideas, account, positions, calendar, risk config.

Every record is a frozen dataclass with `to_dict()` / `from_dict()` producing plain
JSON-able dicts (decimals as strings, datetimes as ISO 8601 with offset), so a Faust
table, a changelog or a snapshot bundle can hold them and give back equal records.

Money and lots are `decimal.Decimal`:

- `money()` quantizes to cents (half-even), so P/L sums never drift.
- Lot sizes are compared on the broker's lot step (`LOT_STEP` = 0.01). Float noise is
  first stripped (to 1e-8), then a *requested* lot is rounded **up** to the step and a
  *cap* rounded **down** (`lots_requested`, `lots_cap`): 0.1 + 0.2 counts as 0.30 and
  passes a 0.30 cap, while 0.301 counts as 0.31 and fails it. Sizing a new idea rounds
  down (`lots_floor`).

No function here reads a clock; every time is an input and must be timezone-aware.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal

Direction = Literal["buy", "sell"]
DIRECTIONS: tuple[Direction, ...] = ("buy", "sell")

LOT_STEP = Decimal("0.01")
CENT = Decimal("0.01")
_NOISE = Decimal("1e-8")

# Currencies an economic calendar normally covers; a stale calendar blacks these out.
MAJOR_CURRENCIES: frozenset[str] = frozenset(
    {"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "CNY"}
)


# --------------------------------------------------------------------------- numbers


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """Exact decimal of a number as written: floats go through their shortest repr.

    So `0.1` becomes `Decimal("0.1")`, not the 55-digit binary expansion. Booleans,
    NaN and infinities are refused with `ValueError` (a bool is not a quantity).
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, float):
            result = Decimal(repr(value))
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, str):
            result = Decimal(value.strip())
        else:
            raise ValueError(f"not a number: {value!r}")
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def money(value: Decimal | float | int | str) -> Decimal:
    """An amount of account currency, in cents (half-even rounding)."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _denoise(value: Decimal | float | int | str) -> Decimal:
    return to_decimal(value).quantize(_NOISE, rounding=ROUND_HALF_EVEN)


def lots_requested(value: Decimal | float | int | str) -> Decimal:
    """A lot size someone wants to trade, rounded *up* to the lot step for cap checks."""
    return _denoise(value).quantize(LOT_STEP, rounding=ROUND_CEILING)


def lots_cap(value: Decimal | float | int | str) -> Decimal:
    """A lot cap, rounded *down* to the lot step: a cap never allows more than written."""
    return _denoise(value).quantize(LOT_STEP, rounding=ROUND_FLOOR)


def lots_floor(value: Decimal | float | int | str) -> Decimal:
    """A lot size we choose ourselves (sizing), rounded down to the lot step."""
    return lots_cap(value)


def finite(value: float | None) -> float | None:
    """`value` if it is a finite number, else None (NaN and infinities count as missing)."""
    return value if value is not None and math.isfinite(value) else None


def fmt_decimal(value: Decimal) -> str:
    """Fixed-point text of a decimal (no exponent), for rationales and JSON."""
    return format(value, "f")


def fmt_money(value: Decimal) -> str:
    """An amount as fixed-point text in cents, so text -> `money()` -> text is stable."""
    return fmt_decimal(money(value))


def fmt_price(value: float) -> str:
    """A price or indicator value as short, deterministic text (6 significant digits)."""
    return f"{value:.6g}"


# ----------------------------------------------------------------------------- times


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` if it carries a timezone; a naive time is a programming error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def parse_time(value: str | datetime) -> datetime:
    """An aware datetime from ISO 8601 text (a trailing `Z` is UTC)."""
    if isinstance(value, datetime):
        return require_aware(value, "datetime")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return require_aware(datetime.fromisoformat(text), "datetime")


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else parse_time(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _direction(value: str) -> Direction:
    if value not in DIRECTIONS:
        raise ValueError(f"direction must be buy or sell, got {value!r}")
    return value


# ----------------------------------------------------------------------------- ideas


@dataclass(frozen=True, slots=True)
class TradeIdea:
    """A trade a strategy proposes, before the gate decides on it.

    `idea_id` is deterministic (strategy id + symbol + timeframe + candle open time), so
    re-processing the same candle yields the same id; it is also the idempotency key of
    any order the idea leads to. `created_at` is the candle's close, the event time of
    the decision.
    """

    idea_id: str
    symbol: str
    timeframe: str
    direction: Direction
    entry_price: float
    stop_loss: float
    take_profit: tuple[float, ...]
    lot_size: Decimal
    expected_hold: str
    time_limit_minutes: int
    strategy_id: str
    strategy_version: int
    strategy_hash: str
    rationale_bullets: tuple[str, ...]
    created_at: datetime
    candle_open_time: datetime
    snapshot_ref: str | None = None

    @property
    def rationale(self) -> str:
        """The bullets as one deterministic plain-English paragraph."""
        return "; ".join(self.rationale_bullets) + "."

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "idea_id": self.idea_id,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "direction": self.direction,
            "entry_price": self.entry_price,
            "stop_loss": self.stop_loss,
            "take_profit": list(self.take_profit),
            "lot_size": fmt_decimal(self.lot_size),
            "expected_hold": self.expected_hold,
            "time_limit_minutes": self.time_limit_minutes,
            "strategy_id": self.strategy_id,
            "strategy_version": self.strategy_version,
            "strategy_hash": self.strategy_hash,
            "rationale_bullets": list(self.rationale_bullets),
            "created_at": self.created_at.isoformat(),
            "candle_open_time": self.candle_open_time.isoformat(),
            "snapshot_ref": self.snapshot_ref,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TradeIdea:
        """Inverse of `to_dict`."""
        return cls(
            idea_id=str(data["idea_id"]),
            symbol=str(data["symbol"]),
            timeframe=str(data["timeframe"]),
            direction=_direction(data["direction"]),
            entry_price=float(data["entry_price"]),
            stop_loss=float(data["stop_loss"]),
            take_profit=tuple(float(v) for v in data["take_profit"]),
            lot_size=to_decimal(data["lot_size"]),
            expected_hold=str(data["expected_hold"]),
            time_limit_minutes=int(data["time_limit_minutes"]),
            strategy_id=str(data["strategy_id"]),
            strategy_version=int(data["strategy_version"]),
            strategy_hash=str(data["strategy_hash"]),
            rationale_bullets=tuple(str(v) for v in data["rationale_bullets"]),
            created_at=parse_time(data["created_at"]),
            candle_open_time=parse_time(data["candle_open_time"]),
            snapshot_ref=data.get("snapshot_ref"),
        )


# -------------------------------------------------------------------- account, positions


@dataclass(frozen=True, slots=True)
class Position:
    """One open position, or a pending one the gate has just sent for execution.

    `position_id` is the broker ticket once filled; while `pending` it is the idea id, so
    a concurrency check counts an order in flight before the broker reports it.
    """

    position_id: str
    symbol: str
    direction: Direction
    lots: Decimal
    opened_at: datetime
    idea_id: str | None = None
    strategy_id: str | None = None
    pending: bool = False
    unrealized_pl: Decimal = Decimal("0.00")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "position_id": self.position_id,
            "symbol": self.symbol,
            "direction": self.direction,
            "lots": fmt_decimal(self.lots),
            "opened_at": self.opened_at.isoformat(),
            "idea_id": self.idea_id,
            "strategy_id": self.strategy_id,
            "pending": self.pending,
            "unrealized_pl": fmt_money(self.unrealized_pl),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Position:
        """Inverse of `to_dict`."""
        return cls(
            position_id=str(data["position_id"]),
            symbol=str(data["symbol"]),
            direction=_direction(data["direction"]),
            lots=to_decimal(data["lots"]),
            opened_at=parse_time(data["opened_at"]),
            idea_id=data.get("idea_id"),
            strategy_id=data.get("strategy_id"),
            pending=bool(data.get("pending", False)),
            unrealized_pl=money(data.get("unrealized_pl", "0")),
        )


@dataclass(frozen=True, slots=True)
class AccountState:
    """The broker account as read at `captured_at`.

    `reconciled` is False until the executor has reconciled with the broker after a
    start; the gate opens nothing new until then.
    """

    balance: Decimal
    equity: Decimal
    margin_used: Decimal
    margin_free: Decimal
    open_pl: Decimal
    captured_at: datetime
    realized_pl_today: Decimal = Decimal("0.00")
    positions: tuple[Position, ...] = ()
    currency: str = "USD"
    reconciled: bool = True

    def __post_init__(self) -> None:
        require_aware(self.captured_at, "captured_at")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "balance": fmt_money(self.balance),
            "equity": fmt_money(self.equity),
            "margin_used": fmt_money(self.margin_used),
            "margin_free": fmt_money(self.margin_free),
            "open_pl": fmt_money(self.open_pl),
            "captured_at": self.captured_at.isoformat(),
            "realized_pl_today": fmt_money(self.realized_pl_today),
            "positions": [p.to_dict() for p in self.positions],
            "currency": self.currency,
            "reconciled": self.reconciled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountState:
        """Inverse of `to_dict`; amounts may be numbers or decimal strings."""
        return cls(
            balance=money(data["balance"]),
            equity=money(data["equity"]),
            margin_used=money(data["margin_used"]),
            margin_free=money(data["margin_free"]),
            open_pl=money(data["open_pl"]),
            captured_at=parse_time(data["captured_at"]),
            realized_pl_today=money(data.get("realized_pl_today", "0")),
            positions=tuple(Position.from_dict(p) for p in data.get("positions", ())),
            currency=str(data.get("currency", "USD")),
            reconciled=bool(data.get("reconciled", True)),
        )


# -------------------------------------------------------------------------- calendar


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One scheduled macro release. `all_day` events have no exact time (see calendar.py)."""

    event_id: str
    currency: str
    impact: str  # high, medium, low or holiday
    title: str
    event_time: datetime
    all_day: bool = False

    def __post_init__(self) -> None:
        require_aware(self.event_time, "event_time")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "event_id": self.event_id,
            "currency": self.currency,
            "impact": self.impact,
            "title": self.title,
            "event_time": self.event_time.isoformat(),
            "all_day": self.all_day,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalendarEvent:
        """Inverse of `to_dict`."""
        return cls(
            event_id=str(data["event_id"]),
            currency=str(data["currency"]).upper(),
            impact=str(data["impact"]).lower(),
            title=str(data["title"]),
            event_time=parse_time(data["event_time"]),
            all_day=bool(data.get("all_day", False)),
        )


@dataclass(frozen=True, slots=True)
class CalendarStatus:
    """What the core knows about the economic calendar at a decision.

    `last_success_at` is when the calendar feed last succeeded (None = never): older
    than the configured age, the currencies it covers are treated as blacked out.
    """

    events: tuple[CalendarEvent, ...] = ()
    last_success_at: datetime | None = None
    covered_currencies: frozenset[str] = MAJOR_CURRENCIES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "events": [e.to_dict() for e in self.events],
            "last_success_at": _iso(self.last_success_at),
            "covered_currencies": sorted(self.covered_currencies),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalendarStatus:
        """Inverse of `to_dict`."""
        covered = data.get("covered_currencies")
        return cls(
            events=tuple(CalendarEvent.from_dict(e) for e in data.get("events", ())),
            last_success_at=_opt_time(data.get("last_success_at")),
            covered_currencies=(
                MAJOR_CURRENCIES if covered is None else frozenset(str(c) for c in covered)
            ),
        )


# ----------------------------------------------------------------------- risk config


DEFAULT_APPROVAL_TTL = timedelta(minutes=15)
DEFAULT_CALENDAR_MAX_AGE = timedelta(hours=1)
DEFAULT_ACCOUNT_MAX_AGE = timedelta(minutes=2)


def _minutes(value: timedelta) -> int | float:
    minutes = value.total_seconds() / 60
    return int(minutes) if minutes.is_integer() else minutes


def _parse_clock(value: str) -> time:
    text = value.strip().removesuffix("Z")
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """The global AI control panel (blueprint §5.1.2 risk_config) plus the gate's settings.

    `ai_trading_enabled` and `last_halt_reason` are owned by the gate's state machine
    (`GateState`); everything else is a limit a human sets. Ages and TTLs are
    timedeltas; the trading day starts at `trading_day_start` in `trading_day_tz`
    (default 22:00 UTC, the forex convention). A profit target of None means no target.
    """

    max_lot_size: Decimal
    max_concurrent_trades: int
    daily_profit_target: Decimal | None
    max_drawdown_amount: Decimal
    ai_trading_enabled: bool = False
    min_confidence_threshold: Decimal = Decimal("90.00")
    stop_after_target: bool = True
    halt_on_drawdown: bool = True
    allow_off_watchlist_autotrade: bool = False
    last_halt_reason: str | None = None
    watchlist: frozenset[str] = frozenset()
    weekly_profit_target: Decimal | None = None
    approval_ttl: timedelta = DEFAULT_APPROVAL_TTL
    calendar_max_age: timedelta = DEFAULT_CALENDAR_MAX_AGE
    account_max_age: timedelta = DEFAULT_ACCOUNT_MAX_AGE
    trading_day_start: time = time(22, 0)
    trading_day_tz: str = "UTC"

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid risk config: " + "; ".join(problems))

    def _problems(self) -> Iterable[str]:
        if not Decimal(0) <= self.min_confidence_threshold <= Decimal(100):
            yield "min_confidence_threshold must be within 0..100"
        if self.max_lot_size <= 0:
            yield "max_lot_size must be positive"
        if self.max_concurrent_trades < 0:
            yield "max_concurrent_trades must not be negative"
        if self.max_drawdown_amount <= 0:
            yield "max_drawdown_amount must be positive"
        for name in ("daily_profit_target", "weekly_profit_target"):
            target = getattr(self, name)
            if target is not None and target <= 0:
                yield f"{name} must be positive or null"
        for name in ("approval_ttl", "calendar_max_age", "account_max_age"):
            if getattr(self, name) <= timedelta(0):
                yield f"{name} must be positive"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the `config_json` of RiskConfigState)."""
        return {
            "ai_trading_enabled": self.ai_trading_enabled,
            "min_confidence_threshold": fmt_decimal(self.min_confidence_threshold),
            "max_lot_size": fmt_decimal(self.max_lot_size),
            "max_concurrent_trades": self.max_concurrent_trades,
            "daily_profit_target": _opt_money_text(self.daily_profit_target),
            "stop_after_target": self.stop_after_target,
            "max_drawdown_amount": fmt_money(self.max_drawdown_amount),
            "halt_on_drawdown": self.halt_on_drawdown,
            "allow_off_watchlist_autotrade": self.allow_off_watchlist_autotrade,
            "last_halt_reason": self.last_halt_reason,
            "watchlist": sorted(self.watchlist),
            "weekly_profit_target": _opt_money_text(self.weekly_profit_target),
            "approval_ttl_minutes": _minutes(self.approval_ttl),
            "calendar_max_age_minutes": _minutes(self.calendar_max_age),
            "account_max_age_minutes": _minutes(self.account_max_age),
            "trading_day_start": self.trading_day_start.strftime("%H:%M"),
            "trading_day_tz": self.trading_day_tz,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskConfig:
        """Build from the settings API / `to_dict` shape; missing optional keys get defaults."""
        return cls(
            max_lot_size=to_decimal(data["max_lot_size"]),
            max_concurrent_trades=int(data["max_concurrent_trades"]),
            daily_profit_target=_opt_money(data.get("daily_profit_target")),
            max_drawdown_amount=money(data["max_drawdown_amount"]),
            ai_trading_enabled=bool(data.get("ai_trading_enabled", False)),
            min_confidence_threshold=to_decimal(data.get("min_confidence_threshold", "90")),
            stop_after_target=bool(data.get("stop_after_target", True)),
            halt_on_drawdown=bool(data.get("halt_on_drawdown", True)),
            allow_off_watchlist_autotrade=bool(data.get("allow_off_watchlist_autotrade", False)),
            last_halt_reason=data.get("last_halt_reason"),
            watchlist=frozenset(str(s) for s in data.get("watchlist", ())),
            weekly_profit_target=_opt_money(data.get("weekly_profit_target")),
            approval_ttl=_opt_minutes(data.get("approval_ttl_minutes"), DEFAULT_APPROVAL_TTL),
            calendar_max_age=_opt_minutes(
                data.get("calendar_max_age_minutes"), DEFAULT_CALENDAR_MAX_AGE
            ),
            account_max_age=_opt_minutes(
                data.get("account_max_age_minutes"), DEFAULT_ACCOUNT_MAX_AGE
            ),
            trading_day_start=_parse_clock(str(data.get("trading_day_start", "22:00"))),
            trading_day_tz=str(data.get("trading_day_tz", "UTC")),
        )


def _opt_money_text(value: Decimal | None) -> str | None:
    return None if value is None else fmt_money(value)


def _opt_money(value: Any) -> Decimal | None:
    return None if value is None else money(value)


def _opt_minutes(value: Any, default: timedelta) -> timedelta:
    return default if value is None else timedelta(minutes=float(value))


# ---------------------------------------------------------------------- kill switch


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """The emergency stop: while active nothing new is opened, not even on approval."""

    active: bool = False
    by: str | None = None
    at: datetime | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"active": self.active, "by": self.by, "at": _iso(self.at), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KillSwitch:
        """Inverse of `to_dict`."""
        return cls(
            active=bool(data.get("active", False)),
            by=data.get("by"),
            at=_opt_time(data.get("at")),
            reason=data.get("reason"),
        )


@dataclass(frozen=True, slots=True)
class Approval:
    """A human's approval of an idea waiting for it; `lot_size` None keeps the idea's lots."""

    idea_id: str
    by: str
    lot_size: Decimal | None = None
    command_id: str | None = None


__all__ = [
    "CENT",
    "DIRECTIONS",
    "LOT_STEP",
    "MAJOR_CURRENCIES",
    "AccountState",
    "Approval",
    "CalendarEvent",
    "CalendarStatus",
    "Direction",
    "KillSwitch",
    "Position",
    "RiskConfig",
    "TradeIdea",
    "finite",
    "fmt_decimal",
    "fmt_money",
    "fmt_price",
    "lots_cap",
    "lots_floor",
    "lots_requested",
    "money",
    "parse_time",
    "require_aware",
    "to_decimal",
]
