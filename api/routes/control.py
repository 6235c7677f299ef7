"""Everything that changes the pipeline: risk settings, strategies, approvals, kill switch.

Each change is a signed control command on the gate's ordered stream; the endpoint
waits (bounded) for the gate's reply. Validation happens here first, so an invalid
request never reaches the bus.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import DB, CurrentUser, Svc
from api.errors import ApiError, ErrorCode, responses
from api.models import (
    ID_PATTERN,
    ApproveIn,
    ApproveOut,
    ControlOut,
    IdeaOut,
    IdeaStatus,
    KillIn,
    KillSwitchOut,
    RefreshOut,
    RejectIn,
    RejectOut,
    ResumeIn,
    RiskIn,
    RiskOut,
    RiskPutOut,
    StrategyOut,
    StrategyPutOut,
)
from api.routes import PREFIX
from sinks import queries
from streams.core.model import RiskConfig
from streams.core.strategy import StrategyError, parse_strategy
from topics.bus import BusError
from topics.control_client import CommandTimeout, Reply

log = logging.getLogger("ai_trader.api.control")
router = APIRouter(prefix=PREFIX, tags=["control"])

T = TypeVar("T")
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]

#: Gate refusal codes -> (HTTP status, envelope code). Anything else is our own fault.
REFUSALS: dict[str, tuple[int, ErrorCode]] = {
    "unknown_idea": (404, ErrorCode.NOT_FOUND),
    "unknown_strategy": (404, ErrorCode.NOT_FOUND),
    "invalid_payload": (400, ErrorCode.INVALID_INPUT),
    "risk_violation": (409, ErrorCode.RISK_VIOLATION),
    "strategy_blocked": (409, ErrorCode.STRATEGY_BLOCKED),
    "ai_halted": (409, ErrorCode.AI_HALTED),
    "kill_switch": (409, ErrorCode.AI_HALTED),
    "already_decided": (409, ErrorCode.CONFLICT),
    "expired": (409, ErrorCode.CONFLICT),
}
#: Refusals of an approval that §6.4 answers as `{"status": "blocked"}`.
BLOCKING = frozenset({"risk_violation", "strategy_blocked", "ai_halted", "kill_switch",
                      "already_decided", "expired"})


def refusal(reply: Reply) -> ApiError:
    """The envelope for a refused command."""
    code = reply.code or "refused"
    status, error = REFUSALS.get(code, (500, ErrorCode.INTERNAL))
    details = {"command_id": reply.command_id, "reason": reply.reason}
    if status == 500:
        log.error("the gate refused our command: %s", reply.reason,
                  extra={"command_id": reply.command_id})
        return ApiError(500, error, f"the gate refused the command ({code})", details)
    return ApiError(status, error, reply.message or code, details)


async def pipeline(svc: Svc, kind: str, call: Awaitable[T]) -> T:
    """Await a command, turning a timeout or a bus failure into the envelope."""
    try:
        result = await call
    except CommandTimeout as exc:
        svc.metrics.commands.labels(kind, "timeout").inc()
        details: dict[str, Any] = {"command_id": exc.command_id, "waiting_for": exc.stage}
        if exc.reply is not None:
            details["decision_id"] = exc.reply.result.get("decision_id")
        raise ApiError(504, ErrorCode.TIMEOUT, str(exc), details) from exc
    except BusError as exc:
        svc.metrics.commands.labels(kind, "bus_error").inc()
        raise ApiError(503, ErrorCode.UNAVAILABLE, "the bus is not reachable") from exc
    return result


async def command(svc: Svc, user: CurrentUser, kind: str, **fields: Any) -> Reply:
    """Publish a command, wait for the reply, raise the envelope on refusal."""
    reply = await pipeline(svc, kind, svc.control.arequest(
        kind, user.email, seconds=svc.api.command_timeout_seconds, **fields))
    svc.metrics.commands.labels(kind, reply.status).inc()
    if not reply.accepted:
        raise refusal(reply)
    return reply


# ------------------------------------------------------------------------------- risk


def risk_view(row: dict[str, Any]) -> RiskOut:
    """A `risk_config` row as the §6.2 body."""
    config = dict(row["config"])
    kill = config.pop("kill_switch", None) or {}
    return RiskOut.model_validate({**config, "kill_switch": kill, "version": row["version"],
                                   "config_hash": row["config_hash"],
                                   "updated_by": row["updated_by"],
                                   "updated_at": row["updated_at"]})


@router.get("/settings/risk", response_model=RiskOut, responses=responses(404))
def get_risk(user: CurrentUser, svc: Svc, conn: DB) -> RiskOut:
    """The risk configuration as the gate last applied it (with the kill switch)."""
    row = queries.risk_config(conn, svc.settings.account)
    if row is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no risk configuration applied yet")
    return risk_view(row)


def merged_risk(current: dict[str, Any] | None, body: RiskIn) -> dict[str, Any]:
    """The full config to send: the current one with the request's fields over it,
    validated by the core (`RiskConfig`)."""
    base = {k: v for k, v in (current or {}).items() if k != "kill_switch"}
    changes = body.model_dump(exclude_unset=True)
    for name in ("min_confidence_threshold", "max_lot_size", "daily_profit_target",
                 "max_drawdown_amount", "weekly_profit_target"):
        if changes.get(name) is not None:
            changes[name] = Decimal(repr(changes[name]))
    try:
        return RiskConfig.from_dict({**base, **changes}).to_dict()
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        raise ApiError(400, ErrorCode.INVALID_INPUT, str(exc)) from exc


@router.put("/settings/risk", response_model=RiskPutOut, responses=responses(409, 503, 504))
async def put_risk(body: RiskIn, user: CurrentUser, svc: Svc) -> RiskPutOut:
    """Replace the risk configuration (validated per §7.5; unknown fields refused).

    Becomes a signed `set_risk_config` command; the gate enforces it before the next
    idea and logs `ai_halted` / `ai_resumed` when `ai_trading_enabled` flips.
    """
    row = await run_in_threadpool(_risk_row, svc)
    payload = merged_risk(row["config"] if row else None, body)
    reply = await command(svc, user, "set_risk_config", payload=payload)
    return RiskPutOut(config_hash=reply.result.get("config_hash"),
                      version=reply.result.get("version"))


def _risk_row(svc: Svc) -> dict[str, Any] | None:
    with svc.pool.connection() as conn:
        return queries.risk_config(conn, svc.settings.account)


@router.post("/control/kill", response_model=ControlOut, responses=responses(409, 503, 504))
async def kill(body: KillIn, user: CurrentUser, svc: Svc) -> ControlOut:
    """Engage the kill switch: nothing new opens, not even on approval, until a resume."""
    reply = await command(svc, user, "kill_switch", reason=body.reason)
    return _control_view(reply)


@router.post("/control/resume", response_model=ControlOut,
             responses=responses(409, 503, 504))
async def resume(user: CurrentUser, svc: Svc,
                 body: Annotated[ResumeIn | None, Body()] = None) -> ControlOut:
    """Release the kill switch and resume after a halt."""
    reply = await command(svc, user, "resume", reason=body.reason if body else None)
    return _control_view(reply)


def _control_view(reply: Reply) -> ControlOut:
    kill_switch = reply.result.get("kill_switch")
    return ControlOut(decision_id=reply.result.get("decision_id"),
                      ai_trading_enabled=reply.result.get("ai_trading_enabled"),
                      kill_switch=KillSwitchOut.model_validate(kill_switch)
                      if isinstance(kill_switch, dict) else None)


# ------------------------------------------------------------------------- strategies


def strategy_view(row: dict[str, Any]) -> StrategyOut:
    """A `strategies` row as the §6.3 body."""
    definition = dict(row["definition"])
    definition.update(id=row["id"], version=row["version"], is_active=row["is_active"],
                      definition_hash=row["definition_hash"], updated_by=row["updated_by"],
                      updated_at=row["updated_at"])
    return StrategyOut.model_validate(definition)


@router.get("/strategies", response_model=list[StrategyOut], responses=responses())
def list_strategies(user: CurrentUser, conn: DB) -> list[StrategyOut]:
    """Every strategy with its structured rules."""
    return [strategy_view(r) for r in queries.strategies(conn)]


@router.get("/strategies/{strategy_id}", response_model=StrategyOut, responses=responses(404))
def get_strategy(strategy_id: IdPath, user: CurrentUser, conn: DB) -> StrategyOut:
    """One strategy."""
    row = queries.strategy(conn, strategy_id)
    if row is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no strategy {strategy_id}")
    return strategy_view(row)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def json_body(request: Request) -> Any:
    """The request body as JSON (NaN and Infinity refused), or 400."""
    raw = await request.body()
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "the body is not valid JSON") from exc


def _nul_paths(obj: Any, path: str = "$") -> list[str]:
    if isinstance(obj, str):
        return [path] if "\x00" in obj else []
    if isinstance(obj, dict):
        return [p for k, v in obj.items()
                for p in _nul_paths(k, path) + _nul_paths(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _nul_paths(v, f"{path}[{i}]")]
    return []


def checked_definition(obj: Any) -> dict[str, Any]:
    """A definition validated by the strategy JSON Schema; errors carry their JSON path."""
    nul = _nul_paths(obj)
    if nul:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "invalid strategy definition",
                       {"errors": [{"path": p, "message": "contains a NUL character"}
                                   for p in nul]})
    try:
        return parse_strategy(obj).definition()
    except StrategyError as exc:
        raise ApiError(400, ErrorCode.INVALID_INPUT, "invalid strategy definition",
                       {"errors": [{"path": p, "message": m} for p, m in exc.errors]}) from exc


STRATEGY_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/StrategyDefinition"}}}}}
STRATEGY_PUT_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"anyOf": [{"$ref": "#/components/schemas/StrategyDefinition"},
                         {"$ref": "#/components/schemas/StrategyActivation"}]}}}}}


def _put_view(reply: Reply, strategy_id: str) -> StrategyPutOut:
    return StrategyPutOut(strategy_id=str(reply.result.get("strategy_id") or strategy_id),
                          version=reply.result.get("version"),
                          definition_hash=reply.result.get("definition_hash"),
                          is_active=reply.result.get("is_active"))


@router.post("/strategies", status_code=201, response_model=StrategyPutOut,
             responses=responses(409, 503, 504), openapi_extra=STRATEGY_BODY)
async def create_strategy(request: Request, user: CurrentUser, svc: Svc) -> StrategyPutOut:
    """Create a strategy from its JSON definition (strategy JSON Schema; errors carry
    the JSON path of the problem)."""
    definition = checked_definition(await json_body(request))
    if await run_in_threadpool(_strategy_exists, svc, definition["id"]):
        raise ApiError(409, ErrorCode.CONFLICT, f"strategy {definition['id']} exists: "
                                                "PUT /strategies/{id} replaces it")
    reply = await command(svc, user, "put_strategy", strategy_id=definition["id"],
                          payload={"definition": definition})
    return _put_view(reply, definition["id"])


def _strategy_exists(svc: Svc, strategy_id: str) -> bool:
    with svc.pool.connection() as conn:
        return queries.strategy(conn, strategy_id) is not None


@router.put("/strategies/{strategy_id}", response_model=StrategyPutOut,
            responses=responses(404, 409, 503, 504), openapi_extra=STRATEGY_PUT_BODY)
async def put_strategy(strategy_id: IdPath, request: Request, user: CurrentUser,
                       svc: Svc) -> StrategyPutOut:
    """Replace a strategy's definition, or switch it on/off with `{"is_active": bool}`."""
    body = await json_body(request)
    if isinstance(body, dict) and set(body) == {"is_active"}:
        if not isinstance(body["is_active"], bool):
            raise ApiError(400, ErrorCode.INVALID_INPUT, "is_active must be true or false",
                           {"errors": [{"path": "$.is_active", "message": "not a boolean"}]})
        payload: dict[str, Any] = {"is_active": body["is_active"]}
    else:
        definition = checked_definition(body)
        if definition["id"] != strategy_id:
            raise ApiError(400, ErrorCode.INVALID_INPUT, "the definition's id differs from "
                                                         "the path's",
                           {"errors": [{"path": "$.id", "message": "must equal the path id"}]})
        payload = {"definition": definition}
    reply = await command(svc, user, "put_strategy", strategy_id=strategy_id, payload=payload)
    return _put_view(reply, strategy_id)


# ------------------------------------------------------------------------------ ideas


OPEN_STATUSES: tuple[str, ...] = ("waiting", "needs_approval")


def idea_view(row: dict[str, Any]) -> IdeaOut:
    """A `trade_ideas` row as the §6.4 body."""
    data = dict(row)
    data["take_profit"] = [float(v) for v in row["take_profit"] or []]
    return IdeaOut.model_validate(data)


@router.get("/ai/ideas/active", response_model=list[IdeaOut], responses=responses())
def active_ideas(
    user: CurrentUser, conn: DB,
    status: Annotated[list[IdeaStatus] | None, Query(max_length=8)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[IdeaOut]:
    """The newest open ideas (waiting / needs approval), or those with `status`."""
    statuses: list[str] = list(status) if status else list(OPEN_STATUSES)
    return [idea_view(r) for r in queries.ideas(conn, statuses, limit)]


@router.post("/ai/ideas/{idea_id}/approve", response_model=ApproveOut,
             responses=responses(404, 503, 504))
async def approve(idea_id: IdPath, user: CurrentUser, svc: Svc,
                  body: Annotated[ApproveIn | None, Body()] = None) -> ApproveOut:
    """Approve an idea (optionally with another lot size): the gate re-checks risk, the
    broker executes. Answers `executed` with the MT5 order id or `blocked` with the
    reason (§6.4)."""
    lot = Decimal(repr(body.lot_size)) if body and body.lot_size is not None else None
    outcome = await pipeline(svc, "approve_idea", svc.control.aapprove(
        idea_id, user.email, lot, seconds=svc.api.command_timeout_seconds,
        order_seconds=svc.api.order_timeout_seconds))
    reply = outcome.reply
    if not reply.accepted and (reply.code or "") not in BLOCKING:
        svc.metrics.commands.labels("approve_idea", "refused").inc()
        raise refusal(reply)
    svc.metrics.commands.labels("approve_idea", outcome.status).inc()
    if outcome.status == "executed":
        return ApproveOut(status="executed", mt5_order_id=outcome.mt5_order_id)
    return ApproveOut(status="blocked", reason=outcome.reason)


@router.post("/ai/ideas/{idea_id}/reject", response_model=RejectOut,
             responses=responses(404, 409, 503, 504))
async def reject(idea_id: IdPath, user: CurrentUser, svc: Svc,
                 body: Annotated[RejectIn | None, Body()] = None) -> RejectOut:
    """Reject an idea waiting for approval (logged `human_rejected`)."""
    reply = await command(svc, user, "reject_idea", idea_id=idea_id,
                          reason=body.reason if body else None)
    return RejectOut(idea_id=idea_id, decision_id=reply.result.get("decision_id"))


@router.post("/account/refresh", status_code=202, response_model=RefreshOut,
             responses=responses(503))
async def refresh_account(user: CurrentUser, svc: Svc) -> RefreshOut:
    """Ask the broker service to publish the account now (Settings → Accounts)."""
    command_id = await pipeline(svc, "refresh_account", svc.control.anotify(
        "refresh_account", user.email, seconds=svc.api.command_timeout_seconds))
    return RefreshOut(command_id=command_id)
