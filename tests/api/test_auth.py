"""Login, cookies, tokens and their refusals, logout, rate limits (real database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from starlette.testclient import TestClient

from api.auth import AUDIENCE, COOKIE, ISSUER, issue_token, jwt_secret
from api.config import ApiSettings
from tests.api.conftest import BASE_URL, PASSWORD, Api


def _error(response: object, status: int, code: str) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def test_login_sets_a_strict_httponly_secure_cookie_and_me_answers(api: Api) -> None:
    api.client.cookies.clear()
    r = api.client.post("/v1/auth/login", json={"email": api.email.upper(), "password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["user"]["email"] == api.email
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "secure" in lowered
    assert "samesite=strict" in lowered
    assert "max-age=43200" in lowered
    me = api.client.get("/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == api.email


def test_wrong_password_and_unknown_user_get_the_same_401(api: Api) -> None:
    api.client.cookies.clear()
    a = api.client.post("/v1/auth/login", json={"email": api.email, "password": "nope-nope-1"})
    b = api.client.post("/v1/auth/login",
                        json={"email": f"ghost-{uuid.uuid4().hex}@x.io", "password": "whatever1"})
    assert _error(a, 401, "UNAUTHORIZED")["message"] == _error(b, 401, "UNAUTHORIZED")["message"]
    assert COOKIE not in a.headers.get("set-cookie", "")


def test_protected_endpoints_refuse_without_cookie(api: Api) -> None:
    api.client.cookies.clear()
    for path in ("/v1/auth/me", "/v1/settings/risk", "/v1/ai/history", "/v1/account"):
        _error(api.client.get(path), 401, "UNAUTHORIZED")
    _error(api.client.post("/v1/control/kill", json={"reason": "x"}), 401, "UNAUTHORIZED")


def _user_id(api: Api) -> str:
    api.login()
    return str(api.client.get("/v1/auth/me").json()["id"])


def _with_token(api: Api, token: str) -> object:
    api.client.cookies.clear()
    api.client.cookies.set(COOKIE, token)
    return api.client.get("/v1/auth/me")


def test_expired_tampered_none_and_foreign_tokens_are_refused(api: Api) -> None:
    user_id = _user_id(api)
    secret = jwt_secret(api.settings)
    expired, _ = issue_token(secret, user_id, api.email, timedelta(minutes=5),
                             now=datetime.now(UTC) - timedelta(hours=1))
    assert "expired" in _error(_with_token(api, expired), 401, "UNAUTHORIZED")["message"]

    good, _ = issue_token(secret, user_id, api.email, timedelta(minutes=5))
    head, body, sig = good.split(".")
    tampered = ".".join([head, body, ("A" if sig[0] != "A" else "B") + sig[1:]])
    _error(_with_token(api, tampered), 401, "UNAUTHORIZED")

    claims = {"sub": user_id, "jti": "x", "iss": ISSUER, "aud": AUDIENCE,
              "iat": int(datetime.now(UTC).timestamp()),
              "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())}
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    _error(_with_token(api, unsigned), 401, "UNAUTHORIZED")
    other_alg = jwt.encode(claims, secret, algorithm="HS512")
    _error(_with_token(api, other_alg), 401, "UNAUTHORIZED")
    foreign = jwt.encode(claims, "another-secret-of-at-least-32-characters!", algorithm="HS256")
    _error(_with_token(api, foreign), 401, "UNAUTHORIZED")
    assert _with_token(api, good).status_code == 200  # type: ignore[attr-defined]


def test_logout_revokes_the_token(api: Api) -> None:
    api.login()
    token = api.client.cookies.get(COOKIE)
    assert token
    r = api.client.post("/v1/auth/logout")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert "max-age=0" in r.headers["set-cookie"].lower()
    assert "session ended" in _error(_with_token(api, token), 401, "UNAUTHORIZED")["message"]


def test_failed_logins_are_limited_per_account(api: Api) -> None:
    client = TestClient(api.app, base_url=BASE_URL, client=("10.1.0.1", 4000))
    for _ in range(5):
        _error(client.post("/v1/auth/login", json={"email": api.email, "password": "bad-pass-1"}),
               401, "UNAUTHORIZED")
    # even the right password is not checked now
    blocked = client.post("/v1/auth/login", json={"email": api.email, "password": PASSWORD})
    err = _error(blocked, 429, "RATE_LIMITED")
    assert int(blocked.headers["retry-after"]) > 0
    assert err["details"]["retry_after_seconds"] == int(blocked.headers["retry-after"])
    with api.conn() as conn:  # the window passes: the oldest failures age out
        conn.execute("UPDATE login_attempts SET attempted_at = attempted_at - interval '1 hour' "
                     "WHERE email = %s", (api.email,))
    assert client.post("/v1/auth/login",
                       json={"email": api.email, "password": PASSWORD}).status_code == 200


def test_failed_logins_are_limited_per_address(api: Api) -> None:
    client = TestClient(api.app, base_url=BASE_URL, client=("10.2.0.2", 4000))
    for i in range(20):
        client.post("/v1/auth/login", json={"email": f"probe{i}@x.io", "password": "guess-123"})
    blocked = client.post("/v1/auth/login", json={"email": api.email, "password": PASSWORD})
    _error(blocked, 429, "RATE_LIMITED")
    other = TestClient(api.app, base_url=BASE_URL, client=("10.2.0.3", 4000))
    assert other.post("/v1/auth/login",
                      json={"email": api.email, "password": PASSWORD}).status_code == 200


def test_insecure_cookie_is_refused_off_loopback() -> None:
    insecure = ApiSettings.model_validate({"cookie_secure": False})
    insecure.check_cookie("127.0.0.1")
    insecure.check_cookie("localhost")
    with pytest.raises(ValueError, match="loopback"):
        insecure.check_cookie("0.0.0.0")  # noqa: S104 - the point of the test
