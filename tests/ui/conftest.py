"""The UI against a real API: uvicorn on a free port, the session's migrated database,
this module's uuid-prefixed topics, and the gate's test double answering commands.

The API fixtures are those of tests/api (one database per session, topics and an
account per module); the UI gets the API's URL through AI_TRADER_UI_API_URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from streamlit.testing.v1 import AppTest

from api.app import create_app
from api.auth import hash_password
from sinks import queries
from sinks.migrate import migrate
from tests.api import conftest as api_fixtures
from tests.api.conftest import PASSWORD, api_settings
from tests.api.gate_double import GateDouble
from tests.api.server import serving
from tests.conftest import scratch_database
from tests.ui.seed import Seeded, seed
from topics.catalog import Catalog
from topics.settings import Settings
from ui import state
from ui.api_client import ApiClient

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"

# The API tests' fixtures, reused: per module the uuid-prefixed topics, an account and
# the gate double answering on them.
api_catalog = api_fixtures.api_catalog
stack = api_fixtures.stack
gate = api_fixtures.gate


@pytest.fixture(scope="module")
def api_db(stack_settings: Settings) -> Iterator[Settings]:
    """A migrated database of this module's own: the screens show "the newest" row of
    their tables, which rows written by other test modules would change."""
    with scratch_database(stack_settings) as settings:
        migrate(settings)
        yield settings


@dataclass
class UiStack:
    """The API the UI talks to, who can log in, what was seeded, and the gate double."""

    url: str
    app: FastAPI
    settings: Settings
    email: str
    gate: GateDouble
    seeded: Seeded

    def conn(self) -> psycopg.Connection:
        return psycopg.connect(self.settings.database_dsn(), autocommit=True)

    def client(self) -> ApiClient:
        """A logged-in API client (as the UI holds one)."""
        c = ApiClient(self.url)
        c.login(self.email, PASSWORD)
        return c


@pytest.fixture(scope="module")
def ui_stack(stack: Settings, api_catalog: Catalog, gate: GateDouble) -> Iterator[UiStack]:
    """A real API served by uvicorn, with a user and every screen's data seeded."""
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    with psycopg.connect(stack.database_dsn(), autocommit=True) as conn:
        queries.insert_user(conn, str(uuid.uuid4()), email, hash_password(PASSWORD))
        seeded = seed(conn, stack.account)
    gate.ideas.update({seeded.idea_fill: "fill", seeded.idea_blocked: "risk",
                       seeded.idea_reject: "fill"})
    gate.strategies.add(seeded.strategy["id"])
    app = create_app(stack, api_settings(), catalog=api_catalog, migrate_db=False)
    with serving(app) as url:
        yield UiStack(url=url, app=app, settings=stack, email=email, gate=gate, seeded=seeded)


@pytest.fixture
def ui_env(ui_stack: UiStack, monkeypatch: pytest.MonkeyPatch) -> UiStack:
    """The UI process's environment points at the test API, refreshing rarely."""
    monkeypatch.setenv("AI_TRADER_UI_API_URL", ui_stack.url)
    monkeypatch.setenv("AI_TRADER_UI_REFRESH_SECONDS", "3600")
    monkeypatch.setenv("AI_TRADER_UI_TIMEZONE", "Africa/Johannesburg")
    state.changed()  # no cached read from another test
    return ui_stack


def app_test(ui: UiStack, *, logged_in: bool = True) -> AppTest:
    """The app, logged in (a real token from the API in the session) unless asked not to."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    if logged_in:
        client = ApiClient(ui.url)
        login = client.login(ui.email, PASSWORD)
        at.session_state[state.LOGIN_KEY] = login.token
        at.session_state[state.USER] = login.user
    return at


def page(ui: UiStack, path: str) -> AppTest:
    """The app logged in and switched to `path` (e.g. `screens/ideas.py`), run once."""
    at = app_test(ui).run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at
