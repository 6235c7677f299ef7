"""The UI's only way to the pipeline: a small synchronous client of the REST API.

Streamlit runs on the server, so the UI calls the API server side with httpx. The
session's JWT (the `auth_token` cookie of `POST /v1/auth/login`) is kept by the caller
(in `st.session_state`) and sent explicitly on every request: the cookie is `Secure`,
and a cookie jar would not send it back over the plain-http loopback, nor should one
user's cookie ever sit in a jar shared by several sessions. The shared httpx client
therefore refuses to store any cookie.

Every non-2xx answer becomes an `ApiError` carrying the envelope's code, message and
details (never a traceback); an API that cannot be reached is `ApiUnreachable`.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx

COOKIE = "auth_token"

Params = Mapping[str, str | int | float | Sequence[str] | None]


@dataclass(eq=False)  # exceptions compare and hash by identity
class ApiError(Exception):
    """A non-2xx answer of the API, from its `{"error": {code, message, details}}` envelope."""

    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def field_errors(self) -> list[tuple[str, str]]:
        """`(where, message)` pairs from the details: FastAPI validation (`loc`) or the
        strategy validator (`path`), in the API's order."""
        out: list[tuple[str, str]] = []
        for err in self.details.get("errors") or []:
            if not isinstance(err, Mapping):
                continue
            if "path" in err:
                where = str(err["path"])
            else:
                loc = [str(p) for p in err.get("loc") or [] if p not in ("body", "query")]
                where = ".".join(loc)
            out.append((where, str(err.get("message", ""))))
        return out


class ApiUnreachable(ApiError):
    """The API did not answer (down, wrong address, or too slow)."""


def _no_cookies() -> http.cookiejar.CookieJar:
    """A jar that stores and sends nothing (the token travels in an explicit header)."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


@lru_cache(maxsize=8)
def _http(base_url: str) -> httpx.Client:
    """One pooled, cookie-less httpx client per API address, shared by every session."""
    return httpx.Client(base_url=base_url, cookies=_no_cookies(), follow_redirects=False,
                        headers={"User-Agent": "ai-trader-ui", "Accept": "application/json"})


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        err = body["error"]
        return ApiError(response.status_code, str(err["code"]), str(err["message"]),
                        dict(err.get("details") or {}))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "HTTP_ERROR",
                        f"the API answered HTTP {response.status_code} without an explanation")


@dataclass(frozen=True)
class Login:
    """A successful login: the session token and who logged in."""

    token: str
    user: dict[str, Any]


class ApiClient:
    """Calls of the REST API on behalf of one logged-in session (or none, for login)."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 read_timeout: float = 10.0, command_timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.read_timeout = read_timeout
        self.command_timeout = command_timeout

    # --- transport --------------------------------------------------------------------
    def _request(self, method: str, path: str, *, params: Params | None = None,
                 body: Any = None, timeout: float | None = None) -> httpx.Response:
        headers = {"Cookie": f"{COOKIE}={self.token}"} if self.token else {}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = _http(self.base_url).request(
                method, path, params=clean, json=body, headers=headers,
                timeout=timeout or self.read_timeout)
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(0, "UNREACHABLE", f"the API at {self.base_url} did not answer "
                                                   "in time") from exc
        except httpx.HTTPError as exc:
            raise ApiUnreachable(0, "UNREACHABLE", f"the API at {self.base_url} cannot be "
                                                   f"reached ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def get(self, path: str, params: Params | None = None) -> Any:
        """GET a JSON body."""
        return self._request("GET", path, params=params).json()

    def command(self, method: str, path: str, body: Any = None) -> Any:
        """A change: waits as long as the pipeline may take to answer."""
        response = self._request(method, path, body=body, timeout=self.command_timeout)
        return response.json() if response.content else None

    # --- auth -------------------------------------------------------------------------
    def login(self, email: str, password: str) -> Login:
        """Check the credentials; the token is read from the `auth_token` cookie."""
        response = self._request("POST", "/v1/auth/login",
                                 body={"email": email, "password": password})
        token = response.cookies.get(COOKIE)
        if not token:
            raise ApiError(response.status_code, "HTTP_ERROR",
                           "the API accepted the login but set no session cookie")
        self.token = token
        return Login(token=token, user=dict(response.json().get("user") or {}))

    def logout(self) -> None:
        """Revoke this session's token on the server."""
        self._request("POST", "/v1/auth/logout")
        self.token = None

    # --- reads ------------------------------------------------------------------------
    def history(self, *, symbol: str | None = None, action: str | None = None,
                since: str | None = None, limit: int = 100,
                cursor: str | None = None) -> tuple[list[Any], str | None]:
        """One page of the decision history, newest first, and the next page's cursor."""
        response = self._request("GET", "/v1/ai/history", params={
            "symbol": symbol, "action": action, "since": since, "limit": limit,
            "cursor": cursor})
        return list(response.json()), response.headers.get("X-Next-Cursor")

    # --- changes (all through the gate) -----------------------------------------------
    def approve(self, idea_id: str, lot_size: float | None = None) -> dict[str, Any]:
        """`{"status": "executed", "mt5_order_id"}` or `{"status": "blocked", "reason"}`."""
        body = {"lot_size": lot_size} if lot_size is not None else None
        return dict(self.command("POST", f"/v1/ai/ideas/{idea_id}/approve", body))

    def reject(self, idea_id: str, reason: str | None = None) -> dict[str, Any]:
        """The idea is rejected by a human (logged `human_rejected`)."""
        body = {"reason": reason} if reason else None
        return dict(self.command("POST", f"/v1/ai/ideas/{idea_id}/reject", body))

    def kill(self, reason: str) -> dict[str, Any]:
        """Engage the kill switch."""
        return dict(self.command("POST", "/v1/control/kill", {"reason": reason}))

    def resume(self, reason: str | None = None) -> dict[str, Any]:
        """Release the kill switch / resume after a halt."""
        body = {"reason": reason} if reason else None
        return dict(self.command("POST", "/v1/control/resume", body))

    def put_risk(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the risk configuration (the server validates)."""
        return dict(self.command("PUT", "/v1/settings/risk", dict(config)))

    def set_strategy_active(self, strategy_id: str, active: bool) -> dict[str, Any]:
        """Switch a strategy on or off."""
        return dict(self.command("PUT", f"/v1/strategies/{strategy_id}", {"is_active": active}))

    def put_strategy(self, strategy_id: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a strategy's definition."""
        return dict(self.command("PUT", f"/v1/strategies/{strategy_id}", dict(definition)))

    def refresh_account(self) -> dict[str, Any]:
        """Ask the broker service to publish the account now."""
        return dict(self.command("POST", "/v1/account/refresh"))

    def test_connection(self) -> dict[str, Any]:
        """§6.7: `{"status": "ok"|"error", "message"}`."""
        return dict(self.command("POST", "/v1/ai/test-connection"))
