"""Fixtures of the sink tests: a migrated database per test, a sink running in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from psycopg import sql

from sinks.lag import group_lag
from sinks.migrate import migrate
from sinks.service import SinkConfig, SinkService
from topics.bus import BusProducer, admin_client, consumer_config
from topics.catalog import Catalog
from topics.settings import Settings


def admin_dsn(settings: Settings) -> str:
    """The maintenance database of the server `settings` points at."""
    return settings.database_dsn().rsplit("/", 1)[0] + "/postgres"


def db_name(settings: Settings) -> str:
    """The database `settings` points at."""
    return settings.database_dsn().rsplit("/", 1)[1].split("?")[0]


def with_database(settings: Settings, name: str) -> Settings:
    """The same settings on another database of the same server."""
    dsn = settings.database_dsn().rsplit("/", 1)[0] + "/" + name
    return Settings(DATABASE_URL=dsn, AI_TRADER_ENV="test")  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def sink_template(database: Settings) -> Iterator[str]:
    """A migrated database, copied for each test (CREATE DATABASE ... TEMPLATE is fast)."""
    name = f"sinktmpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(database), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(with_database(database, name))
    yield name
    with psycopg.connect(admin_dsn(database), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))


@pytest.fixture
def sink_db(database: Settings, sink_template: str) -> Iterator[Settings]:
    """A migrated database of this test's own, dropped afterwards."""
    name = f"sink_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn(database), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}")
                     .format(sql.Identifier(name), sql.Identifier(sink_template)))
    yield with_database(database, name)
    with psycopg.connect(admin_dsn(database), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true")
                     .format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(0.1)


def count(settings: Settings, table: str, where: str = "TRUE") -> int:
    """Rows of a table (test helper: table and filter are constants of the tests)."""
    with psycopg.connect(settings.database_dsn()) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}")
                           .format(sql.Identifier(table), sql.SQL(where))).fetchone()
    assert row is not None
    return int(row[0])


def fetch(settings: Settings, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    with psycopg.connect(settings.database_dsn()) as conn:
        return conn.execute(query, params).fetchall()


def publish(settings: Settings, catalog: Catalog, logical: str,
            records: list[tuple[str, dict[str, Any]]]) -> None:
    """Produce (key, record) pairs to a topic and wait for the acknowledgements."""
    producer = BusProducer(settings, catalog)
    for key, record in records:
        producer.send(logical, key, record)
    producer.flush()


class SinkThread:
    """A SinkService running in a thread; `stop()` waits for it and re-raises its error."""

    def __init__(self, settings: Settings, catalog: Catalog, **config: Any) -> None:
        defaults: dict[str, Any] = {"group_id": f"sink-{uuid.uuid4().hex[:10]}",
                                    "linger_seconds": 0.05, "lag_interval": 0.5,
                                    "backoff_base": 0.05, "backoff_cap": 0.5}
        defaults.update(config)
        self.config = SinkConfig(**defaults)
        self.service = SinkService(settings, catalog, self.config)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)

    def _run(self) -> None:
        try:
            self.service.run(self._stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test by stop()
            self._error = exc

    def start(self) -> SinkThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "sink thread did not stop"
        if self._error is not None:
            raise self._error


@contextmanager
def running_sink(settings: Settings, catalog: Catalog, **config: Any) -> Iterator[SinkService]:
    """Run a sink for the duration of the block."""
    sink = SinkThread(settings, catalog, **config).start()
    try:
        yield sink.service
    finally:
        sink.stop()


def lag_of(settings: Settings, catalog: Catalog, group: str, topic: str) -> int:
    """A group's current lag on one logical topic, measured from the bus like the CLI does."""
    consumer = Consumer(consumer_config(settings, group))
    try:
        lags = group_lag(consumer, admin_client(settings), catalog)
        return sum(x.lag for x in lags if x.topic == topic)
    finally:
        consumer.close()
