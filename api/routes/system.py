"""Health (unauthenticated, no secrets), Prometheus metrics, and the OpenAI test connection."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import CurrentUser, Services, Svc
from api.errors import ErrorCode, ErrorEnvelope, envelope, responses
from api.models import AiTestOut, CheckOut, HealthOut
from api.openai_check import test_connection
from api.routes import PREFIX
from sinks import queries
from topics.bus import admin_client

router = APIRouter(prefix=PREFIX, tags=["system"])

_BUS_CACHE: dict[str, tuple[float, CheckOut]] = {}
STALE_FEED = timedelta(minutes=10)
GATE_BEHIND = timedelta(seconds=30)


def _bus(svc: Services) -> CheckOut:
    cached = _BUS_CACHE.get(svc.settings.kafka_bootstrap_servers)
    if cached and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    try:
        admin_client(svc.settings).list_topics(timeout=2)
        check = CheckOut(status="ok")
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        check = CheckOut(status="error", detail=f"unreachable: {type(exc).__name__}")
    _BUS_CACHE[svc.settings.kafka_bootstrap_servers] = (time.monotonic(), check)
    return check


def _feed(row: dict[str, Any], now: datetime) -> CheckOut:
    age = (now - row["reported_at"]).total_seconds()
    status = row["status"] if row["status"] in ("ok", "degraded", "error") else "unknown"
    if status == "ok" and age > STALE_FEED.total_seconds():
        status = "degraded"
    detail = None if status == "ok" else (row["last_error"] or "no report recently")
    return CheckOut(status=status, detail=detail, age_seconds=round(age, 1))


def _gate(pending: dict[str, Any], now: datetime) -> CheckOut:
    if not pending["pending"]:
        return CheckOut(status="ok", age_seconds=0.0)
    age = (now - pending["oldest"]).total_seconds()
    status = "degraded" if age > GATE_BEHIND.total_seconds() else "ok"
    return CheckOut(status=status, detail=f"{pending['pending']} commands awaiting a reply",
                    age_seconds=round(age, 1))


def _worst(feeds: dict[str, CheckOut]) -> CheckOut:
    if not feeds:
        return CheckOut(status="unknown", detail="no feed has reported")
    bad = {name: c for name, c in feeds.items() if c.status != "ok"}
    if not bad:
        return CheckOut(status="ok")
    status = "error" if all(c.status == "error" for c in feeds.values()) else "degraded"
    return CheckOut(status=status, detail=", ".join(f"{n}: {c.status}" for n, c in bad.items()))


def health_report(svc: Services) -> HealthOut:
    """Every dependency's status; `error` when the database or the bus is down."""
    now = datetime.now(UTC)
    checks: dict[str, CheckOut] = {"bus": _bus(svc)}
    try:
        with svc.pool.connection(timeout=2) as conn:
            queries.ping(conn)
            checks["database"] = CheckOut(status="ok")
            rows = queries.feed_health(conn)
            pending = queries.unanswered_commands(conn, now - timedelta(hours=1))
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        checks["database"] = CheckOut(status="error", detail=f"unreachable: {type(exc).__name__}")
        rows, pending = [], None
    feeds = {r["feed"]: _feed(r, now) for r in rows if not r["feed"].startswith("broker")}
    brokers = {r["feed"]: _feed(r, now) for r in rows if r["feed"].startswith("broker")}
    checks["broker"] = _worst(brokers)
    checks["feeds"] = _worst(feeds)
    checks["gate"] = (_gate(pending, now) if pending is not None
                      else CheckOut(status="unknown", detail="database unreachable"))
    if "error" in (checks["bus"].status, checks["database"].status):
        overall = "error"
    elif any(c.status in ("degraded", "error") for c in checks.values()):
        overall = "degraded"
    else:
        overall = "ok"
    return HealthOut(status=overall, checks=checks)


@router.get("/health", response_model=HealthOut, responses={
    503: {"model": ErrorEnvelope, "description": "the database or the bus is down "
                                                 "(UNAVAILABLE; details hold the checks)"},
    500: {"model": ErrorEnvelope, "description": "unexpected error"}})
async def health(svc: Svc) -> Any:
    """Unauthenticated: bus, database, broker connector, feeds, gate lag. No secrets."""
    report = await run_in_threadpool(health_report, svc)
    if report.status == "error":
        return envelope(503, ErrorCode.UNAVAILABLE, "a dependency is down",
                        report.model_dump(mode="json"))
    return JSONResponse(report.model_dump(mode="json"))


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}},
          "description": "Prometheus text exposition"},
    500: {"model": ErrorEnvelope, "description": "unexpected error"}})
def metrics(svc: Svc) -> Response:
    """Prometheus metrics of this API process (requests, latency, commands, logins)."""
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/ai/test-connection", response_model=AiTestOut, responses=responses())
async def ai_test_connection(user: CurrentUser, svc: Svc) -> AiTestOut:
    """§6.7: `AI online`, `Invalid OpenAI API key` or `AI endpoint unreachable`."""
    key = svc.settings.openai_api_key
    return await test_connection(key.get_secret_value() if key else None,
                                 svc.settings.openai_base_url,
                                 svc.api.openai_test_timeout_seconds)
