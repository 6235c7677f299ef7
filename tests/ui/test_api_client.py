"""The UI's API client against the real API (uvicorn, database, bus, gate double)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api.conftest import PASSWORD
from tests.api.gate_double import MT5_ORDER_ID
from tests.ui.conftest import UiStack
from ui.api_client import ApiClient, ApiError, ApiUnreachable, _http


def test_login_reads_the_secure_cookie_and_sends_it_explicitly(ui_stack: UiStack) -> None:
    client = ApiClient(ui_stack.url)
    login = client.login(ui_stack.email, PASSWORD)
    assert login.user["email"] == ui_stack.email
    assert client.get("/v1/auth/me")["email"] == ui_stack.email
    # the shared transport keeps no cookie: a client without the token is a stranger
    assert not _http(client.base_url).cookies
    with pytest.raises(ApiError) as refused:
        ApiClient(ui_stack.url).get("/v1/auth/me")
    assert (refused.value.status, refused.value.code) == (401, "UNAUTHORIZED")


def test_wrong_password_is_the_envelope(ui_stack: UiStack) -> None:
    with pytest.raises(ApiError) as refused:
        ApiClient(ui_stack.url).login(ui_stack.email, "wrong")
    assert (refused.value.status, refused.value.message) == (401, "wrong email or password")


def test_validation_errors_carry_their_fields(ui_stack: UiStack) -> None:
    client = ui_stack.client()
    with pytest.raises(ApiError) as refused:
        client.approve(ui_stack.seeded.idea_fill, lot_size=-1)
    assert refused.value.code == "INVALID_INPUT"
    assert [where for where, _ in refused.value.field_errors] == ["lot_size"]


def test_approve_answers_executed_with_the_order_id(ui_stack: UiStack) -> None:
    answer = ui_stack.client().approve(ui_stack.seeded.idea_fill)
    assert answer == {"status": "executed", "mt5_order_id": MT5_ORDER_ID, "reason": None}


def test_history_pages_with_the_cursor(ui_stack: UiStack) -> None:
    client = ui_stack.client()
    first, cursor = client.history(limit=1)
    assert len(first) == 1
    assert cursor is not None
    second, _ = client.history(limit=1, cursor=cursor)
    assert second[0]["id"] != first[0]["id"]


def test_an_api_that_is_down_is_unreachable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    with pytest.raises(ApiUnreachable) as down:
        ApiClient(url).get("/v1/health")
    assert down.value.message == f"the API at {url} cannot be reached (ConnectError)"


@pytest.fixture
def proxy_error() -> Iterator[str]:
    """A server answering 502 with an HTML page, as a broken reverse proxy would."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = b"<html><body>Bad Gateway</body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_answer_without_the_envelope_is_still_readable(proxy_error: str) -> None:
    with pytest.raises(ApiError) as failed:
        ApiClient(proxy_error).get("/v1/account")
    assert (failed.value.status, failed.value.code) == (502, "HTTP_ERROR")
    assert failed.value.message == "the API answered HTTP 502 without an explanation"
