"""The API on the real database and bus: one migrated database per session, one set of
uuid-prefixed topics, one app and one gate double per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import hash_password
from api.config import ApiSettings
from sinks import queries
from sinks.migrate import migrate
from tests.api.gate_double import GateDouble
from topics.bus import admin_client, ensure_topics
from topics.catalog import Catalog
from topics.settings import Settings

PASSWORD = "correct horse battery staple"
BASE_URL = "https://testserver"


@pytest.fixture(scope="session")
def api_db(database: Settings) -> Settings:
    """The session's database with every migration applied."""
    migrate(database)
    return database


@pytest.fixture(scope="module")
def api_catalog(bus: Settings) -> Iterator[Catalog]:
    """Every catalog topic under a uuid prefix for this module, deleted afterwards."""
    cat = Catalog(prefix=f"t{uuid.uuid4().hex[:12]}.")
    ensure_topics(bus, cat)
    yield cat
    admin = admin_client(bus)
    for fut in admin.delete_topics(list(cat.physical_topics()), operation_timeout=30).values():
        fut.result()
    del admin


@pytest.fixture(scope="module")
def stack(api_db: Settings, api_catalog: Catalog) -> Settings:
    """Settings pointing at the session database and this module's topics."""
    account = f"acct-{uuid.uuid4().hex[:8]}"
    return api_db.model_copy(update={"topic_prefix": api_catalog.prefix, "account": account})


@pytest.fixture(scope="module")
def gate(stack: Settings, api_catalog: Catalog) -> Iterator[GateDouble]:
    """The gate's test double, answering commands on this module's topics."""
    double = GateDouble(stack, api_catalog).start()
    yield double
    double.stop()


def api_settings(**overrides: object) -> ApiSettings:
    """API settings for tests: short waits."""
    values: dict[str, object] = {"command_timeout_seconds": 5.0, "order_timeout_seconds": 5.0}
    values.update(overrides)
    return ApiSettings.model_validate(values)


@dataclass
class Api:
    """The app, a client with its lifespan running, and a user who can log in."""

    app: FastAPI
    client: TestClient
    settings: Settings
    email: str

    def login(self, client: TestClient | None = None) -> TestClient:
        c = client or self.client
        c.cookies.clear()
        r = c.post("/v1/auth/login", json={"email": self.email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return c

    def conn(self) -> psycopg.Connection:
        return psycopg.connect(self.settings.database_dsn(), autocommit=True)


@pytest.fixture(scope="module")
def api(stack: Settings, api_catalog: Catalog, gate: GateDouble) -> Iterator[Api]:
    """A running app (lifespan on) with a user; the client is logged out."""
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    with psycopg.connect(stack.database_dsn(), autocommit=True) as conn:
        queries.insert_user(conn, str(uuid.uuid4()), email, hash_password(PASSWORD))
    app = create_app(stack, api_settings(), catalog=api_catalog, migrate_db=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield Api(app=app, client=client, settings=stack, email=email)


@pytest.fixture
def authed(api: Api) -> TestClient:
    """The module's client, logged in afresh."""
    return api.login()
