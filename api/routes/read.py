"""Read-only views from the sink tables: decision history, snapshots, account, analysis, data."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from api.analysis import analysis
from api.deps import DB, CurrentUser, Svc
from api.errors import ApiError, ErrorCode, responses
from api.models import (
    ID_PATTERN,
    NO_NUL,
    SYMBOL_PATTERN,
    AccountHistoryOut,
    AccountOut,
    Action,
    AnalysisOut,
    CalendarOut,
    CandleOut,
    DecisionOut,
    EquityPointOut,
    IndicatorOut,
    IsoDatetime,
    NewsOut,
    OrderOut,
    PositionOut,
    SnapshotOut,
)
from api.routes import PREFIX
from api.snapshot import snapshot_view
from sinks import queries

router = APIRouter(prefix=PREFIX, tags=["read"])

SymbolQ = Annotated[str | None, Query(pattern=SYMBOL_PATTERN, max_length=32)]
Since = Annotated[IsoDatetime | None, Query(description="ISO 8601 with a timezone")]
NEXT_CURSOR = "X-Next-Cursor"


# ---------------------------------------------------------------------------- history


def encode_cursor(row: dict[str, Any]) -> str:
    """Opaque cursor after `row` (its occurred_at and id)."""
    raw = json.dumps([row["occurred_at"].isoformat(), row["id"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (occurred_at, id) a cursor continues after; 400 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, ident = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(ident, str):
            raise ValueError("bad cursor")
        return when, ident
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "invalid cursor") from exc


@router.get("/ai/history", response_model=list[DecisionOut], responses={
    **responses(), 200: {"description": "decisions, newest first", "headers": {NEXT_CURSOR: {
        "description": "pass as `cursor` for the next page (absent on the last page)",
        "schema": {"type": "string"}}}}})
def history(
    user: CurrentUser, conn: DB, response: Response,
    symbol: SymbolQ = None,
    action: Annotated[Action | None, Query()] = None,
    since: Since = None,
    until: Since = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> list[DecisionOut]:
    """Decision history (§6.5), newest first, filtered; `X-Next-Cursor` continues it."""
    after = decode_cursor(cursor) if cursor else None
    rows = queries.decision_history(conn, symbol=symbol, action=action, since=since,
                                    until=until, after=after, limit=limit)
    if len(rows) == limit:
        response.headers[NEXT_CURSOR] = encode_cursor(rows[-1])
    return [DecisionOut.model_validate(r) for r in rows]


@router.get("/ai/history/{decision_id}/snapshot", response_model=SnapshotOut,
            responses=responses(404))
def snapshot(decision_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=128)],
             user: CurrentUser, conn: DB) -> SnapshotOut:
    """The world state the decision saw (§6.5): market, indicators, calendar, account."""
    decision = queries.decision(conn, decision_id)
    if decision is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no decision {decision_id}")
    if not decision["snapshot_ref"]:
        raise ApiError(404, ErrorCode.SNAPSHOT_NOT_FOUND,
                       f"decision {decision_id} was not made from a snapshot "
                       f"({decision['action']})")
    bundle = queries.snapshot_bundle(conn, decision["snapshot_ref"])
    if bundle is None:
        raise ApiError(404, ErrorCode.SNAPSHOT_NOT_FOUND,
                       f"snapshot {decision['snapshot_ref']} is not stored (yet)",
                       {"snapshot_ref": decision["snapshot_ref"]})
    return snapshot_view(bundle, decision)


# ---------------------------------------------------------------------------- account


def _positions(raw: Any) -> list[PositionOut]:
    out = []
    for p in raw if isinstance(raw, list) else []:
        if isinstance(p, dict):
            out.append(PositionOut.model_validate(p))
    return out


@router.get("/account", response_model=AccountOut, responses=responses(404))
def account(user: CurrentUser, svc: Svc, conn: DB) -> AccountOut:
    """The dashboard summary: balance, equity, margin, open P/L, positions, today vs target."""
    row = queries.latest_account(conn, svc.settings.account)
    if row is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no account snapshot yet")
    risk = queries.risk_config(conn, svc.settings.account)
    config = risk["config"] if risk else {}
    target = config.get("daily_profit_target")
    return AccountOut(
        account=row["account"], broker=row["broker"], balance=row["balance"],
        equity=row["equity"], margin_used=row["margin_used"], margin_free=row["margin_free"],
        open_pl=row["open_pl"], realized_pl_today=row["realized_pl_today"],
        daily_pl=row["realized_pl_today"] + row["open_pl"],
        daily_profit_target=None if target is None else float(target),
        open_positions=row["open_positions"], positions=_positions(row["positions"]),
        ai_trading_enabled=risk["ai_trading_enabled"] if risk else None,
        captured_at=row["captured_at"])


def _window(since: datetime | None, until: datetime | None,
            default: timedelta) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC)
    start = since or end - default
    if end <= start:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "`until` must be after `since`")
    return start, end


@router.get("/account/history", response_model=AccountHistoryOut, responses=responses())
def account_history(user: CurrentUser, svc: Svc, conn: DB, since: Since = None,
                    until: Since = None,
                    limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> AccountHistoryOut:
    """Broker results of orders and account snapshots in a range (default: 7 days)."""
    start, end = _window(since, until, timedelta(days=7))
    acct = svc.settings.account
    orders = [OrderOut.model_validate({**r, "mt5_order_id": r["broker_order_id"]})
              for r in queries.order_history(conn, acct, start, end, limit)]
    equity = [EquityPointOut.model_validate(r)
              for r in queries.account_snapshots(conn, acct, start, end, limit)]
    return AccountHistoryOut(since=start, until=end, orders=orders, equity=equity)


@router.get("/analysis", response_model=AnalysisOut, responses=responses())
def get_analysis(
    user: CurrentUser, svc: Svc, conn: DB,
    range: Annotated[Literal["today", "week", "month", "custom"], Query()] = "today",  # noqa: A002
    since: Since = None, until: Since = None,
) -> AnalysisOut:
    """Total P/L, win rate, average RR, weekly progress vs target for a range."""
    return analysis(conn, svc.settings.account, range, since, until, datetime.now(UTC))


# ------------------------------------------------------------------------------- data


@router.get("/data/calendar", response_model=list[CalendarOut], responses=responses())
def calendar(
    user: CurrentUser, conn: DB, since: Since = None, until: Since = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    impact: Annotated[Literal["high", "medium", "low", "holiday"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[CalendarOut]:
    """Economic releases (default: from a day ago to a week ahead), by time."""
    now = datetime.now(UTC)
    start, end = since or now - timedelta(days=1), until or now + timedelta(days=7)
    if end <= start:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "`until` must be after `since`")
    rows = queries.calendar_events(conn, start, end, currency.upper() if currency else None,
                                   impact, limit)
    return [CalendarOut.model_validate(r) for r in rows]


@router.get("/data/news", response_model=list[NewsOut], responses=responses())
def news(
    user: CurrentUser, conn: DB, since: Since = None, symbol: SymbolQ = None,
    source: Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NewsOut]:
    """Headlines, newest first (default: the last 2 days), optionally for a symbol."""
    start = since or datetime.now(UTC) - timedelta(days=2)
    return [NewsOut.model_validate(r) for r in queries.news(conn, start, symbol, source, limit)]


@router.get("/data/candles", response_model=list[CandleOut], responses=responses())
def candles(
    user: CurrentUser, conn: DB,
    symbol: Annotated[str, Query(min_length=1, max_length=32, pattern=NO_NUL)],
    timeframe: Annotated[Literal["M1", "M5", "M15", "M30", "H1", "H4", "D1"], Query()] = "M1",
    limit: Annotated[int, Query(ge=1, le=2000)] = 300,
) -> list[CandleOut]:
    """The newest candles of a symbol and timeframe, oldest first, with SMA 50/200 and RSI."""
    return [CandleOut.model_validate(r) for r in queries.candles(conn, symbol, timeframe, limit)]


@router.get("/data/indicators", response_model=list[IndicatorOut], responses=responses())
def indicators(
    user: CurrentUser, svc: Svc, conn: DB, symbol: SymbolQ = None,
    timeframe: Annotated[Literal["M1", "M5", "M15", "M30", "H1", "H4", "D1"] | None,
                         Query()] = None,
) -> list[IndicatorOut]:
    """The latest RSI / SMA / MACD / ATR per watched symbol and timeframe."""
    pairs = set(queries.indicator_pairs(conn, datetime.now(UTC) - timedelta(days=3)))
    pairs |= {(s, t) for s in svc.settings.market_symbols for t in svc.settings.market_timeframes}
    chosen = sorted((s, t) for s, t in pairs
                    if (symbol is None or s == symbol) and (timeframe is None or t == timeframe))
    return [IndicatorOut.model_validate(r) for r in queries.latest_indicators(conn, chosen)]
