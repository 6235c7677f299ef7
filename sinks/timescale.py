"""TimescaleDB policies kept in step with the settings on every start.

Compression and retention intervals come from `TIMESCALE_COMPRESS_AFTER_DAYS` and
`TIMESCALE_RETENTION_DAYS`. They are not written into a migration (a changed setting
would then look like an edited migration): `sync_policies` compares each hypertable's
policy with the setting and replaces only the ones that differ, so a re-run with the
same settings changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

from topics.settings import Settings

log = logging.getLogger(__name__)

#: Hypertables whose old chunks are compressed (their compression settings are in
#: migrations/timescale/0001_hypertables.sql).
COMPRESSED = ("snapshot_market", "snapshot_indicators", "snapshot_account")
#: Hypertables whose chunks older than the retention are dropped. Snapshot bundles keep
#: their own copy of everything a decision used, so replay does not depend on these.
RETAINED = ("snapshot_market", "snapshot_indicators", "snapshot_account",
            "snapshot_calendar", "snapshot_news")


@dataclass(frozen=True)
class Policy:
    """One kind of TimescaleDB policy: its job name, config key and add/remove functions."""

    proc: str
    config_key: str
    add: str
    remove: str


COMPRESSION = Policy("policy_compression", "compress_after",
                     "add_compression_policy", "remove_compression_policy")
RETENTION = Policy("policy_retention", "drop_after",
                   "add_retention_policy", "remove_retention_policy")


def _current(conn: psycopg.Connection, policy: Policy, table: str) -> str | None:
    row = conn.execute(
        "SELECT config ->> %s FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_schema = current_schema()"
        " AND hypertable_name = %s",
        (policy.config_key, policy.proc, table),
    ).fetchone()
    return None if row is None else row[0]


def _same_interval(conn: psycopg.Connection, current: str, days: int) -> bool:
    row = conn.execute("SELECT %s::interval = make_interval(days => %s)",
                       (current, days)).fetchone()
    return bool(row and row[0])


def _sync_one(conn: psycopg.Connection, policy: Policy, table: str, days: int) -> str | None:
    current = _current(conn, policy, table)
    if current is not None and _same_interval(conn, current, days):
        return None
    with conn.transaction():
        if current is not None:
            conn.execute(sql.SQL("SELECT {}(%s, if_exists => TRUE)")
                         .format(sql.Identifier(policy.remove)), (table,))
        conn.execute(sql.SQL("SELECT {}(%s, make_interval(days => %s))")
                     .format(sql.Identifier(policy.add)), (table, days))
    change = f"{policy.config_key} {table}: {current or 'none'} -> {days} days"
    log.info("timescale policy %s", change)
    return change


def sync_policies(conn: psycopg.Connection, settings: Settings) -> list[str]:
    """Make every compression and retention policy match the settings; the changes made."""
    changes: list[str] = []
    for table in COMPRESSED:
        change = _sync_one(conn, COMPRESSION, table, settings.timescale_compress_after_days)
        if change:
            changes.append(change)
    for table in RETAINED:
        change = _sync_one(conn, RETENTION, table, settings.timescale_retention_days)
        if change:
            changes.append(change)
    return changes
