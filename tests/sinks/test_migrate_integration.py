"""Migrations on a real PostgreSQL: applied once, append-only audit enforced by the database."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sinks.migrate import MIGRATIONS, MigrationError, migrate
from topics.settings import Settings


@pytest.fixture(scope="module")
def migrated(database: Settings) -> Settings:
    migrate(database)
    return database


@pytest.fixture
def scratch_db(database: Settings) -> Iterator[Settings]:
    """A database of its own, for tests that break things."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    admin_dsn = database.database_dsn().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield Settings(DATABASE_URL=admin_dsn.rsplit("/", 1)[0] + "/" + name)  # type: ignore[call-arg]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_second_migration_run_applies_nothing(migrated: Settings) -> None:
    report = migrate(migrated)
    assert report.applied == []


def test_first_run_creates_every_blueprint_table(scratch_db: Settings) -> None:
    report = migrate(scratch_db)
    assert "base/0001_base.sql" in report.applied
    assert report.timescale is False  # plain PostgreSQL here: the Timescale track is skipped
    with psycopg.connect(scratch_db.database_dsn()) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )}
    assert {
        "strategies", "risk_config", "snapshot_market", "snapshot_indicators",
        "snapshot_calendar", "snapshot_news", "snapshot_account", "trade_ideas",
        "decision_history", "snapshot_bundles", "order_requests", "order_results",
        "control_commands", "command_replies", "dead_letters", "schema_migrations",
    } <= tables


def _insert_decision(conn: psycopg.Connection, decision_id: str) -> None:
    conn.execute(
        "INSERT INTO decision_history (id, account, occurred_at, action, rationale,"
        " gate_state, code_version, hash) VALUES (%s, 'paper-1', now(), 'ai_halted',"
        " 'test', '{}', 'test', 'h')",
        (decision_id,),
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE decision_history SET rationale = 'rewritten'",
        "DELETE FROM decision_history",
        "TRUNCATE decision_history",
    ],
)
def test_decision_history_refuses_changes(migrated: Settings, statement: str) -> None:
    with psycopg.connect(migrated.database_dsn(), autocommit=True) as conn:
        _insert_decision(conn, f"d-{uuid.uuid4()}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM decision_history").fetchone()[0] >= 1


def test_changed_migration_is_refused_not_rerun(scratch_db: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    migrate(scratch_db, folder)
    path = folder / "0001_base.sql"
    path.write_text(path.read_text() + "\n-- edited after release\n")
    with pytest.raises(MigrationError, match="0001_base.sql changed after it was applied"):
        migrate(scratch_db, folder)


def test_new_migration_file_is_applied_in_order(scratch_db: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    migrate(scratch_db, folder)
    (folder / "9999_extra.sql").write_text("CREATE TABLE extra (id INT PRIMARY KEY);")
    assert migrate(scratch_db, folder).applied == ["base/9999_extra.sql"]
    assert migrate(scratch_db, folder).applied == []


def test_badly_named_migration_is_refused(scratch_db: Settings, tmp_path: Path) -> None:
    (tmp_path / "add_table.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name.sql"):
        migrate(scratch_db, tmp_path)


def test_sink_migration_is_applied_once_and_needs_no_timescale(scratch_db: Settings) -> None:
    report = migrate(scratch_db)
    assert report.applied[:2] == ["base/0001_base.sql", "base/0002_sinks.sql"]
    assert not any(name.startswith("timescale/") for name in report.applied)
    assert report.policies == []
    with psycopg.connect(scratch_db.database_dsn()) as conn:
        relations = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"idea_status_history", "sink_lag", "account_daily_pl"} <= relations
    again = migrate(scratch_db)
    assert (again.applied, again.policies) == ([], [])


#: blueprint §5 and §10.2: (table, indexed columns as pg_indexes prints them)
BLUEPRINT_INDEXES = [
    ("snapshot_market", "symbol, timeframe, captured_at DESC"),
    ("snapshot_indicators", "symbol, timeframe, captured_at DESC"),
    ("snapshot_calendar", "currency, event_time"),
    ("snapshot_news", "published_at DESC"),
    ("trade_ideas", "status"),
    ("trade_ideas", "symbol, created_at DESC"),
    ("decision_history", "occurred_at DESC"),
    ("decision_history", "symbol, occurred_at DESC"),
    ("decision_history", "action, occurred_at DESC"),
    ("decision_history", "symbol, action, occurred_at DESC"),
] + [(table, "captured_at DESC") for table in (
    "snapshot_market", "snapshot_indicators", "snapshot_calendar", "snapshot_news",
    "snapshot_account")]


def test_blueprint_indexes_exist(migrated: Settings) -> None:
    with psycopg.connect(migrated.database_dsn()) as conn:
        defs = conn.execute("SELECT tablename, indexdef FROM pg_indexes"
                            " WHERE schemaname = 'public'").fetchall()
    for table, columns in BLUEPRINT_INDEXES:
        assert any(t == table and indexdef.endswith(f"({columns})") for t, indexdef in defs), \
            (table, columns)
