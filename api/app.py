"""The REST API (blueprint §6) on FastAPI: `create_app(settings)`; `ai-trader api` serves it.

Every endpoint lives under `/v1`. All but `/v1/health`, `/v1/metrics` and
`/v1/auth/login` need the `auth_token` cookie. Every non-2xx answer is the §9.1
envelope. Reads come from the sink tables through `sinks.queries`; changes are signed
control commands through `topics.control_client`, answered by the gate.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from psycopg_pool import ConnectionPool

from api import errors
from api.auth import COOKIE, jwt_secret
from api.config import ApiSettings
from api.deps import Services
from api.models import StrategyActivation
from api.observability import ContextFilter, Metrics, RequestMiddleware
from api.routes import PREFIX, auth, read, system
from api.routes import control as control_routes
from streams.core.strategy import SCHEMA as STRATEGY_SCHEMA
from topics.catalog import Catalog
from topics.control_client import ControlClient
from topics.settings import Settings

log = logging.getLogger("ai_trader.api")

PUBLIC = {f"{PREFIX}/health", f"{PREFIX}/metrics", f"{PREFIX}/auth/login"}


def _install_log_context() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())


def create_app(settings: Settings, api_settings: ApiSettings | None = None, *,
               catalog: Catalog | None = None, control: ControlClient | None = None,
               migrate_db: bool = True) -> FastAPI:
    """The app; the lifespan migrates the database, opens the pool and the control client."""
    api = api_settings or ApiSettings()
    api.check_cookie(settings.api_host)
    cat = catalog or Catalog(settings.topic_prefix)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _install_log_context()
        if migrate_db:
            from sinks.migrate import migrate

            migrate(settings)
        pool: ConnectionPool[Any] = ConnectionPool(
            settings.database_dsn(), min_size=1, max_size=api.db_pool_size,
            kwargs={"autocommit": True, "connect_timeout": 3}, open=False, name="api",
            timeout=3.0)  # a request waits 3 s for a connection, then 503, not 30 s
        pool.open(wait=True, timeout=30)
        client = control or ControlClient(settings, cat)
        owned = not client.started
        if owned:
            client.start()
        app.state.services = Services(settings=settings, api=api, catalog=cat, pool=pool,
                                      control=client, secret=jwt_secret(settings),
                                      metrics=metrics)
        log.info("api ready", extra={"account": settings.account})
        try:
            yield
        finally:
            if owned:
                client.close()
            pool.close()

    app = FastAPI(title="ai-trader API", version="1", lifespan=lifespan,
                  description=__doc__, openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=f"{PREFIX}/docs", redoc_url=None)
    errors.install(app)
    for router in (auth.router, control_routes.router, read.router, system.router):
        app.include_router(router)  # paths carry the /v1 prefix themselves
    app.add_middleware(RequestMiddleware, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _strategy_components() -> dict[str, Any]:
    """The strategy JSON Schema as OpenAPI components (its $defs become siblings)."""
    schema = copy.deepcopy(dict(STRATEGY_SCHEMA))
    defs = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (f"#/components/schemas/Strategy_{v.rsplit('/', 1)[1]}"
                        if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/")
                        else rewrite(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    out = {"StrategyDefinition": rewrite(schema)}
    out.update({f"Strategy_{name}": rewrite(value) for name, value in defs.items()})
    return out


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the envelope for 400 (instead of 422), the strategy schema,
    and cookie authentication declared on every protected operation."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_strategy_components())
    schemas["StrategyActivation"] = StrategyActivation.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "cookieAuth": {"type": "apiKey", "in": "cookie", "name": COOKIE}}
    envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None or "400" not in responses:
                responses.setdefault("400", {"description": "invalid input (INVALID_INPUT)",
                                             "content": {"application/json": {
                                                 "schema": envelope_ref}}})
            if path not in PUBLIC:
                operation["security"] = [{"cookieAuth": []}]
    app.openapi_schema = doc
    return doc
