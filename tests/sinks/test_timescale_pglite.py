"""The TimescaleDB track of the migrations on a real TimescaleDB (2.23, inside PGlite).

infra/pglite serves PGlite with the timescaledb extension on the PostgreSQL wire
protocol; it has no COPY, so this is the DDL test: hypertables, compression and
retention policies from the settings, the daily P/L continuous aggregate, re-runs that
change nothing, and queries that give the same answers here and on plain PostgreSQL.
The server must start: when it cannot, the test fails (it is not skipped).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sinks.migrate import migrate
from tests.factories import T0
from topics.settings import Settings

REPO = Path(__file__).resolve().parents[2]
HYPERTABLES = {"snapshot_market", "snapshot_indicators", "snapshot_account",
               "snapshot_calendar", "snapshot_news"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(port: int, **env: Any) -> Settings:
    dsn = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    return Settings(DATABASE_URL=dsn, AI_TRADER_ENV="test", **env)  # type: ignore[call-arg]


def _wait_ready(proc: subprocess.Popen[str], port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            psycopg.connect(_settings(port).database_dsn(), connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.5)
    proc.kill()
    out, _ = proc.communicate()
    pytest.fail(f"TimescaleDB-in-PGlite did not start on port {port}: {out[-2000:]}", False)


@pytest.fixture(scope="module")
def timescale(stack_settings: Settings) -> Iterator[int]:
    """A fresh in-memory TimescaleDB server for this module; its port."""
    env = {**os.environ, "AI_TRADER_STATE_DIR": str(stack_settings.state_dir)}
    install = subprocess.run(["bash", str(REPO / "infra/pglite/install.sh")], env=env,
                             capture_output=True, text=True, timeout=600)
    if install.returncode != 0:
        pytest.fail(f"infra/pglite/install.sh failed: {install.stderr[-2000:]}", False)
    port = _free_port()
    server = stack_settings.state_dir / "pglite" / "server.mjs"
    proc = subprocess.Popen(["node", str(server), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    _wait_ready(proc, port)
    yield port
    proc.terminate()
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def _connect(settings: Settings, autocommit: bool = False) -> psycopg.Connection:
    """PGlite serves every client from one session: no server-side prepared statements."""
    return psycopg.connect(settings.database_dsn(), autocommit=autocommit,
                           prepare_threshold=None)


def _query(settings: Settings, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with _connect(settings) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def _jobs(settings: Settings, proc: str) -> dict[str, str]:
    key = {"policy_compression": "compress_after", "policy_retention": "drop_after"}[proc]
    rows = _query(settings, "SELECT hypertable_name, config ->> %s FROM"
                            " timescaledb_information.jobs WHERE proc_name = %s", (key, proc))
    return dict(rows)


def test_timescale_track_hypertables_policies_and_reruns(timescale: int) -> None:
    settings = _settings(timescale, TIMESCALE_COMPRESS_AFTER_DAYS=3,
                         TIMESCALE_RETENTION_DAYS=30)
    report = migrate(settings)
    assert report.timescale is True
    assert {"base/0001_base.sql", "base/0002_sinks.sql", "timescale/0001_hypertables.sql",
            "timescale/0002_daily_pl.sql"} <= set(report.applied)
    assert report.applied[-2:] == ["timescale/0001_hypertables.sql",
                                   "timescale/0002_daily_pl.sql"]
    assert len(report.policies) == 3 + 5
    hypertables = {r[0] for r in _query(settings, "SELECT hypertable_name FROM"
                                        " timescaledb_information.hypertables"
                                        " WHERE hypertable_schema = 'public'")}
    assert hypertables == HYPERTABLES
    assert _jobs(settings, "policy_compression") == {
        "snapshot_market": "3 days", "snapshot_indicators": "3 days",
        "snapshot_account": "3 days"}
    assert _jobs(settings, "policy_retention") == {t: "30 days" for t in HYPERTABLES}
    segments = _query(settings, "SELECT attname FROM timescaledb_information.compression_settings"
                                " WHERE hypertable_name = 'snapshot_market'"
                                " AND segmentby_column_index IS NOT NULL"
                                " ORDER BY segmentby_column_index")
    assert segments == [("symbol",), ("timeframe",)]
    caggs = _query(settings, "SELECT view_name, materialized_only FROM"
                             " timescaledb_information.continuous_aggregates")
    assert caggs == [("account_daily_pl", False)]
    refresh = _query(settings, "SELECT count(*) FROM timescaledb_information.jobs WHERE"
                               " proc_name = 'policy_refresh_continuous_aggregate'")
    assert refresh == [(1,)]

    again = migrate(settings)
    assert (again.applied, again.policies) == ([], [])

    longer = _settings(timescale, TIMESCALE_COMPRESS_AFTER_DAYS=3, TIMESCALE_RETENTION_DAYS=60)
    changed = migrate(longer)
    assert changed.applied == []
    assert len(changed.policies) == 5  # only the retention policies follow the new setting
    assert _jobs(longer, "policy_retention") == {t: "60 days" for t in HYPERTABLES}
    assert _jobs(longer, "policy_compression")["snapshot_market"] == "3 days"


ACCOUNT_ROWS = [  # (minutes after T0, equity, balance, realized)
    (0, "10000.00", "10000.00", "0.00"), (30, "10050.00", "10000.00", "0.00"),
    (90, "10120.00", "10100.00", "100.00"), (24 * 60 + 5, "10090.00", "10100.00", "0.00"),
    (24 * 60 + 60, "9980.00", "9990.00", "-110.00"),
]

SAME_QUERIES = [
    "SELECT day, account, open_equity, close_equity, equity_change, close_balance,"
    " realized_pl, max_equity, min_equity, samples FROM account_daily_pl"
    " WHERE account = 'paper-1' ORDER BY day",
    "SELECT date_bin('5 minutes', open_time, TIMESTAMPTZ '2000-01-01') AS bucket, symbol,"
    " max(high), min(low), sum(volume) FROM snapshot_market GROUP BY 1, 2 ORDER BY 1, 2",
]


def _fill(settings: Settings) -> None:
    """The same rows with INSERT (PGlite has no COPY)."""
    with _connect(settings) as conn:
        for minutes, equity, balance, realized in ACCOUNT_ROWS:
            conn.execute(
                "INSERT INTO snapshot_account (account, broker, balance, equity, margin_used,"
                " margin_free, open_pl, realized_pl_today, open_positions, positions,"
                " captured_at) VALUES ('paper-1', 'paper', %s, %s, 0, %s, 0, %s, 0, '[]', %s)",
                (Decimal(balance), Decimal(equity), Decimal(equity), Decimal(realized),
                 T0 + timedelta(minutes=minutes)))
        for i in range(12):
            conn.execute(
                "INSERT INTO snapshot_market (symbol, timeframe, open_time, open, high, low,"
                " close, volume, source) VALUES (%s, 'M1', %s, 1, %s, %s, 1, %s, 'test')",
                ("XAUUSD" if i % 2 else "EURUSD", T0 + timedelta(minutes=i), 2 + i, 1 - i / 100,
                 10 * i))


def test_the_same_queries_answer_the_same_on_timescale_and_plain_postgres(
        timescale: int, sink_db: Settings) -> None:
    settings = _settings(timescale)
    migrate(settings)  # no-op when the previous test ran first
    _fill(settings)
    _fill(sink_db)
    for statement in SAME_QUERIES:
        on_timescale = _query(settings, statement)
        assert on_timescale, statement
        assert on_timescale == _query(sink_db, statement), statement
    day1 = _query(settings, SAME_QUERIES[0])[0]
    assert day1[2:7] == (Decimal("10000.00"), Decimal("10120.00"), Decimal("120.00"),
                         Decimal("10100.00"), Decimal("100.00"))


def test_decision_history_is_append_only_on_timescale_too(timescale: int) -> None:
    settings = _settings(timescale)
    migrate(settings)
    with _connect(settings, autocommit=True) as conn:
        conn.execute("INSERT INTO decision_history (id, account, occurred_at, action, rationale,"
                     " gate_state, code_version, hash) VALUES ('d-ts', 'paper-1', now(),"
                     " 'ai_halted', 'test', '{}', 'test', 'h')")
        for statement in ("UPDATE decision_history SET rationale = 'x'",
                          "DELETE FROM decision_history", "TRUNCATE decision_history"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
