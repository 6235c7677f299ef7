"""Input records of the explainer, shaped as the gate publishes them (Avro-valid).

An idea (TradeIdea inside its first IdeaStatus), its snapshot bundle, and decision
events (DecisionEvent, sealed into a hash chain) with checks whose `detail_json` holds
the compared values as text, like `streams.core.gate.CheckResult.values`. Ids are
fresh per call unless given, so tests never collide on the shared broker.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from streams.core.audit import seal
from tests import factories as base

T0 = base.T0
NOW = T0 + timedelta(minutes=5)  # the explainer's clock in the tests: just after the events

CONFIDENCE = {
    "score": "91.30",
    "components": [
        {"name": "strategy_match", "score": "45.00", "maximum": "50",
         "reasons": ["3/3 required conditions met",
                     "nice-to-have macd_cross met: MACD hist 0.2 > 0"]},
        {"name": "market_risk", "score": "27.50", "maximum": "30",
         "reasons": ["no blocking event", "ATR 0.0964% of price (calm 0.1, wild 0.5): -2.5"]},
        {"name": "account_comfort", "score": "18.80", "maximum": "20",
         "reasons": ["margin free 0.67 of equity: -1.2",
                     "exposure: 0 same symbol+direction, 0 same symbol opposite, "
                     "0 correlated same direction: -0"]},
    ],
}

BULLETS = [
    "Gold Pullback Buy v1: buy XAUUSD M15 at 2385.2",
    "RSI 38.2 < 40",
    "close above SMA 200 (2350)",
    "in session 07:00-11:00 UTC",
    "no high-impact USD event within 30 min",
    "stop 2378.5 (swing low - 0.1 ATR), take-profit 2398, 2402 (RR 1.9, 2.5), hold scalp_30m",
    "0.50 lots",
]


def ident(prefix: str) -> str:
    """A fresh id."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def trade_idea(**kw: Any) -> dict[str, Any]:
    """A buy idea on gold with its confidence components and rationale bullets."""
    idea_id = kw.pop("idea_id", None) or ident("idea")
    rec = base.trade_idea(
        idea_id=idea_id, snapshot_id=f"snap-{idea_id}", rationale="; ".join(BULLETS) + ".",
        rationale_bullets=list(BULLETS), confidence_json=json.dumps(CONFIDENCE),
    )
    rec.update(kw)
    return rec


def idea_status(idea: dict[str, Any] | None = None, status: str = "pending_approval",
                **kw: Any) -> dict[str, Any]:
    """The first status of an idea, carrying it."""
    idea = trade_idea() if idea is None else idea
    rec = {"idea_id": idea["idea_id"], "account": idea["account"], "status": status,
           "reason": "needs_approval: off_watchlist", "decision_id": None,
           "changed_at": idea["created_at"], "idea": idea}
    rec.update(kw)
    return rec


def later_status(idea: dict[str, Any], status: str = "executed") -> dict[str, Any]:
    """A later status of the idea: no idea inside."""
    rec = idea_status(idea, status, reason=None)
    rec["idea"] = None
    return rec


def bundle(idea: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The snapshot bundle the idea was built from (an FOMC release three hours ahead)."""
    rec = base.snapshot_bundle(snapshot_id=idea["snapshot_id"], account=idea["account"],
                               symbol=idea["symbol"], timeframe=idea["timeframe"])
    rec.update(kw)
    return rec


def check(name: str, passed: bool, reason: str, **values: str) -> dict[str, Any]:
    """One Check record, values as the gate writes them (text, canonical JSON)."""
    return {"name": name, "passed": passed, "code": "pass" if passed else f"fail:{reason}",
            "detail_json": json.dumps(values, sort_keys=True, separators=(",", ":"))}


CHECKS = [
    check("kill_switch", True, "kill_switch_active", active="false", by="null", at="null",
          why="null"),
    check("max_drawdown", True, "max_drawdown", today_pl="120.00", limit="-500.00"),
    check("lot_size", True, "lot_size", lots="0.50", cap="1.00", binding="global"),
    check("max_concurrent_trades", True, "max_concurrent_trades", open="1", max="3"),
    check("confidence_threshold", True, "confidence_below_threshold", confidence="91.30",
          threshold="80.00"),
    check("watchlist", False, "off_watchlist", symbol="XAUUSD", on_watchlist="false",
          allow_off_watchlist_autotrade="false"),
]


def decision(idea: dict[str, Any] | None = None, prev_hash: str | None = None,
             **kw: Any) -> dict[str, Any]:
    """The gate's `ai_proposed` decision on an idea (needs approval: off the watchlist)."""
    idea = trade_idea() if idea is None else idea
    rec = {
        "decision_id": ident("decision"), "account": idea["account"],
        "occurred_at": idea["created_at"], "symbol": idea["symbol"], "action": "ai_proposed",
        "outcome": "needs_approval",
        "rationale": ("Needs approval: buy 0.50 lots XAUUSD M15 (strategy gold-pullback-buy v1), "
                      "confidence 91.30: watchlist fail:off_watchlist (symbol=XAUUSD, "
                      "on_watchlist=false, allow_off_watchlist_autotrade=false)."),
        "confidence": Decimal("91.30"), "confidence_json": json.dumps(CONFIDENCE),
        "risk_check_result": "fail:off_watchlist", "checks": CHECKS,
        "strategy_id": idea["strategy_id"], "strategy_hash": idea["strategy_hash"],
        "trade_idea_id": idea["idea_id"], "snapshot_ref": idea["snapshot_id"],
        "command_id": None, "human_override": False, "issuer": None, "inputs": [],
        "risk_config_hash": "cd" * 32, "gate_state_json": json.dumps({"kill_switch": False}),
        "code_version": "test",
    }
    rec.update(kw)
    return seal(rec, prev_hash)


def halt_decision(**kw: Any) -> dict[str, Any]:
    """A global halt (no idea, no symbol)."""
    rec = {
        "decision_id": ident("decision"), "account": "paper-1", "occurred_at": T0,
        "symbol": None, "action": "ai_halted", "outcome": None,
        "rationale": "AI halted due to max_drawdown", "confidence": None,
        "confidence_json": None, "risk_check_result": "fail:max_drawdown", "checks": [],
        "strategy_id": None, "strategy_hash": None, "trade_idea_id": None, "snapshot_ref": None,
        "command_id": None, "human_override": False, "issuer": None, "inputs": [],
        "risk_config_hash": None, "gate_state_json": "{}", "code_version": "test",
    }
    rec.update(kw)
    return seal(rec, None)


# ------------------------------------------------------------------- what the model says

IDEA_TEXT = ("The Gold Pullback Buy strategy v1 proposes buying XAUUSD at 2385.2 because RSI "
             "38.2 is below 40 while price holds above the SMA 200 at 2350; the stop is 2378.5 "
             "and the first target 2398. Confidence is 91.3 out of 100, with strategy match "
             "45 of 50, and a high-impact USD FOMC release is scheduled at 11:00 UTC.")

DECISION_TEXT = ("The gate asked for approval because XAUUSD is not on the watchlist, although "
                 "confidence 91.3 cleared the threshold of 80 and 1 of 3 positions is open.")

INVENTED_TEXT = ("This setup has a 72% historical win rate and should return 3.5R on the "
                 "entry at 2385.2.")


def text_for(prompt: str) -> str:
    """The fake model's answer: the idea paragraph or the decision sentence."""
    return DECISION_TEXT if "one sentence" in prompt else IDEA_TEXT
