"""Valid records of the topics tests/factories.py does not cover, and a sealed decision chain."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from streams.core.audit import seal
from streams.core.model import RiskConfig
from streams.core.strategy import definition_hash
from tests import factories
from tests.factories import T0

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


def decision_event(i: int = 0, account: str = "paper-1", **kw: Any) -> dict[str, Any]:
    """An unsealed ai_proposed decision with checks, inputs and JSON fields."""
    rec = {
        "decision_id": f"dec-{uuid.uuid4().hex[:12]}", "account": account,
        "occurred_at": T0 + timedelta(minutes=i), "symbol": "XAUUSD",
        "action": "ai_proposed", "outcome": "needs_approval",
        "rationale": f"Pullback in an uptrend #{i}", "confidence": Decimal("91.30"),
        "confidence_json": json.dumps({"strategy_match": 45, "volatility": 1.5}),
        "risk_check_result": "pass",
        "checks": [{"name": "max_lot_size", "passed": True, "code": "ok",
                    "detail_json": json.dumps({"lots": "0.50", "cap": "1.00"})},
                   {"name": "news", "passed": True, "code": "ok", "detail_json": "[]"}],
        "strategy_id": "gold-pullback-buy", "strategy_hash": "ab" * 32,
        "trade_idea_id": f"idea-{i}", "snapshot_ref": f"snap-{i}", "command_id": None,
        "human_override": False, "issuer": None,
        "inputs": [{"topic": "market.candles.v1", "partition": 0, "offset": 40 + i}],
        "risk_config_hash": "cd" * 32,
        "gate_state_json": json.dumps({"open_positions": i, "halted": False, "pnl": "12.50"}),
        "code_version": "test", "prev_hash": None, "hash": "",
    }
    rec.update(kw)
    return rec


def sealed_chain(n: int, account: str = "paper-1", start: int = 0) -> list[dict[str, Any]]:
    """n decisions of one account, each sealed to the previous one."""
    out: list[dict[str, Any]] = []
    prev = None
    for i in range(start, start + n):
        event = seal(decision_event(i, account), prev)
        prev = event["hash"]
        out.append(event)
    return out


def idea_status(idea_id: str = "idea-1", status: str = "pending_approval", **kw: Any
                ) -> dict[str, Any]:
    """A status change; pass idea=factories.trade_idea(...) for an idea's first status."""
    rec = {"idea_id": idea_id, "account": "paper-1", "status": status, "reason": None,
           "decision_id": None, "changed_at": T0, "idea": None}
    rec.update(kw)
    return rec


def order_result(**kw: Any) -> dict[str, Any]:
    """A filled paper order."""
    rec = {"request_id": "idea-1", "idea_id": "idea-1", "account": "paper-1",
           "status": "filled", "broker": "paper", "broker_order_id": 5001,
           "broker_deal_id": 6001, "position_ticket": 7001, "filled_price": 2385.4,
           "filled_volume": Decimal("0.50"), "retcode": 10009, "error_code": None,
           "message": "done", "executed_at": T0 + timedelta(seconds=2)}
    rec.update(kw)
    return rec


def command_reply(**kw: Any) -> dict[str, Any]:
    """An accepted kill switch."""
    rec = {"command_id": "cmd-1", "account": "paper-1", "kind": "kill_switch",
           "status": "accepted", "reason": None,
           "result_json": json.dumps({"decision_id": "dec-k", "ai_trading_enabled": False}),
           "replied_at": T0}
    rec.update(kw)
    return rec


def risk_config_state(version: int = 1, **kw: Any) -> dict[str, Any]:
    """The gate's risk configuration of paper-1 (kill switch off)."""
    config = RiskConfig(max_lot_size=Decimal("1.00"), max_concurrent_trades=2,
                        daily_profit_target=None, max_drawdown_amount=Decimal("500"),
                        ai_trading_enabled=True).to_dict()
    config["kill_switch"] = {"active": False, "by": None, "at": None, "reason": None}
    config.update(kw.pop("config", {}))
    rec = {"account": "paper-1", "config_json": json.dumps(config),
           "config_hash": f"cfg-{version}", "version": version,
           "updated_at": T0 + timedelta(minutes=version), "updated_by": "ops@test"}
    rec.update(kw)
    return rec


def strategy_definition(version: int = 1, **kw: Any) -> dict[str, Any]:
    """The repository's Gold Pullback Buy at a given version."""
    definition = json.loads((STRATEGIES / "gold_pullback_buy.json").read_text())
    definition["version"] = version
    definition.update(kw)
    return definition


def strategy_state(version: int = 1, is_active: bool = True, **kw: Any) -> dict[str, Any]:
    """A StrategyState of Gold Pullback Buy."""
    definition = strategy_definition(version, is_active=is_active)
    rec = {"strategy_id": definition["id"], "version": version, "is_active": is_active,
           "definition_json": json.dumps(definition),
           "definition_hash": definition_hash(definition),
           "updated_at": T0 + timedelta(minutes=version), "updated_by": "ops@test"}
    rec.update(kw)
    return rec


def explanation(**kw: Any) -> dict[str, Any]:
    """An explanation of an idea."""
    rec = {"explanation_id": "exp-1", "subject_kind": "idea", "subject_id": "idea-1",
           "account": "paper-1", "status": "ok", "text": "Gold bounced off support.",
           "model": "test-model", "error": None, "prompt_tokens": 120,
           "completion_tokens": 40, "created_at": T0}
    rec.update(kw)
    return rec


def feed_health(**kw: Any) -> dict[str, Any]:
    """A healthy calendar feed."""
    rec = {"feed": "calendar", "status": "ok", "last_success": T0, "last_error": None,
           "last_error_at": None, "items_total": 12, "dead_letters_total": 0,
           "reported_at": T0}
    rec.update(kw)
    return rec


def inbox_idea(idea_id: str = "idea-1", **kw: Any) -> dict[str, Any]:
    """A gate.inbox message carrying an idea and its bundle."""
    idea = factories.trade_idea(idea_id=idea_id, **kw)
    bundle = factories.snapshot_bundle(snapshot_id=idea["snapshot_id"])
    return {"account": idea["account"], "idea": idea, "bundle": bundle, "command": None}


def inbox_command(**kw: Any) -> dict[str, Any]:
    """A gate.inbox message carrying a control command."""
    command = factories.control_command(**kw)
    return {"account": command["account"], "idea": None, "bundle": None, "command": command}
