"""Fixtures for tests against the real bus and the real database.

`make test` starts the local Kafka (KRaft) and PostgreSQL first (infra/with-stack.sh).
With KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL set, the tests use those instead. With
AI_TRADER_TEST_CONTAINERS=1 and a Docker engine, they start Redpanda and TimescaleDB
with testcontainers. A test that needs the stack and cannot reach it fails with the
reason: it is never skipped into a pass.

Every test gets its own uuid-prefixed topics and consumer groups; the session gets
its own database, dropped at the end.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from topics.bus import BusError, admin_client, ensure_topics, wait_for_bus
from topics.catalog import Catalog
from topics.settings import Settings


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """Give every test the root logger it found: a CLI run in-process installs a handler on
    the test's captured stderr, which pytest closes afterwards ("Logging error ... I/O
    operation on closed file" in every later test that logs)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


INTEGRATION_FIXTURES = {"bus", "catalog", "database", "stack_settings"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches the stack, so `-m "not integration"` runs the rest."""
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _containers() -> Iterator[dict[str, str]]:
    from testcontainers.kafka import RedpandaContainer
    from testcontainers.postgres import PostgresContainer

    with RedpandaContainer() as redpanda, PostgresContainer(
        "timescale/timescaledb:latest-pg16", driver=None
    ) as pg:
        yield {
            "KAFKA_BOOTSTRAP_SERVERS": redpanda.get_bootstrap_server(),
            "DATABASE_URL": pg.get_connection_url(),
        }


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings pointing at the stack the tests use."""
    if os.environ.get("AI_TRADER_TEST_CONTAINERS") == "1":
        gen = _containers()
        env = next(gen)
        yield Settings(**env, AI_TRADER_ENV="test")  # type: ignore[arg-type]
        gen.close()
        return
    yield Settings(AI_TRADER_ENV="test")  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def bus(stack_settings: Settings) -> Settings:
    """The bus answers, or the test fails saying how to start it."""
    try:
        wait_for_bus(stack_settings, timeout=30)
    except BusError as exc:
        pytest.fail(f"{exc}: run `make test`, or `bash infra/kafka.sh start` first", False)
    return stack_settings


@pytest.fixture
def catalog(bus: Settings) -> Iterator[Catalog]:
    """A fresh set of every catalog topic, under a uuid prefix, deleted afterwards."""
    cat = Catalog(prefix=f"t{uuid.uuid4().hex[:12]}.")
    ensure_topics(bus, cat)
    yield cat
    # Keep the admin client referenced until the futures resolve: destroying it
    # first fails every pending delete with `_DESTROY`.
    admin = admin_client(bus)
    # the catalog's topics and whatever a worker made under the prefix (faust's
    # changelogs): left behind, they pile up on a long-running broker and slow its
    # rebalances
    made = {t for t in admin.list_topics(timeout=10).topics if t.startswith(cat.prefix)}
    futures = admin.delete_topics(sorted(made | set(cat.physical_topics())),
                                  operation_timeout=30)
    for fut in futures.values():
        fut.result()
    del admin


def _admin_dsn(settings: Settings) -> str:
    return settings.database_dsn().rsplit("/", 1)[0] + "/postgres"


@contextmanager
def scratch_database(stack_settings: Settings) -> Iterator[Settings]:
    """A new, empty database on the stack's server (migrations not applied), dropped
    afterwards. For tests whose assertions read "the newest" of a table and must not
    see rows other test modules wrote."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_admin_dsn(stack_settings), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"database unreachable: {exc}: run `make test` or "
                    "`bash infra/postgres.sh start` first", False)
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = stack_settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    try:
        yield Settings(DATABASE_URL=dsn, AI_TRADER_ENV="test")  # type: ignore[call-arg]
    finally:
        with psycopg.connect(_admin_dsn(stack_settings), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def database(stack_settings: Settings) -> Iterator[Settings]:
    """A fresh database for the session (migrations not applied), dropped at the end."""
    with scratch_database(stack_settings) as settings:
        yield settings
