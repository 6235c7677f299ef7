"""The §9.1 error envelope, the §9.2 codes, and the handlers that put every non-2xx in it."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("ai_trader.api")


class ErrorCode(StrEnum):
    """§9.2 codes plus the generic ones every API needs."""

    UNAUTHORIZED = "UNAUTHORIZED"
    INVALID_INPUT = "INVALID_INPUT"
    RISK_VIOLATION = "RISK_VIOLATION"
    STRATEGY_BLOCKED = "STRATEGY_BLOCKED"
    AI_HALTED = "AI_HALTED"
    MT5_EXECUTION_FAILED = "MT5_EXECUTION_FAILED"
    OPENAI_UNAVAILABLE = "OPENAI_UNAVAILABLE"
    SNAPSHOT_NOT_FOUND = "SNAPSHOT_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a human message, structured details."""

    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    """Every non-2xx response: `{"error": {"code", "message", "details"}}`."""

    error: ErrorBody


class ApiError(Exception):
    """Raised by endpoints; rendered as the envelope with `status`."""

    def __init__(self, status: int, code: ErrorCode, message: str,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers


def envelope(status: int, code: ErrorCode, message: str, details: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSONResponse holding the envelope."""
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, details=details or {}))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


_BY_STATUS = {
    400: ErrorCode.INVALID_INPUT, 401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED, 409: ErrorCode.CONFLICT,
    413: ErrorCode.INVALID_INPUT, 415: ErrorCode.INVALID_INPUT, 422: ErrorCode.INVALID_INPUT,
    429: ErrorCode.RATE_LIMITED, 503: ErrorCode.UNAVAILABLE, 504: ErrorCode.TIMEOUT,
}


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        # never echo the rejected input back: it may be a password
        errors.append({"loc": loc, "message": str(err.get("msg", "")),
                       "type": str(err.get("type", ""))})
    return {"errors": errors}


def install(app: FastAPI) -> None:
    """Register the handlers that render every error as the envelope."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_away(_request: Request, exc: Exception) -> JSONResponse:
        # The database restarting or failing over is not a bug of ours: say so, quickly.
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return envelope(503, ErrorCode.UNAVAILABLE, "the database is unavailable; try again",
                        headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(400, ErrorCode.INVALID_INPUT, "the request is not valid",
                        _validation_details(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _BY_STATUS.get(exc.status_code,
                              ErrorCode.INTERNAL if exc.status_code >= 500
                              else ErrorCode.INVALID_INPUT)
        message = exc.detail if isinstance(exc.detail, str) else code.value.lower()
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return envelope(exc.status_code, code, message, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


#: Responses every authenticated operation documents (FastAPI's 422 is replaced by 400).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope, "description": "invalid input (INVALID_INPUT)"},
    401: {"model": ErrorEnvelope, "description": "not logged in or token refused"},
    500: {"model": ErrorEnvelope, "description": "unexpected error (INTERNAL)"},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """COMMON_RESPONSES plus the envelope for each extra status."""
    out = dict(COMMON_RESPONSES)
    for status in statuses:
        out[status] = {"model": ErrorEnvelope, "description": _describe(status)}
    return out


def _describe(status: int) -> str:
    return {
        404: "not found (NOT_FOUND, SNAPSHOT_NOT_FOUND)",
        409: "refused by the gate (RISK_VIOLATION, STRATEGY_BLOCKED, AI_HALTED, CONFLICT)",
        429: "too many failed logins (RATE_LIMITED)",
        503: "a dependency is down (UNAVAILABLE)",
        504: "no answer from the pipeline in time (TIMEOUT)",
    }.get(status, "error")
