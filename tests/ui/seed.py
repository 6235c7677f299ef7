"""Rows the sinks would write, for the UI's screens: one call seeds every screen.

Reuses `tests/api/rows.py` for the tables it covers and adds the data-screen tables
(calendar, news, indicators, feed health). Times are relative to now where the API
reads a window ending now (account, calendar, news, indicators).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from sinks.queries import Conn
from tests.api import rows

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
BALANCE = "12345.67"


@dataclass
class Seeded:
    """What was seeded, for the assertions."""

    account: str
    now: datetime
    idea_fill: str
    idea_blocked: str
    idea_reject: str
    idea_executed: str
    decision: str
    decision_without_snapshot: str
    snapshot: str
    strategy: dict[str, Any]
    high_event: str = "FOMC Rate Decision"
    headline: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def calendar_event(conn: Conn, title: str, at: datetime, impact: str, currency: str = "USD",
                   captured_at: datetime | None = None) -> None:
    """A snapshot_calendar row."""
    conn.execute(
        "INSERT INTO snapshot_calendar (event_id, event_time, currency, impact_level, title, "
        "previous_value, forecast_value, actual_value, all_day, source, captured_at) VALUES "
        "(%s, %s, %s, %s, %s, '5.25%%', '5.50%%', NULL, false, 'test', %s)",
        (str(uuid.uuid4()), at, currency, impact, title, captured_at or at - timedelta(hours=1)))


def news_item(conn: Conn, headline: str, source: str, at: datetime,
              symbols: list[str]) -> None:
    """A snapshot_news row."""
    conn.execute(
        "INSERT INTO snapshot_news (item_id, headline, source, url, summary, symbols, "
        "currencies, published_at, captured_at) VALUES (%s, %s, %s, %s, NULL, %s, %s, %s, %s)",
        (str(uuid.uuid4()), headline, source, f"https://news.example/{uuid.uuid4().hex[:8]}",
         symbols, ["USD"], at, at))


def indicators(conn: Conn, symbol: str, timeframe: str, at: datetime, close: float) -> None:
    """A snapshot_indicators row."""
    values = {"rsi_14": 38.2, "sma_50": close - 5, "sma_200": close - 20, "atr_14": 2.3}
    conn.execute(
        "INSERT INTO snapshot_indicators (symbol, timeframe, open_time, close, rsi_14, sma_50, "
        "sma_200, macd, atr, pct_move_today, spread, values, captured_at) VALUES "
        "(%s, %s, %s, %s, 38.2, %s, %s, %s, 2.3, 0.42, 0.3, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (symbol, timeframe, at, close, close - 5, close - 20,
         Jsonb({"macd": 1.25, "signal": 0.8, "hist": 0.45}), Jsonb(values), at))


def feed_health(conn: Conn, feed: str, status: str, at: datetime) -> None:
    """A feed_health row."""
    conn.execute(
        "INSERT INTO feed_health (feed, status, last_success, last_error, last_error_at, "
        "items_total, dead_letters_total, reported_at) VALUES (%s, %s, %s, NULL, NULL, 10, 0, %s)"
        " ON CONFLICT (feed) DO UPDATE SET status = EXCLUDED.status, "
        "reported_at = EXCLUDED.reported_at", (feed, status, at, at))


def strategy_definition() -> dict[str, Any]:
    """The gold pullback strategy from strategies/, as the gate seeds it."""
    definition: dict[str, Any] = json.loads((STRATEGIES / "gold_pullback_buy.json").read_text())
    return definition


def seed(conn: Conn, account: str) -> Seeded:
    """Every screen's data for `account` (ideas and decisions get fresh ids)."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows.risk_config(conn, account, weekly_profit_target="5000.00")
    definition = strategy_definition()
    rows.strategy(conn, definition)
    snapshot = f"snap-{uuid.uuid4().hex[:8]}"
    rows.bundle(conn, account, snapshot)
    fill, blocked, reject, executed = (str(uuid.uuid4()) for _ in range(4))
    for offset, ident in enumerate((fill, blocked, reject)):
        rows.idea(conn, account, idea_id=ident, snapshot_ref=snapshot,
                  created_at=now - timedelta(minutes=5 + offset))
    rows.idea(conn, account, idea_id=executed, status="auto_executed", snapshot_ref=snapshot,
              created_at=now - timedelta(minutes=30))
    decision = rows.decision(conn, account, occurred_at=now - timedelta(minutes=5),
                             snapshot_ref=snapshot, idea_id=fill)
    without = rows.decision(conn, account, occurred_at=now - timedelta(minutes=1),
                            action="ai_halted", symbol=None, snapshot_ref=None)
    # both inside this week (the analysis' week range): ticket 7 closes in between
    week_start = now - timedelta(days=now.weekday(), hours=now.hour, minutes=now.minute,
                                 seconds=now.second)
    rows.account_snapshot(conn, account, week_start, "12000.00", [rows.position(7, "40.00", fill)])
    rows.account_snapshot(conn, account, max(now, week_start + timedelta(seconds=1)), BALANCE,
                          [rows.position(8, "25.00")])
    calendar_event(conn, "FOMC Rate Decision", now + timedelta(hours=3), "high")
    calendar_event(conn, "Retail Sales m/m", now + timedelta(hours=5), "medium",
                   currency="GBP")
    headline = f"Gold steady ahead of FOMC {uuid.uuid4().hex[:6]}"
    news_item(conn, headline, "wire", now - timedelta(hours=1), ["XAUUSD"])
    news_item(conn, "Dollar index edges higher", "rss-fx", now - timedelta(hours=2), [])
    indicators(conn, "XAUUSD", "M15", now - timedelta(minutes=15), 2385.2)
    feed_health(conn, "market", "ok", now)
    feed_health(conn, "broker-paper", "ok", now)
    return Seeded(account=account, now=now, idea_fill=fill, idea_blocked=blocked,
                  idea_reject=reject, idea_executed=executed, decision=decision,
                  decision_without_snapshot=without, snapshot=snapshot, strategy=definition,
                  headline=headline)
