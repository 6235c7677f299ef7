"""Property tests from the app's own OpenAPI document (schemathesis), authenticated: no
5xx, every response as documented, every error in the §9.1 envelope. Commands are
answered by the gate double on the real bus; reads hit the real database. The
example count stays small so the suite stays fast on two cores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.core.parameters import ParameterLocation

from api.app import create_app
from api.auth import COOKIE, hash_password, issue_token, jwt_secret
from api.config import ApiSettings
from sinks import queries
from tests.api.conftest import api_settings
from tests.api.gate_double import GateDouble
from tests.api.server import serving
from topics.catalog import Catalog
from topics.settings import Settings


@pytest.fixture(scope="module")
def token(stack: Settings) -> str:
    """A valid session token for a user of the test database."""
    user_id, email = str(uuid.uuid4()), f"fuzz-{uuid.uuid4().hex[:6]}@example.com"
    with psycopg.connect(stack.database_dsn(), autocommit=True) as conn:
        queries.insert_user(conn, user_id, email, hash_password("fuzz password 123"))
    value, _ = issue_token(jwt_secret(stack), user_id, email, timedelta(hours=1))
    return value


@pytest.fixture(scope="module")
def base_url(stack: Settings, api_catalog: Catalog, gate: GateDouble) -> Iterator[str]:
    """The app served by uvicorn on the test stack (the gate double answers commands)."""
    app = create_app(stack, api_settings(command_timeout_seconds=3.0,
                                         order_timeout_seconds=3.0),
                     catalog=api_catalog, migrate_db=False)
    with serving(app) as url:
        yield url


# The document is the app's own; building it needs no database or bus.
_DOC = create_app(Settings(AI_TRADER_ENV="test"), ApiSettings()).openapi()  # type: ignore[call-arg]
# logging out would end the session the other operations use
schema = schemathesis.openapi.from_dict(_DOC).exclude(path="/v1/auth/logout")
_NOT = {"positive_data_acceptance"}  # our cross-field rules are stricter than JSON Schema


def _authenticate(case: Any, token: str) -> None:
    """A valid session where the case's cookie is meant to be valid; otherwise the case keeps
    its own (missing or malformed) cookie, so that refusing it is what is tested."""
    cookies = dict(case.cookies or {})
    component = case.meta.components.get(ParameterLocation.COOKIE) if case.meta else None
    if COOKIE in cookies and not (component and component.mode == GenerationMode.NEGATIVE):
        case.cookies = {**cookies, COOKIE: token}


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_api_conforms_to_its_openapi(case: Any, token: str, base_url: str) -> None:
    _authenticate(case, token)
    response = case.call(base_url=base_url, timeout=30)
    case.validate_response(response, excluded_checks=[
        c for c in CHECKS.get_all() if c.__name__ in _NOT])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details"}
