"""Rows the sinks would write, inserted by the tests into the real database (0001 schema)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from sinks.queries import Conn
from streams.core.model import RiskConfig

T0 = datetime(2025, 10, 27, 10, 15, tzinfo=UTC)


def risk_config(conn: Conn, account: str, **overrides: Any) -> dict[str, Any]:
    """The account's risk_config row as the gate would have applied it."""
    config = RiskConfig(max_lot_size=Decimal("1.00"), max_concurrent_trades=3,
                        daily_profit_target=Decimal("2000"),
                        max_drawdown_amount=Decimal("1000"), ai_trading_enabled=True,
                        watchlist=frozenset({"XAUUSD"})).to_dict()
    config.update(overrides)
    config["kill_switch"] = {"active": False, "by": None, "at": None, "reason": None}
    conn.execute("DELETE FROM risk_config WHERE account = %s", (account,))
    conn.execute(
        "INSERT INTO risk_config (account, ai_trading_enabled, min_confidence_threshold, "
        "max_lot_size, max_concurrent_trades, daily_profit_target, stop_after_target, "
        "max_drawdown_amount, halt_on_drawdown, allow_off_watchlist_autotrade, "
        "last_halt_reason, config, config_hash, version, updated_by, updated_at) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (account, config["ai_trading_enabled"], config["min_confidence_threshold"],
         config["max_lot_size"], config["max_concurrent_trades"],
         config["daily_profit_target"], config["stop_after_target"],
         config["max_drawdown_amount"], config["halt_on_drawdown"],
         config["allow_off_watchlist_autotrade"], config["last_halt_reason"], Jsonb(config),
         "cfghash", 7, "tests", T0))
    return config


def strategy(conn: Conn, definition: dict[str, Any]) -> None:
    """A strategies row from a definition."""
    conn.execute(
        "INSERT INTO strategies (id, name, version, is_active, allowed_symbols, "
        "session_windows, entry_conditions, exit_rules, forbidden_conditions, risk_caps, "
        "rr_expectation, definition, definition_hash, updated_by) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (definition["id"], definition["name"], definition["version"], definition["is_active"],
         definition["allowed_symbols"], Jsonb(definition["session_windows"]),
         Jsonb(definition["entry_conditions"]), Jsonb(definition["exit_rules"]),
         Jsonb(definition["forbidden_conditions"]), Jsonb(definition["risk_caps"]),
         definition["rr_expectation"], Jsonb(definition), "defhash", "tests"))


def idea(conn: Conn, account: str, *, idea_id: str | None = None, status: str = "needs_approval",
         symbol: str = "XAUUSD", created_at: datetime = T0, snapshot_ref: str = "snap-1",
         entry: float = 2385.2, stop: float = 2378.5, targets: tuple[float, ...] = (2398.0,),
         ) -> str:
    """A trade_ideas row."""
    ident = idea_id or str(uuid.uuid4())
    conn.execute(
        "INSERT INTO trade_ideas (id, account, symbol, timeframe, direction, entry_price, "
        "stop_loss, take_profit, lot_size, expected_hold, rationale, confidence_score, "
        "confidence, status, strategy_id, strategy_version, snapshot_ref, expires_at, "
        "created_at, updated_at) VALUES (%s, %s, %s, 'M15', 'buy', %s, %s, %s, 0.50, "
        "'scalp_30m', 'Gold pulled back into support', 91.3, '{}', %s, 's-1', 1, %s, %s, %s, %s)",
        (ident, account, symbol, entry, stop, list(targets), status, snapshot_ref,
         created_at + timedelta(minutes=15), created_at, created_at))
    return ident


def decision(conn: Conn, account: str, *, occurred_at: datetime, symbol: str | None = "XAUUSD",
             action: str = "ai_proposed", decision_id: str | None = None,
             snapshot_ref: str | None = "snap-1", idea_id: str | None = None) -> str:
    """A decision_history row."""
    ident = decision_id or str(uuid.uuid4())
    conn.execute(
        "INSERT INTO decision_history (id, account, occurred_at, symbol, action, rationale, "
        "confidence_score, risk_check_result, strategy_id, trade_idea_id, snapshot_ref, "
        "human_override, gate_state, code_version, hash) VALUES "
        "(%s, %s, %s, %s, %s, 'Strategy matched', 91.3, 'pass', 's-1', %s, %s, false, '{}', "
        "'test', 'h')",
        (ident, account, occurred_at, symbol, action, idea_id, snapshot_ref))
    return ident


def bundle(conn: Conn, account: str, snapshot_id: str = "snap-1") -> None:
    """A snapshot_bundles row with a decoded SnapshotBundle (times as ISO text)."""
    record = {
        "snapshot_id": snapshot_id, "account": account, "symbol": "XAUUSD", "timeframe": "M15",
        "captured_at": T0.isoformat(),
        "candle": {"symbol": "XAUUSD", "timeframe": "M15", "open_time": T0.isoformat(),
                   "open": 2383.1, "high": 2386.0, "low": 2382.9, "close": 2385.2,
                   "volume": 100},
        "indicators": {"symbol": "XAUUSD", "timeframe": "M15", "open_time": T0.isoformat(),
                       "close": 2385.2, "rsi_14": 38.2, "atr_14": 2.3, "sma_50": 2380.0,
                       "sma_200": None},
        "calendar": [{"event_id": "e1", "event_time": (T0 + timedelta(minutes=45)).isoformat(),
                      "currency": "USD", "impact": "high", "title": "FOMC Rate Decision"}],
        "news": [{"headline": "Gold steady", "source": "wire",
                  "published_at": T0.isoformat()}],
        "account_state": {"balance": "12000.00", "equity": "12250.00", "margin_free": "8000.00",
                          "positions": [{"ticket": 1}]},
        "strategy_id": "s-1", "strategy_version": 1, "strategy_hash": "abc",
        "strategy_json": json.dumps({"name": "Gold Pullback Buy"}),
    }
    conn.execute(
        "INSERT INTO snapshot_bundles (snapshot_id, account, symbol, timeframe, strategy_id, "
        "strategy_version, strategy_hash, captured_at, bundle, raw) VALUES "
        "(%s, %s, 'XAUUSD', 'M15', 's-1', 1, 'abc', %s, %s, '\\x00') "
        "ON CONFLICT (snapshot_id) DO NOTHING", (snapshot_id, account, T0, Jsonb(record)))


def account_snapshot(conn: Conn, account: str, captured_at: datetime, balance: str,
                     positions: list[dict[str, Any]]) -> None:
    """A snapshot_account row."""
    conn.execute(
        "INSERT INTO snapshot_account (account, broker, balance, equity, margin_used, "
        "margin_free, open_pl, realized_pl_today, open_positions, positions, captured_at) "
        "VALUES (%s, 'paper', %s, %s, 100, 9000, %s, 50, %s, %s, %s)",
        (account, balance, Decimal(balance) + 25, 25, len(positions), Jsonb(positions),
         captured_at))


def position(ticket: int, pl: str, idea_id: str | None = None) -> dict[str, Any]:
    """A Position record as the sinks store it."""
    return {"ticket": ticket, "symbol": "XAUUSD", "direction": "buy", "volume": "0.50",
            "entry_price": 2385.2, "stop_loss": 2378.5, "take_profit": [2398.0],
            "unrealized_pl": pl, "opened_at": T0.isoformat(), "idea_id": idea_id,
            "strategy_id": "s-1", "magic": 0}
