"""The database going away under a running sink: it waits, commits nothing, loses nothing."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from prometheus_client import start_http_server
from psycopg import sql

from sinks.audit import verify_database
from tests import factories as f
from tests.sinks import factories as sf
from tests.sinks.conftest import (
    SinkThread,
    admin_dsn,
    count,
    db_name,
    lag_of,
    publish,
    running_sink,
    wait_for,
)
from topics.catalog import Catalog
from topics.settings import Settings


@contextmanager
def database_away(settings: Settings) -> Iterator[None]:
    """Refuse new connections to the database and cut the open ones; restore afterwards."""
    name = sql.Identifier(db_name(settings))
    with psycopg.connect(admin_dsn(settings), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = %s AND pid <> pg_backend_pid()", (db_name(settings),))
        try:
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


def _metric(port: int, name: str, label: str = "") -> float | None:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()  # noqa: S310
    for line in body.decode().splitlines():
        if line.startswith(name + label + " ") or (not label and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_outage_loses_nothing_commits_nothing_and_catches_up(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    candles = f.random_candles(250, seed=11)
    chain = sf.sealed_chain(6)
    publish(bus, catalog, "market.candles.v1", [(c["symbol"], c) for c in candles[:50]])
    with running_sink(sink_db, catalog, lag_interval=0.2) as sink:
        group = sink.config.group_id
        port = _free_port()
        server, _ = start_http_server(port, addr="127.0.0.1", registry=sink.metrics.registry)
        try:
            wait_for("the first 50 candles", lambda: count(sink_db, "snapshot_market") == 50)
            with database_away(sink_db):
                publish(bus, catalog, "market.candles.v1",
                        [(c["symbol"], c) for c in candles[50:]])
                publish(bus, catalog, "decisions.log.v1", [("paper-1", e) for e in chain])
                wait_for("several failed attempts", lambda: (_metric(
                    port, "sink_db_errors_total") or 0) >= 3)
                assert _metric(port, "sink_database_up") == 0
                # nothing unwritten was committed on the bus
                assert lag_of(bus, catalog, group, "market.candles.v1") == 200
                assert lag_of(bus, catalog, group, "decisions.log.v1") == 6
                wait_for("the lag gauge", lambda: _metric(
                    port, "sink_lag_records", '{topic="market.candles.v1"}') == 200)
            wait_for("the sink to catch up", lambda: count(sink_db, "snapshot_market") == 250
                     and count(sink_db, "decision_history") == 6)
            wait_for("lag 0", lambda: lag_of(bus, catalog, group, "market.candles.v1") == 0
                     and lag_of(bus, catalog, group, "decisions.log.v1") == 0)
            wait_for("the gauge back to 0", lambda: _metric(
                port, "sink_lag_records", '{topic="market.candles.v1"}') == 0)
            assert _metric(port, "sink_database_up") == 1
        finally:
            server.shutdown()
    assert count(sink_db, "snapshot_market") == 250
    assert count(sink_db, "decision_history") == 6
    assert verify_database(sink_db).ok


def test_a_sink_stopped_during_an_outage_commits_nothing_and_the_next_one_writes_it(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    news = [f.news_item(item_id=f"n-{i}") for i in range(20)]
    sink = SinkThread(sink_db, catalog).start()
    group = sink.config.group_id
    try:
        with database_away(sink_db):
            publish(bus, catalog, "news.items.v1", [("test", n) for n in news])
            wait_for("a failed attempt", lambda: (sink.service.metrics.registry.get_sample_value(
                "sink_db_errors_total") or 0) >= 1)
            sink.stop()  # while the database is away
            assert lag_of(bus, catalog, group, "news.items.v1") == 20
    finally:
        sink.stop()
    assert count(sink_db, "snapshot_news") == 0
    with running_sink(sink_db, catalog, group_id=group):
        wait_for("the news", lambda: count(sink_db, "snapshot_news") == 20)
        wait_for("lag 0", lambda: lag_of(bus, catalog, group, "news.items.v1") == 0)
