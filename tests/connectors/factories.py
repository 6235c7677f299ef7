"""Factories for the connector tests: order requests, decisions, commands, fixture files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "connectors"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, London session


def fixture(name: str) -> bytes:
    """The bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def order_request(**kw: Any) -> dict[str, Any]:
    """A market buy of gold allowed by the gate, valid for 30 minutes from T0."""
    rid = kw.pop("request_id", None) or str(uuid.uuid4())
    rec = {
        "request_id": rid, "idea_id": rid, "decision_id": f"dec-{rid[:8]}",
        "account": "paper-1", "symbol": "XAUUSD", "direction": "buy", "order_type": "market",
        "lot_size": Decimal("0.10"), "price": None, "stop_loss": 2370.0,
        "take_profit": [2395.0, 2400.0], "strategy_id": "gold-pullback-buy",
        "human_override": False, "requested_at": T0, "expires_at": T0 + timedelta(minutes=30),
    }
    rec.update(kw)
    return rec


def decision(action: str, **kw: Any) -> dict[str, Any]:
    """A decisions.log.v1 record (ai_halted, ai_resumed ...)."""
    rec = {
        "decision_id": f"d-{uuid.uuid4().hex[:8]}", "account": "paper-1", "occurred_at": T0,
        "symbol": None, "action": action, "outcome": None, "rationale": "test",
        "confidence": None, "confidence_json": None, "risk_check_result": None, "checks": [],
        "strategy_id": None, "strategy_hash": None, "trade_idea_id": None, "snapshot_ref": None,
        "command_id": None, "human_override": False, "issuer": "gate", "inputs": [],
        "risk_config_hash": None, "gate_state_json": "{}", "code_version": "test",
        "prev_hash": None, "hash": "00" * 32,
    }
    rec.update(kw)
    return rec


def refresh_command(**kw: Any) -> dict[str, Any]:
    """A refresh_account command for the broker service."""
    return factories.control_command(kind="refresh_account", command_id=str(uuid.uuid4()), **kw)


def gold_candle(i: int, close: float, high: float | None = None, low: float | None = None,
                **kw: Any) -> dict[str, Any]:
    """The i-th M1 gold candle from T0 with a given close (and range)."""
    open_ = kw.pop("open", close)
    hi = high if high is not None else max(open_, close) + 0.5
    lo = low if low is not None else min(open_, close) - 0.5
    return factories.candle(i, "XAUUSD", open_time=T0 + timedelta(minutes=i), open=open_,
                            high=max(hi, close, open_), low=min(lo, close, open_), close=close,
                            spread=0.3, **kw)
