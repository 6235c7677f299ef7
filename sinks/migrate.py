"""Ordered SQL migrations, applied at start and recorded in `schema_migrations`.

`sinks/migrations/NNNN_name.sql` run in order, each in its own transaction.
Re-running is a no-op; a migration whose file changed after it was applied is
refused (its checksum no longer matches) instead of being run again.

TimescaleDB features live in `sinks/migrations/timescale/` and are applied only
when `CREATE EXTENSION timescaledb` succeeds, so everything works on plain
PostgreSQL and switches the features on where the extension exists. Their
compression and retention policies follow the settings and are synced on every
run (`sinks.timescale.sync_policies`), outside the migrations: changing a setting
is not editing a migration.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from sinks.timescale import sync_policies
from topics.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# One fixed key for pg_advisory_lock: two processes starting together migrate once.
_LOCK_KEY = 7_210_001


class MigrationError(RuntimeError):
    """The database schema cannot be brought to the expected version."""


@dataclass
class MigrationReport:
    """What `migrate` applied, and whether TimescaleDB features are on."""

    applied: list[str] = field(default_factory=list)
    timescale: bool = False
    policies: list[str] = field(default_factory=list)


def _files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.glob("*.sql"))
    for path in files:
        if not _NAME.match(path.name):
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
    return files


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _try_timescale(conn: psycopg.Connection) -> bool:
    """True when the timescaledb extension is (or can be made) available."""
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return True
    except psycopg.Error as exc:
        log.info("timescaledb not available, plain PostgreSQL: %s", str(exc).splitlines()[0])
        return False


def _apply(
    conn: psycopg.Connection, track: str, path: Path, text: str, applied: dict[str, str]
) -> bool:
    key = f"{track}/{path.name}"
    digest = _checksum(text)
    if key in applied:
        if applied[key] != digest:
            raise MigrationError(f"{key} changed after it was applied (checksum differs)")
        return False
    with conn.transaction():
        conn.execute(sql.SQL(text))  # trusted: a file from the repository
        conn.execute(
            "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)", (key, digest)
        )
    log.info("applied migration %s", key)
    return True


def migrate(settings: Settings, directory: Path = MIGRATIONS) -> MigrationReport:
    """Bring the database to the latest schema; safe to call from every process at start."""
    report = MigrationReport()
    # prepare_threshold=None: one-off statements gain nothing from server-side prepared
    # statements, and servers that share a session between clients (PgBouncer in
    # transaction mode, PGlite) would see their names collide.
    with psycopg.connect(settings.database_dsn(), autocommit=True,
                         prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            _migrate_locked(conn, settings, directory, report)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return report


def _migrate_locked(
    conn: psycopg.Connection, settings: Settings, directory: Path, report: MigrationReport
) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, checksum TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    rows = conn.execute("SELECT name, checksum FROM schema_migrations").fetchall()
    applied = {name: checksum for name, checksum in rows}
    report.timescale = _try_timescale(conn)
    tracks = [("base", directory)]
    if report.timescale:
        tracks.append(("timescale", directory / "timescale"))
    for track, folder in tracks:
        for path in _files(folder):
            text = path.read_text(encoding="utf-8")
            if _apply(conn, track, path, text, applied):
                report.applied.append(f"{track}/{path.name}")
    if report.timescale:
        report.policies = sync_policies(conn, settings)
