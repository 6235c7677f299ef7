"""§6.1 login, logout, me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response

from api.auth import COOKIE, LoginLimit, issue_token, verify_password
from api.deps import DB, CurrentUser, Svc
from api.errors import ApiError, ErrorCode, ErrorEnvelope, responses
from api.models import LoginIn, LoginOut, StatusOut, UserOut
from api.observability import REQUEST
from api.routes import PREFIX
from sinks import queries

router = APIRouter(prefix=f"{PREFIX}/auth", tags=["auth"])


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=LoginOut, responses={
    400: {"model": ErrorEnvelope, "description": "invalid input"},
    401: {"model": ErrorEnvelope, "description": "wrong email or password"},
    429: {"model": ErrorEnvelope, "description": "too many failed logins (RATE_LIMITED)"},
    500: {"model": ErrorEnvelope, "description": "unexpected error"},
})
def login(body: LoginIn, request: Request, response: Response, svc: Svc, conn: DB) -> LoginOut:
    """Check the password and set the `auth_token` cookie (httpOnly, Secure, SameSite=Strict).

    Failed attempts are limited per account and per client address; past the limit
    the answer is 429 with Retry-After, without checking the password.
    """
    email, address, now = body.email.strip().lower(), _address(request), datetime.now(UTC)
    limit = LoginLimit(timedelta(minutes=svc.api.login_window_minutes),
                       svc.api.login_max_failures_account, svc.api.login_max_failures_address)
    wait = limit.retry_after(queries.login_failures(conn, email, address, now - limit.window),
                             now)
    if wait is not None:
        svc.metrics.logins.labels("rate_limited").inc()
        raise ApiError(429, ErrorCode.RATE_LIMITED, "too many failed logins; try again later",
                       {"retry_after_seconds": wait}, headers={"Retry-After": str(wait)})
    user = queries.user_by_email(conn, email)
    if not verify_password(user["password_hash"] if user else None, body.password):
        queries.record_login(conn, email, address, succeeded=False)
        svc.metrics.logins.labels("failed").inc()
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "wrong email or password")
    assert user is not None  # noqa: S101 - verify_password is False without a user
    queries.record_login(conn, email, address, succeeded=True)
    svc.metrics.logins.labels("ok").inc()
    ttl = timedelta(minutes=svc.api.token_ttl_minutes)
    token, _ = issue_token(svc.secret, user["id"], user["email"], ttl, now)
    response.set_cookie(COOKIE, token, max_age=int(ttl.total_seconds()), httponly=True,
                        secure=svc.api.cookie_secure, samesite="strict", path="/")
    ctx = REQUEST.get()
    if ctx is not None:
        ctx["user_id"] = user["id"]
    return LoginOut(user=UserOut(id=user["id"], email=user["email"], role=user["role"]))


@router.post("/logout", response_model=StatusOut, responses=responses())
def logout(user: CurrentUser, response: Response, svc: Svc, conn: DB) -> StatusOut:
    """Revoke this session's token and clear the cookie."""
    queries.revoke_token(conn, user.jti, user.id, user.expires_at)
    response.delete_cookie(COOKIE, path="/", secure=svc.api.cookie_secure, httponly=True,
                           samesite="strict")
    return StatusOut()


@router.get("/me", response_model=UserOut, responses=responses())
def me(user: CurrentUser) -> UserOut:
    """The logged-in user."""
    return UserOut(id=user.id, email=user.email, role=user.role)
