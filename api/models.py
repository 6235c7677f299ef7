"""Typed request and response bodies of the REST API (blueprint §6).

Requests refuse unknown fields (`extra="forbid"`), booleans and integers are strict
(`"true"` or `1` is not a boolean), numbers are finite, and amounts have at most two
decimals (a value the database would round is refused, never rounded silently).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from streams.core.calendar import InvalidTimezone, zone

SYMBOL_PATTERN = r"^[A-Za-z0-9#][A-Za-z0-9._#+-]{0,31}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

Action = Literal["ai_proposed", "ai_auto_executed", "human_approved", "human_rejected",
                 "risk_rejected", "ai_halted", "ai_resumed"]
IdeaStatus = Literal["waiting", "needs_approval", "approved", "auto_executed", "rejected",
                     "halted_by_risk", "expired", "executed", "execution_failed"]
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
#: Free text: PostgreSQL (and JSONB) cannot store NUL, so it is refused at the edge.
NO_NUL = r"^[^\x00]*$"


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        raise ValueError("must be an ISO 8601 date-time with a timezone")
    return value


#: An ISO 8601 date-time with an offset (pydantic would also take epoch numbers).
IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


def _two_decimals(value: float) -> float:
    exponent = Decimal(repr(value)).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("at most two decimals")
    return value


Amount = Annotated[float, Field(strict=True, gt=0, le=1e12, allow_inf_nan=False),
                   AfterValidator(_two_decimals)]
Lots = Annotated[float, Field(strict=True, gt=0, le=100_000, allow_inf_nan=False),
                 AfterValidator(_two_decimals)]


class Strict(BaseModel):
    """Request bodies: unknown fields refused."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------- auth


class LoginIn(Strict):
    """POST /auth/login."""

    email: Annotated[str, Field(min_length=3, max_length=254, pattern=NO_NUL)]
    password: Annotated[str, Field(min_length=1, max_length=1024, pattern=NO_NUL)]


class UserOut(BaseModel):
    """The logged-in user."""

    id: str
    email: str
    role: str = "owner"


class LoginOut(BaseModel):
    """§6.1 response."""

    status: Literal["ok"] = "ok"
    user: UserOut


class StatusOut(BaseModel):
    """A plain acknowledgement."""

    status: Literal["ok"] = "ok"


# ------------------------------------------------------------------------------- risk


class KillSwitchOut(BaseModel):
    """The kill switch as the gate holds it."""

    active: bool = False
    by: str | None = None
    at: datetime | None = None
    reason: str | None = None


class RiskOut(BaseModel):
    """§6.2 GET /settings/risk, plus the gate's extra settings, the kill switch and version."""

    ai_trading_enabled: bool
    min_confidence_threshold: float
    max_lot_size: float
    max_concurrent_trades: int
    daily_profit_target: float | None
    stop_after_target: bool
    max_drawdown_amount: float
    halt_on_drawdown: bool
    allow_off_watchlist_autotrade: bool
    last_halt_reason: str | None
    watchlist: list[str] = Field(default_factory=list)
    weekly_profit_target: float | None = None
    approval_ttl_minutes: float | None = None
    calendar_max_age_minutes: float | None = None
    account_max_age_minutes: float | None = None
    trading_day_start: str | None = None
    trading_day_tz: str | None = None
    kill_switch: KillSwitchOut = Field(default_factory=KillSwitchOut)
    version: int
    config_hash: str
    updated_by: str | None = None
    updated_at: datetime | None = None


def _clock(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError("must be HH:MM (24h)")
    return value


def _tz(value: str) -> str:
    try:
        zone(value)
    except InvalidTimezone as exc:
        raise ValueError(str(exc)) from exc
    return value


class RiskIn(Strict):
    """§6.2 PUT /settings/risk (validated per §7.5). The blueprint's nine fields are
    required; the gate's extra settings are optional and keep their value when omitted."""

    ai_trading_enabled: StrictBool
    min_confidence_threshold: Annotated[float, Field(strict=True, ge=0, le=100,
                                                     allow_inf_nan=False),
                                        AfterValidator(_two_decimals)]
    max_lot_size: Lots
    max_concurrent_trades: Annotated[StrictInt, Field(ge=0, le=1000)]
    daily_profit_target: Amount | None
    stop_after_target: StrictBool
    max_drawdown_amount: Amount
    halt_on_drawdown: StrictBool
    allow_off_watchlist_autotrade: StrictBool
    watchlist: Annotated[list[Symbol], Field(max_length=500)] | None = None
    weekly_profit_target: Amount | None = None
    approval_ttl_minutes: Annotated[StrictInt, Field(ge=1, le=1440)] | None = None
    calendar_max_age_minutes: Annotated[StrictInt, Field(ge=1, le=10_080)] | None = None
    account_max_age_minutes: Annotated[StrictInt, Field(ge=1, le=1440)] | None = None
    trading_day_start: Annotated[str, Field(max_length=5), AfterValidator(_clock)] | None = None
    trading_day_tz: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL),
                              AfterValidator(_tz)] | None = None

    @field_validator("watchlist")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("symbols must be unique")
        return value


class RiskPutOut(BaseModel):
    """The gate applied the new configuration."""

    status: Literal["ok"] = "ok"
    config_hash: str | None = None
    version: int | None = None


# ------------------------------------------------------------------------- strategies


class StrategyOut(BaseModel):
    """§6.3: a strategy definition with its state."""

    id: str
    name: str
    version: int
    is_active: bool
    allowed_symbols: list[str]
    timeframes: list[str] | None = None
    session_windows: list[dict[str, Any]]
    entry_conditions: dict[str, Any]
    exit_rules: dict[str, Any]
    forbidden_conditions: dict[str, Any]
    risk_caps: dict[str, Any]
    rr_expectation: float
    approval_ttl_minutes: int | None = None
    definition_hash: str
    updated_by: str | None = None
    updated_at: datetime | None = None


class StrategyActivation(Strict):
    """PUT /strategies/{id} with only `is_active`: switch a strategy on or off."""

    is_active: StrictBool


class StrategyPutOut(BaseModel):
    """The gate applied the strategy."""

    status: Literal["ok"] = "ok"
    strategy_id: str
    version: int | None = None
    definition_hash: str | None = None
    is_active: bool | None = None


# ------------------------------------------------------------------------------ ideas


class IdeaOut(BaseModel):
    """§6.4 an active trade idea."""

    id: str
    symbol: str
    timeframe: str
    direction: Literal["buy", "sell"]
    entry_price: float | None
    stop_loss: float
    take_profit: list[float]
    lot_size: float
    expected_hold: str | None
    rationale: str
    confidence_score: float
    status: str
    status_reason: str | None = None
    strategy_id: str
    snapshot_ref: str
    created_at: datetime
    expires_at: datetime | None = None


class ApproveIn(Strict):
    """§6.4 approve body: an optional lot size (default: the idea's own)."""

    lot_size: Lots | None = None


class RejectIn(Strict):
    """Reject body: an optional reason for the audit log."""

    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)] | None = None


class ApproveOut(BaseModel):
    """§6.4: `executed` with the MT5 order id, or `blocked` with the reason."""

    status: Literal["executed", "blocked"]
    mt5_order_id: int | None = None
    reason: str | None = None


class RejectOut(BaseModel):
    """The idea is rejected by a human."""

    status: Literal["rejected"] = "rejected"
    idea_id: str
    decision_id: str | None = None


class KillIn(Strict):
    """Engage the kill switch."""

    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]


class ResumeIn(Strict):
    """Release the kill switch / resume after a halt."""

    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)] | None = None


class ControlOut(BaseModel):
    """The gate's state after a kill / resume."""

    status: Literal["ok"] = "ok"
    decision_id: str | None = None
    ai_trading_enabled: bool | None = None
    kill_switch: KillSwitchOut | None = None


# ---------------------------------------------------------------------------- history


class DecisionOut(BaseModel):
    """§6.5 one decision-history entry."""

    id: str
    occurred_at: datetime
    symbol: str | None
    action: str
    outcome: str | None = None
    rationale: str
    confidence_score: float | None
    risk_check_result: str | None
    strategy_id: str | None
    trade_idea_id: str | None
    snapshot_ref: str | None
    human_override: bool
    issuer: str | None = None


class PriceOut(BaseModel):
    """OHLC of the candle decided on."""

    open: float
    high: float
    low: float
    close: float


class MarketOut(BaseModel):
    """§6.5 market block."""

    symbol: str
    timeframe: str
    open_time: datetime | None = None
    price: PriceOut
    indicators: dict[str, float | None]


class CalendarSnapOut(BaseModel):
    """§6.5 one calendar event as seen at the decision."""

    event_time: datetime
    currency: str
    impact_level: str
    title: str
    minutes_until_release: int


class AccountSnapOut(BaseModel):
    """§6.5 account block."""

    balance: float
    equity: float
    margin_free: float
    open_positions: int


class NewsSnapOut(BaseModel):
    """A headline the decision saw."""

    headline: str
    source: str
    published_at: datetime | None = None


class StrategyRefOut(BaseModel):
    """Which strategy (and exact version) triggered the idea."""

    id: str
    version: int | None = None
    definition_hash: str | None = None
    name: str | None = None


class SnapshotOut(BaseModel):
    """§6.5 the world state at a decision."""

    snapshot_id: str
    captured_at: datetime | None = None
    decision_id: str
    rationale: str
    market: MarketOut
    calendar: list[CalendarSnapOut]
    account: AccountSnapOut | None
    news: list[NewsSnapOut] = Field(default_factory=list)
    strategy: StrategyRefOut | None = None


# ---------------------------------------------------------------------------- account


class PositionOut(BaseModel):
    """An open position."""

    ticket: int | None = None
    symbol: str
    direction: str
    volume: float | None = None
    entry_price: float | None = None
    stop_loss: float | None = None
    take_profit: list[float] = Field(default_factory=list)
    unrealized_pl: float | None = None
    opened_at: datetime | None = None
    idea_id: str | None = None
    strategy_id: str | None = None


class AccountOut(BaseModel):
    """The dashboard summary (§4.1)."""

    account: str
    broker: str
    balance: float
    equity: float
    margin_used: float
    margin_free: float
    open_pl: float
    realized_pl_today: float
    daily_pl: float
    daily_profit_target: float | None
    open_positions: int
    positions: list[PositionOut]
    ai_trading_enabled: bool | None
    captured_at: datetime


class EquityPointOut(BaseModel):
    """One account snapshot."""

    captured_at: datetime
    balance: float
    equity: float
    open_pl: float
    realized_pl_today: float
    open_positions: int


class OrderOut(BaseModel):
    """What the broker did with one order."""

    request_id: str
    idea_id: str
    status: str
    broker: str
    mt5_order_id: int | None
    symbol: str | None
    direction: str | None
    lot_size: float | None
    filled_price: float | None
    filled_volume: float | None
    error_code: str | None
    message: str
    human_override: bool | None
    executed_at: datetime


class AccountHistoryOut(BaseModel):
    """Orders and account snapshots in a time range, newest first."""

    since: datetime
    until: datetime
    orders: list[OrderOut]
    equity: list[EquityPointOut]


class TradeOut(BaseModel):
    """A position closed within the range."""

    ticket: str
    symbol: str | None
    direction: str | None
    volume: float | None
    pl: float
    rr: float | None
    idea_id: str | None
    last_seen_at: datetime


class DailyPlOut(BaseModel):
    """P/L of one UTC day."""

    day: datetime
    pl: float
    balance: float


class AnalysisOut(BaseModel):
    """§4.1 analysis cards for a range."""

    range: str
    since: datetime
    until: datetime
    total_pl: float | None
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    avg_rr: float | None
    weekly_pl: float | None
    weekly_target: float | None
    weekly_progress: float | None
    daily: list[DailyPlOut]
    closed_trades: list[TradeOut]


# ------------------------------------------------------------------------------- data


class CalendarOut(BaseModel):
    """One economic release."""

    event_id: str
    event_time: datetime
    currency: str
    impact_level: str
    title: str
    previous_value: str | None
    forecast_value: str | None
    actual_value: str | None
    all_day: bool
    source: str
    captured_at: datetime


class NewsOut(BaseModel):
    """One headline."""

    item_id: str
    headline: str
    source: str
    url: str | None
    summary: str | None
    symbols: list[str]
    currencies: list[str]
    published_at: datetime


class CandleOut(BaseModel):
    """One candle with the indicators computed on it."""

    symbol: str
    timeframe: str
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    spread: float
    sma_50: float | None
    sma_200: float | None
    rsi_14: float | None


class IndicatorOut(BaseModel):
    """The latest indicators of a symbol and timeframe."""

    symbol: str
    timeframe: str
    open_time: datetime
    close: float
    rsi_14: float | None
    sma_50: float | None
    sma_200: float | None
    macd: dict[str, Any] | None
    atr: float | None
    pct_move_today: float | None
    spread: float | None
    captured_at: datetime


# --------------------------------------------------------------------------- system


class AiTestOut(BaseModel):
    """§6.7: `ok` / `AI online`, or `error` with a human message (never a raw HTTP code)."""

    status: Literal["ok", "error"]
    message: str


class CheckOut(BaseModel):
    """One dependency's health."""

    status: Literal["ok", "degraded", "error", "unknown"]
    detail: str | None = None
    age_seconds: float | None = None


class HealthOut(BaseModel):
    """GET /health: overall status and each dependency (no secrets)."""

    status: Literal["ok", "degraded", "error"]
    checks: dict[str, CheckOut]


class RefreshOut(BaseModel):
    """The refresh command was published to the broker service."""

    status: Literal["sent"] = "sent"
    command_id: str
