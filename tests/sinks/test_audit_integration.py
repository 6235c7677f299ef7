"""`ai-trader audit verify`: chains written through the real topic and sink, then tampered."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg import sql

from api.cli import build_parser
from sinks.cli import cmd_audit
from tests.sinks import factories as sf
from tests.sinks.conftest import count, publish, running_sink, wait_for
from topics.catalog import Catalog
from topics.settings import Settings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def chains(bus: Settings, catalog: Catalog, sink_db: Settings) -> dict[str, list[dict[str, Any]]]:
    """Two accounts' sealed chains, published to decisions.log and written by the sink."""
    out = {"acc-a": sf.sealed_chain(5, "acc-a"), "acc-b": sf.sealed_chain(3, "acc-b")}
    publish(bus, catalog, "decisions.log.v1",
            [(e["account"], e) for chain in out.values() for e in chain])
    with running_sink(sink_db, catalog):
        wait_for("the decisions", lambda: count(sink_db, "decision_history") == 8)
    return out


def _verify(settings: Settings, catalog: Catalog, capsys: pytest.CaptureFixture[str],
            *extra: str) -> tuple[int, str]:
    args = build_parser().parse_args(["audit", "verify", *extra])
    settings = settings.model_copy(update={"topic_prefix": catalog.prefix})
    code = cmd_audit(args, settings)
    return code, capsys.readouterr().out


def _as_superuser(settings: Settings, statement: str | sql.Composed, params: Any = None
                  ) -> None:
    """Change decision_history behind the append-only trigger's back (replica role)."""
    with psycopg.connect(settings.database_dsn(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers do not fire
        conn.execute(statement, params)


def test_intact_chains_verify(chains: dict[str, list[dict[str, Any]]], sink_db: Settings,
                              catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(sink_db, catalog, capsys, "--from-topics")
    assert code == 0, out
    assert "database: account acc-a: 5 decisions verified, chain intact" in out
    assert "database: account acc-b: 3 decisions verified, chain intact" in out
    assert "topic: account acc-a: 5 decisions verified, chain intact" in out
    assert "not in the database" not in out


def test_an_edited_row_is_reported(chains: dict[str, list[dict[str, Any]]], sink_db: Settings,
                                   catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    edited = chains["acc-a"][2]["decision_id"]
    _as_superuser(sink_db, "UPDATE decision_history SET rationale = 'nothing to see'"
                           " WHERE id = %s", (edited,))
    code, out = _verify(sink_db, catalog, capsys, "--account", "acc-a")
    assert code == 1
    assert f"BROKEN: account acc-a: decision {edited}: content does not match its hash" in out
    code, out = _verify(sink_db, catalog, capsys, "--account", "acc-b")
    assert code == 0, out


@pytest.mark.parametrize(("column", "value"), [
    ("gate_state", '{"open_positions": 99}'),
    ("confidence_score", "99.99"),
    ("occurred_at", "2020-01-01T00:00:00Z"),
    ("checks", '[]'),
])
def test_any_edited_field_breaks_the_chain(chains: dict[str, list[dict[str, Any]]],
                                           sink_db: Settings, catalog: Catalog,
                                           capsys: pytest.CaptureFixture[str],
                                           column: str, value: str) -> None:
    edited = chains["acc-b"][1]["decision_id"]
    _as_superuser(sink_db, sql.SQL("UPDATE decision_history SET {} = %s WHERE id = %s")
                  .format(sql.Identifier(column)), (value, edited))
    code, out = _verify(sink_db, catalog, capsys)
    assert code == 1
    assert f"decision {edited}" in out


def test_a_deleted_row_is_a_missing_link(chains: dict[str, list[dict[str, Any]]],
                                         sink_db: Settings, catalog: Catalog,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    deleted, after = chains["acc-a"][1]["decision_id"], chains["acc-a"][2]["decision_id"]
    with psycopg.connect(sink_db.database_dsn(), autocommit=True) as conn:
        conn.execute("ALTER TABLE decision_history DISABLE TRIGGER decision_history_no_update")
        conn.execute("DELETE FROM decision_history WHERE id = %s", (deleted,))
        conn.execute("ALTER TABLE decision_history ENABLE TRIGGER decision_history_no_update")
    code, out = _verify(sink_db, catalog, capsys, "--from-topics")
    assert code == 1
    assert f"BROKEN: account acc-a: decision {after}: 3 event(s) not reachable" in out
    assert "topic: account acc-a: 5 decisions verified, chain intact" in out
    assert "account acc-a: 1 decisions in the topic are not in the database" in out


def test_the_command_exits_1_on_a_break(chains: dict[str, list[dict[str, Any]]],
                                        sink_db: Settings, catalog: Catalog) -> None:
    env = {**os.environ, "DATABASE_URL": sink_db.database_dsn(),
           "AI_TRADER_TOPIC_PREFIX": catalog.prefix, "AI_TRADER_ENV": "test"}
    ok = subprocess.run([sys.executable, "-m", "api.cli", "audit", "verify"], env=env,
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    _as_superuser(sink_db, "UPDATE decision_history SET symbol = 'EURUSD' WHERE id = %s",
                  (chains["acc-b"][0]["decision_id"],))
    broken = subprocess.run([sys.executable, "-m", "api.cli", "audit", "verify", "--json"],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert f'"decision_id": "{chains["acc-b"][0]["decision_id"]}"' in broken.stdout
