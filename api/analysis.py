"""The analysis cards (§4.1): total P/L, win rate, average RR, weekly progress vs target.

P/L comes from the account's balance (realized), trades from the positions the account
snapshots saw close (P/L = their last marked P/L), RR from the entry, stop and first
target of the idea that opened each position (planned reward:risk).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from api.errors import ApiError, ErrorCode
from api.models import AnalysisOut, DailyPlOut, TradeOut
from sinks import queries
from sinks.queries import Conn

RANGES = ("today", "week", "month", "custom")


def bounds(name: str, since: datetime | None, until: datetime | None,
           now: datetime) -> tuple[datetime, datetime]:
    """[since, until) of a named range (UTC calendar), or the custom one."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if name == "today":
        return day, now
    if name == "week":
        return day - timedelta(days=day.weekday()), now
    if name == "month":
        return day.replace(day=1), now
    if since is None:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "range=custom needs `since`")
    end = until or now
    if end <= since:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "`until` must be after `since`")
    return since, end


def _rr(row: Mapping[str, Any]) -> float | None:
    entry, stop, target = row.get("idea_entry"), row.get("idea_stop"), row.get("idea_target")
    if entry is None or stop is None or target is None or entry == stop:
        return None
    return round(abs(target - entry) / abs(entry - stop), 4)


def _trades(rows: list[dict[str, Any]]) -> list[TradeOut]:
    return [TradeOut(ticket=str(r["ticket"]), symbol=r["symbol"], direction=r["direction"],
                     volume=None if r["volume"] is None else float(r["volume"]),
                     pl=float(r["pl"] or 0), rr=_rr(r), idea_id=r["idea_id"],
                     last_seen_at=r["last_seen_at"]) for r in rows]


def _daily(rows: list[dict[str, Any]], start: Decimal | None) -> list[DailyPlOut]:
    out = []
    previous = start
    for row in rows:
        balance = Decimal(row["balance"])
        pl = balance - previous if previous is not None else Decimal(0)
        out.append(DailyPlOut(day=row["day"], pl=float(pl), balance=float(balance)))
        previous = balance
    return out


def _target(config: Mapping[str, Any]) -> float | None:
    weekly = config.get("weekly_profit_target")
    if weekly is not None:
        return float(weekly)
    daily = config.get("daily_profit_target")
    return None if daily is None else float(daily) * 5


def analysis(conn: Conn, account: str, name: str, since: datetime | None,
             until: datetime | None, now: datetime) -> AnalysisOut:
    """The cards of one range."""
    start, end = bounds(name, since, until, now)
    first = queries.balance_before(conn, account, start)
    last = queries.balance_before(conn, account, end)
    trades = _trades(queries.closed_positions(conn, account, start, end))
    wins = sum(1 for t in trades if t.pl > 0)
    losses = sum(1 for t in trades if t.pl < 0)
    rrs = [t.rr for t in trades if t.rr is not None]
    week_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start -= timedelta(days=week_start.weekday())
    week_first = queries.balance_before(conn, account, week_start)
    week_last = queries.balance_before(conn, account, now)
    weekly_pl = None if week_first is None or week_last is None else float(week_last - week_first)
    risk = queries.risk_config(conn, account)
    target = _target(risk["config"]) if risk else None
    return AnalysisOut(
        range=name, since=start, until=end,
        total_pl=None if first is None or last is None else float(last - first),
        trades=len(trades), wins=wins, losses=losses,
        win_rate=round(wins / len(trades), 4) if trades else None,
        avg_rr=round(sum(rrs) / len(rrs), 4) if rrs else None,
        weekly_pl=weekly_pl, weekly_target=target,
        weekly_progress=(round(weekly_pl / target, 4)
                         if weekly_pl is not None and target else None),
        daily=_daily(queries.daily_balances(conn, account, start, end), first),
        closed_trades=trades)
