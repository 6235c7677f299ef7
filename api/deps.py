"""What endpoints depend on: the process's services, a database connection, the user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from api.auth import COOKIE, TokenRefused, decode_token
from api.config import ApiSettings
from api.errors import ApiError, ErrorCode
from api.observability import REQUEST, Metrics
from sinks import queries
from topics.catalog import Catalog
from topics.control_client import ControlClient
from topics.settings import Settings


@dataclass
class Services:
    """Everything one API process holds open."""

    settings: Settings
    api: ApiSettings
    catalog: Catalog
    pool: ConnectionPool[Any]
    control: ControlClient
    secret: bytes
    metrics: Metrics


def services(request: Request) -> Services:
    """The app's services (opened by the lifespan)."""
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]


def db(svc: Svc) -> Iterator[queries.Conn]:
    """A pooled connection (autocommit) for the duration of the request."""
    with svc.pool.connection() as conn:
        yield conn


DB = Annotated[queries.Conn, Depends(db)]


@dataclass(frozen=True)
class User:
    """The authenticated caller."""

    id: str
    email: str
    role: str
    jti: str
    expires_at: datetime


def current_user(request: Request, svc: Svc) -> User:
    """The user of a valid, unrevoked `auth_token` cookie, else 401.

    Takes its own short-lived connection so that endpoints waiting on the pipeline
    do not hold one.
    """
    token = request.cookies.get(COOKIE)
    if not token:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "not logged in")
    try:
        claims = decode_token(svc.secret, token)
    except TokenRefused as exc:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, str(exc)) from exc
    with svc.pool.connection() as conn:
        row = queries.principal(conn, claims.user_id, claims.jti)
    if row is None or row["revoked"]:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "session ended: log in again")
    ctx = REQUEST.get()
    if ctx is not None:
        ctx["user_id"] = row["id"]
    return User(id=row["id"], email=row["email"], role=row["role"], jti=claims.jti,
                expires_at=claims.expires_at)


CurrentUser = Annotated[User, Depends(current_user)]
