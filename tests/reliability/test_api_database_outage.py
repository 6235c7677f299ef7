"""The API while its database refuses connections: a quick error envelope, then recovery.

The database (its own, for this test) stops accepting connections and its sessions are
terminated, as when PostgreSQL restarts or fails over. Requests must be answered with
503 UNAVAILABLE in the envelope within seconds — not hang for the pool's 30 s wait, not
500 — and the API must serve again once the database is back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE, hash_password, issue_token, jwt_secret
from sinks import queries
from sinks.migrate import migrate
from tests.api.conftest import BASE_URL, api_settings
from topics.catalog import Catalog
from topics.settings import Settings

#: An answer slower than this during an outage counts as a hang.
HANG_SECONDS = 10.0


def _admin(settings: Settings) -> str:
    return settings.database_dsn().rsplit("/", 1)[0] + "/postgres"


def _connections(settings: Settings, name: str, allowed: bool) -> None:
    with psycopg.connect(_admin(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allowed else "false")))
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


@pytest.fixture
def own_database(stack_settings: Settings) -> Iterator[tuple[Settings, str]]:
    """A migrated database of this test's own (the others keep theirs while it is away)."""
    name = f"test_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin(stack_settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = stack_settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    settings = Settings(DATABASE_URL=dsn, AI_TRADER_ENV="test")
    migrate(settings)
    yield settings, name
    _connections(stack_settings, name, True)
    with psycopg.connect(_admin(stack_settings), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def test_api_answers_503_quickly_while_the_database_is_away_and_recovers(
        own_database: tuple[Settings, str], api_catalog: Catalog) -> None:
    settings, name = own_database
    user_id, email = str(uuid.uuid4()), f"outage-{uuid.uuid4().hex[:6]}@example.com"
    with psycopg.connect(settings.database_dsn(), autocommit=True) as conn:
        queries.insert_user(conn, user_id, email, hash_password("outage password 1"))
    token, _ = issue_token(jwt_secret(settings), user_id, email, timedelta(hours=1))
    app = create_app(settings, api_settings(), catalog=api_catalog, migrate_db=False)
    with TestClient(app, base_url=BASE_URL) as client:
        client.cookies.set(COOKIE, token)
        assert client.get("/v1/ai/history").status_code == 200

        _connections(settings, name, False)
        answers = []
        for path in ("/v1/ai/history", "/v1/health", "/v1/account"):
            started = time.monotonic()
            response = client.get(path)
            answers.append((path, response.status_code, time.monotonic() - started,
                            response.json().get("error", {}).get("code")))
        _connections(settings, name, True)

        for _path, status, seconds, code in answers:
            assert status == 503, answers
            assert code == "UNAVAILABLE", answers
            assert seconds < HANG_SECONDS, answers
        deadline = time.monotonic() + 30
        while client.get("/v1/ai/history").status_code != 200:
            assert time.monotonic() < deadline, "the API did not recover"
            time.sleep(0.5)
