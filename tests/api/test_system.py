"""Health, metrics, the error envelope everywhere, structured logs without secrets, and the
OpenAI test connection against a local server that answers like the OpenAI API."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE
from tests.api.conftest import BASE_URL, PASSWORD, Api, api_settings
from tests.fakes.openai_server import DEFAULT_KEY, FakeOpenAI
from topics.catalog import Catalog
from topics.logs import configure_logging
from topics.settings import Settings


def _envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return dict(body["error"])


def test_health_is_public_and_reports_each_dependency(api: Api) -> None:
    api.client.cookies.clear()
    with api.conn() as conn:
        conn.execute("INSERT INTO feed_health (feed, status, items_total, dead_letters_total, "
                     "reported_at, last_error) VALUES ('calendar', 'error', 0, 0, now(), "
                     "'HTTP 503 from provider') ON CONFLICT (feed) DO NOTHING")
    r = api.client.get("/v1/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checks"]["bus"]["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["feeds"]["status"] in ("degraded", "error")
    assert body["status"] == "degraded"
    assert set(body["checks"]) == {"bus", "database", "broker", "feeds", "gate"}
    assert "postgres" not in r.text
    assert "password" not in r.text.lower()


def test_metrics_are_prometheus_text(api: Api, authed: TestClient) -> None:
    authed.get("/v1/auth/me")
    r = api.client.get("/v1/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'ai_trader_api_requests_total{endpoint="/v1/auth/me",method="GET",status="200"}' \
        in r.text


def test_every_error_is_the_envelope(api: Api, authed: TestClient) -> None:
    _envelope(authed.get("/v1/no/such/thing"), 404, "NOT_FOUND")
    _envelope(authed.delete("/v1/settings/risk"), 405, "METHOD_NOT_ALLOWED")
    _envelope(authed.get("/v1/ai/history", params={"limit": "many"}), 400, "INVALID_INPUT")

    @api.app.get("/v1/test-boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    err = _envelope(authed.get("/v1/test-boom", headers={"X-Request-ID": "req-12345678"}), 500,
                    "INTERNAL")
    assert "kaboom" not in err["message"]
    assert err["details"]["request_id"] == "req-12345678"


def test_openapi_is_complete(api: Api) -> None:
    doc = api.client.get("/v1/openapi.json").json()
    paths = doc["paths"]
    for path in ("/v1/auth/login", "/v1/auth/logout", "/v1/auth/me", "/v1/settings/risk",
                 "/v1/strategies", "/v1/strategies/{strategy_id}", "/v1/ai/ideas/active",
                 "/v1/ai/ideas/{idea_id}/approve", "/v1/ai/ideas/{idea_id}/reject",
                 "/v1/ai/history", "/v1/ai/history/{decision_id}/snapshot", "/v1/account",
                 "/v1/account/history", "/v1/analysis", "/v1/data/calendar", "/v1/data/news",
                 "/v1/data/indicators", "/v1/ai/test-connection", "/v1/health", "/v1/metrics",
                 "/v1/control/kill", "/v1/control/resume", "/v1/account/refresh"):
        assert path in paths, path
    for path, ops in paths.items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            assert "400" in op["responses"], (method, path)
            if path not in ("/v1/health", "/v1/metrics", "/v1/auth/login"):
                assert op["security"] == [{"cookieAuth": []}], (method, path)
    assert "StrategyDefinition" in doc["components"]["schemas"]
    assert "Strategy_entry_conditions" in doc["components"]["schemas"]


@contextmanager
def _app_with_secrets(api: Api, **env: str) -> Iterator[tuple[TestClient, Settings]]:
    settings = api.settings.model_copy(update=dict(env))
    app = create_app(settings, api_settings(openai_test_timeout_seconds=1.0),
                     catalog=Catalog(settings.topic_prefix), migrate_db=False)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client, settings


def test_logs_are_json_with_request_context_and_no_secrets(api: Api) -> None:
    from pydantic import SecretStr

    stream = io.StringIO()
    secrets = {"jwt_secret": "jwt-secret-value-that-is-long-enough-000",
               "openai_api_key": "sk-live-0123456789abcdefghijklmnop",
               "mt5_password": "mt5-P4ssw0rd!"}
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    with _app_with_secrets(api, **{k: SecretStr(v) for k, v in secrets.items()},
                           openai_base_url="http://127.0.0.1:9/v1") as (client, settings):
        configure_logging("api", settings, stream=stream)
        from api.app import _install_log_context

        _install_log_context()
        try:
            client.post("/v1/auth/login", json={"email": api.email, "password": "wrong-pass-1"})
            r = client.post("/v1/auth/login", json={"email": api.email, "password": PASSWORD})
            token = client.cookies.get(COOKIE)
            assert r.status_code == 200
            assert token
            client.post("/v1/ai/test-connection")

            @client.app.get("/v1/test-leak")  # type: ignore[attr-defined]
            def leak() -> None:
                raise RuntimeError(f"failed with key {secrets['openai_api_key']} "
                                   f"and {secrets['jwt_secret']}")

            client.get("/v1/test-leak", headers={"X-Request-ID": "leak-1234567"})
        finally:
            root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [entry for entry in lines if entry["message"] == "request"]
    login_ok = next(e for e in requests if e["endpoint"] == "/v1/auth/login" and
                    e["status"] == 200)
    assert login_ok["user_id"]
    assert login_ok["request_id"]
    assert login_ok["duration_ms"] >= 0
    assert login_ok["service"] == "api"
    assert login_ok["method"] == "POST"
    unhandled = next(e for e in lines if e["message"] == "unhandled error")
    assert unhandled["request_id"] == "leak-1234567"
    assert "RuntimeError" in unhandled["exc"]
    for value in [*secrets.values(), PASSWORD, "wrong-pass-1", token]:
        assert value not in text
    assert "[REDACTED]" in text


class _Silent:
    """A TCP server that accepts and never answers (the client times out)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"


@pytest.mark.parametrize(("key", "url", "status", "message"), [
    (DEFAULT_KEY, "fake", "ok", "AI online"),
    ("sk-wrong-key-000000000000", "fake", "error", "Invalid OpenAI API key"),
    (DEFAULT_KEY, "silent", "error", "AI endpoint unreachable"),
    (DEFAULT_KEY, "closed", "error", "AI endpoint unreachable"),
    (None, "fake", "error", "OpenAI API key not configured"),
])
def test_openai_test_connection(api: Api, authed: TestClient, key: str | None, url: str,
                                status: str, message: str) -> None:
    from pydantic import SecretStr

    svc = api.app.state.services
    saved = (svc.settings, svc.api)
    silent = _Silent()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    closed.close()
    with FakeOpenAI() as fake:
        base = {"fake": fake.url, "silent": silent.url, "closed": closed_url}[url]
        svc.settings = svc.settings.model_copy(update={
            "openai_api_key": SecretStr(key) if key else None, "openai_base_url": base})
        svc.api = api_settings(openai_test_timeout_seconds=1.0)
        try:
            r = authed.post("/v1/ai/test-connection")
        finally:
            svc.settings, svc.api = saved
            silent.sock.close()
        assert r.status_code == 200
        assert r.json() == {"status": status, "message": message}
        if url == "fake" and key:
            assert [q.path for q in fake.requests] == ["/v1/models"]
