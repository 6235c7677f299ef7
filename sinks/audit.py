"""Tamper evidence: walk each account's decision hash chain from the database or the topic.

The rows of `decision_history` keep every field of the DecisionEvent they came from, so
the event can be rebuilt from a row and checked with `streams.core.audit.verify_chain`:
a row edited behind the append-only trigger's back no longer matches its hash, a deleted
row leaves the next one pointing at a hash nobody has. The same walk over
`decisions.log.v1` checks the topic, and comparing the two finds decisions the
database never received.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from streams.core.audit import ChainReport, verify_chain
from topics.bus import read_to_end
from topics.catalog import Catalog
from topics.settings import Settings

DECISIONS = "decisions.log.v1"

_ROW_SQL = """
SELECT id, account, occurred_at, symbol, action::text, outcome, rationale, confidence_score,
       confidence::text, risk_check_result, checks::text, strategy_id, strategy_hash,
       trade_idea_id, snapshot_ref, command_id, human_override, issuer, inputs::text,
       risk_config_hash, gate_state::text, code_version, prev_hash, hash
FROM decision_history WHERE account = %s ORDER BY occurred_at, id
"""


def event_from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """The DecisionEvent a decision_history row was written from (JSONB read as text)."""
    (decision_id, account, occurred_at, symbol, action, outcome, rationale, confidence,
     confidence_json, risk_check_result, checks, strategy_id, strategy_hash, trade_idea_id,
     snapshot_ref, command_id, human_override, issuer, inputs, risk_config_hash, gate_state,
     code_version, prev_hash, hash_) = row
    return {
        "decision_id": decision_id, "account": account, "occurred_at": occurred_at,
        "symbol": symbol, "action": action, "outcome": outcome, "rationale": rationale,
        "confidence": confidence, "confidence_json": confidence_json,
        "risk_check_result": risk_check_result,
        "checks": [{"name": c["name"], "passed": c["passed"], "code": c["code"],
                    "detail_json": json.dumps(c["detail"])} for c in json.loads(checks)],
        "strategy_id": strategy_id, "strategy_hash": strategy_hash,
        "trade_idea_id": trade_idea_id, "snapshot_ref": snapshot_ref, "command_id": command_id,
        "human_override": human_override, "issuer": issuer, "inputs": json.loads(inputs),
        "risk_config_hash": risk_config_hash, "gate_state_json": gate_state,
        "code_version": code_version, "prev_hash": prev_hash, "hash": hash_,
    }


@dataclass
class ChainSet:
    """The chains of one source (database or topic), one report per account."""

    source: str
    reports: list[ChainReport] = field(default_factory=list)
    ids: dict[str, set[str]] = field(default_factory=dict)   # account -> decision ids
    undecodable: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def _rows(conn: psycopg.Connection, account: str) -> Iterator[tuple[Any, ...]]:
    with conn.cursor(name=f"audit_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = 5000
        cur.execute(_ROW_SQL, (account,))
        yield from cur


def verify_database(settings: Settings, account: str | None = None) -> ChainSet:
    """Walk every account's chain (or one account's) in decision_history."""
    out = ChainSet("database")
    with psycopg.connect(settings.database_dsn(), application_name="ai-trader-audit") as conn:
        if account is None:
            accounts = [r[0] for r in conn.execute(
                "SELECT DISTINCT account FROM decision_history ORDER BY account")]
        else:
            accounts = [account]
        for name in accounts:
            events = [event_from_row(row) for row in _rows(conn, name)]
            out.ids[name] = {e["decision_id"] for e in events}
            out.reports.append(verify_chain(name, events))
    return out


def _read_topic(settings: Settings, catalog: Catalog, timeout: float
                ) -> Iterator[dict[str, Any] | None]:
    """Every record of decisions.log from the beginning to the end as of now (None: bad);
    a topic that does not exist holds no decisions."""
    return read_to_end(settings, catalog, DECISIONS, timeout, missing_ok=True)


def verify_topic(settings: Settings, catalog: Catalog, account: str | None = None,
                 timeout: float = 30.0) -> ChainSet:
    """Walk every account's chain (or one account's) in the decisions topic."""
    out = ChainSet("topic")
    events: dict[str, list[dict[str, Any]]] = {}
    for event in _read_topic(settings, catalog, timeout):
        if event is None:
            out.undecodable += 1
        elif account is None or event["account"] == account:
            events.setdefault(event["account"], []).append(event)
    for name in sorted(events):
        out.ids[name] = {e["decision_id"] for e in events[name]}
        out.reports.append(verify_chain(name, events[name]))
    return out


def missing_from_database(database: ChainSet, topic: ChainSet) -> dict[str, int]:
    """Per account, decisions in the topic that the database does not have."""
    out = {}
    for name, ids in topic.ids.items():
        missing = len(ids - database.ids.get(name, set()))
        if missing:
            out[name] = missing
    return out


def describe(chains: ChainSet) -> list[str]:
    """One line per account."""
    lines = []
    for r in chains.reports:
        if r.first_break is None:
            head = (r.head or "")[:12]
            again = (f", {r.redelivered} delivered twice (identical copies)"
                     if r.redelivered else "")
            lines.append(f"{chains.source}: account {r.account}: {r.verified} decisions "
                         f"verified, chain intact (head {head}){again}")
        else:
            read = len(chains.ids.get(r.account, ()))
            lines.append(f"{chains.source}: BROKEN: {r.first_break.describe()} "
                         f"({read} decisions read)")
    if not chains.reports:
        lines.append(f"{chains.source}: no decisions")
    if chains.undecodable:
        lines.append(f"{chains.source}: {chains.undecodable} records could not be decoded")
    return lines
