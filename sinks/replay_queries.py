"""The SQL of `ai-trader replay`: decisions and the snapshot bundles they reference.

Replay wants the records exactly as the bus carried them, so it reads the raw Avro
bytes the sinks kept (`decision_history.raw`, `snapshot_bundles.raw`) and decodes them
with the topic's codec; a decision row without its raw bytes (written before the sinks
kept them) is rebuilt from its columns, as `ai-trader audit verify` does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg

from sinks.audit import event_from_row
from topics.catalog import Catalog

Conn = psycopg.Connection[Any]
Record = dict[str, Any]

_BY_ID = """
SELECT id, account, occurred_at, symbol, action::text, outcome, rationale, confidence_score,
       confidence::text, risk_check_result, checks::text, strategy_id, strategy_hash,
       trade_idea_id, snapshot_ref, command_id, human_override, issuer, inputs::text,
       risk_config_hash, gate_state::text, code_version, prev_hash, hash, raw
FROM decision_history WHERE id = %s ORDER BY occurred_at LIMIT 1
"""

_RANGE = """
SELECT id, account, occurred_at, symbol, action::text, outcome, rationale, confidence_score,
       confidence::text, risk_check_result, checks::text, strategy_id, strategy_hash,
       trade_idea_id, snapshot_ref, command_id, human_override, issuer, inputs::text,
       risk_config_hash, gate_state::text, code_version, prev_hash, hash, raw
FROM decision_history
WHERE occurred_at >= %(since)s AND occurred_at < %(until)s
  AND (%(account)s::text IS NULL OR account = %(account)s)
ORDER BY occurred_at, id
"""

_RANGE_COUNT = """
SELECT count(*) FROM decision_history
WHERE occurred_at >= %(since)s AND occurred_at < %(until)s
  AND (%(account)s::text IS NULL OR account = %(account)s)
"""

_BUNDLES = "SELECT snapshot_id, raw FROM snapshot_bundles WHERE snapshot_id = ANY(%s)"

_EXPLANATIONS = """
SELECT subject_kind, subject_id, status, text, model, created_at FROM explanations
WHERE subject_id = ANY(%s) ORDER BY created_at
"""


def _decision(row: tuple[Any, ...], catalog: Catalog) -> Record:
    raw = row[-1]
    if raw is not None:
        return catalog.codec("decisions.log.v1").decode(bytes(raw))
    return event_from_row(row[:-1])


def decision(conn: Conn, catalog: Catalog, decision_id: str) -> Record | None:
    """One DecisionEvent by id, or None."""
    row = conn.execute(_BY_ID, (decision_id,)).fetchone()
    return None if row is None else _decision(row, catalog)


def count_decisions(conn: Conn, since: datetime, until: datetime,
                    account: str | None = None) -> int:
    """How many decisions (any action) fall in [since, until)."""
    row = conn.execute(_RANGE_COUNT, {"since": since, "until": until, "account": account}
                       ).fetchone()
    return int(row[0]) if row else 0


def decisions(conn: Conn, catalog: Catalog, since: datetime, until: datetime,
              account: str | None = None) -> Iterator[Record]:
    """Every DecisionEvent of [since, until), oldest first, streamed (server-side cursor)."""
    with conn.cursor(name="replay_decisions") as cur:
        cur.itersize = 2000
        cur.execute(_RANGE, {"since": since, "until": until, "account": account})
        for row in cur:
            yield _decision(row, catalog)


def bundles(conn: Conn, catalog: Catalog, snapshot_ids: Sequence[str]) -> dict[str, Record]:
    """The SnapshotBundles with these ids (missing ones are simply absent)."""
    codec = catalog.codec("snapshots.bundles.v1")
    out: dict[str, Record] = {}
    ids = list(dict.fromkeys(snapshot_ids))
    for start in range(0, len(ids), 1000):
        for snapshot_id, raw in conn.execute(_BUNDLES, (ids[start:start + 1000],)):
            out[snapshot_id] = codec.decode(bytes(raw))
    return out


def explanations(conn: Conn, subject_ids: Sequence[str]) -> list[Record]:
    """The LLM explanations attached to these ideas or decisions, oldest first."""
    with conn.cursor() as cur:
        cur.execute(_EXPLANATIONS, (list(subject_ids),))
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
