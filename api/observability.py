"""Request context, one structured log line per request, Prometheus metrics, and the
last line of defence that turns an unhandled exception into the INTERNAL envelope.

Logs go through `topics.logs` (JSON, secrets redacted). Only the method, the route
template (never the raw path with its ids), the status, the duration, the request id
and the user id are logged for a request: never headers, cookies, query strings or
bodies, so passwords and tokens cannot reach the log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorCode, envelope

log = logging.getLogger("ai_trader.api")

#: Per-request facts (request_id, user_id) that log records and handlers can read.
REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("ai_trader_request", default=None)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class ContextFilter(logging.Filter):
    """Adds request_id and user_id of the current request to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = REQUEST.get()
        if ctx is not None:
            for key in ("request_id", "user_id"):
                if ctx.get(key) is not None and not hasattr(record, key):
                    setattr(record, key, ctx[key])
        return True


class Metrics:
    """The API's own registry (one per app, so several apps in one process don't clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ai_trader_api_requests_total", "HTTP requests",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("ai_trader_api_request_seconds", "HTTP request duration",
                                 ["method", "endpoint"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                          2.5, 5, 10, 30))
        self.commands = Counter("ai_trader_api_commands_total", "Control commands by outcome",
                                ["kind", "outcome"], registry=self.registry)
        self.logins = Counter("ai_trader_api_logins_total", "Logins by outcome", ["outcome"],
                              registry=self.registry)


def _endpoint(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


class RequestMiddleware:
    """Pure ASGI middleware: request id, access log, metrics, INTERNAL envelope."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        ctx: dict[str, Any] = {"request_id": request_id, "user_id": None}
        token = REQUEST.set(ctx)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error", extra={"endpoint": _endpoint(scope),
                                                    "method": scope.get("method")})
            if not status["sent"]:
                response = envelope(500, ErrorCode.INTERNAL, "internal error; see the server "
                                    "log", {"request_id": request_id})
                await response(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - started
            endpoint = _endpoint(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(method, endpoint).observe(duration)
            log.info("request", extra={
                "method": method, "endpoint": endpoint, "status": status["code"],
                "duration_ms": round(duration * 1000, 3), "user_id": ctx.get("user_id"),
                "request_id": request_id,
            })
            REQUEST.reset(token)
