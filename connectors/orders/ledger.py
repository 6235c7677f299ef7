"""The executor's durable ledger (SQLite, fsync'd on every commit).

One row per request id (the idea id, the idempotency key) with its state:

    received -> sending -> sent | failed

`sent` and `failed` are terminal and hold the published `OrderResult`, so a
request seen again (a redelivery after a crash) gets the same result republished,
never a second order. `sending` is written *before* the broker is called: a row
found in `sending` after a restart means "maybe sent" and is resolved by looking
the order up at the broker. Small facts the executor must remember across
restarts (the halted flag) live in `facts`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.core.tagged_json import dumps, loads

RECEIVED, SENDING, SENT, FAILED = "received", "sending", "sent", "failed"
TERMINAL = frozenset({SENT, FAILED})
COMMENT_PREFIX = "ait:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    request_id TEXT PRIMARY KEY,
    comment TEXT NOT NULL UNIQUE,
    idea_id TEXT NOT NULL,
    state TEXT NOT NULL,
    request_json TEXT NOT NULL,
    result_json TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def compact_id(request_id: str) -> str:
    """The broker comment for a request: `ait:` + 26 hex chars (MT5 comments hold 31).

    A uuid keeps its own hex; any other id is hashed, so the form is always the same.
    """
    try:
        digest = uuid.UUID(request_id).hex
    except ValueError:
        digest = hashlib.sha256(request_id.encode()).hexdigest()
    return COMMENT_PREFIX + digest[:26]


@dataclass(frozen=True)
class Entry:
    """One request as the ledger knows it."""

    request_id: str
    comment: str
    idea_id: str
    state: str
    request: dict[str, Any]
    result: dict[str, Any] | None

    @property
    def terminal(self) -> bool:
        """True once a result is recorded."""
        return self.state in TERMINAL


class Ledger:
    """SQLite in WAL mode with `synchronous=FULL`: a commit is on disk when it returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def get(self, request_id: str) -> Entry | None:
        """The entry of a request id."""
        row = self._db.execute(
            "SELECT request_id, comment, idea_id, state, request_json, result_json "
            "FROM orders WHERE request_id = ?", (request_id,)).fetchone()
        return _entry(row) if row else None

    def by_comment(self, comment: str) -> Entry | None:
        """The entry whose broker comment this is (to name the idea of a position)."""
        row = self._db.execute(
            "SELECT request_id, comment, idea_id, state, request_json, result_json "
            "FROM orders WHERE comment = ?", (comment,)).fetchone()
        return _entry(row) if row else None

    def receive(self, request: dict[str, Any], now: datetime) -> Entry:
        """Record a request as received (no-op if already known); returns its entry."""
        rid = request["request_id"]
        self._db.execute(
            "INSERT OR IGNORE INTO orders(request_id, comment, idea_id, state, request_json, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (rid, compact_id(rid), request["idea_id"], RECEIVED, dumps(request),
             now.isoformat()))
        entry = self.get(rid)
        assert entry is not None  # noqa: S101 - just inserted
        return entry

    def mark(self, request_id: str, state: str, now: datetime,
             result: dict[str, Any] | None = None) -> None:
        """Move a request to a new state (terminal states carry their result)."""
        if state in TERMINAL and result is None:
            raise ValueError("a terminal state needs its result")
        self._db.execute(
            "UPDATE orders SET state = ?, result_json = ?, updated_at = ? WHERE request_id = ?",
            (state, dumps(result) if result is not None else None, now.isoformat(), request_id))

    def in_state(self, state: str) -> list[Entry]:
        """Entries currently in a state (reconciliation looks at `sending`)."""
        rows = self._db.execute(
            "SELECT request_id, comment, idea_id, state, request_json, result_json "
            "FROM orders WHERE state = ?", (state,)).fetchall()
        return [_entry(r) for r in rows]

    def comments(self) -> set[str]:
        """Every comment the ledger ever issued."""
        return {r[0] for r in self._db.execute("SELECT comment FROM orders")}

    def counts(self) -> dict[str, int]:
        """Number of entries per state."""
        return dict(self._db.execute("SELECT state, count(*) FROM orders GROUP BY state"))

    def fact(self, name: str) -> str | None:
        """A remembered value."""
        row = self._db.execute("SELECT value FROM facts WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_fact(self, name: str, value: str) -> None:
        """Remember a value."""
        self._db.execute("INSERT INTO facts(name, value) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(row[0], row[1], row[2], row[3], loads(row[4]),
                 loads(row[5]) if row[5] else None)
