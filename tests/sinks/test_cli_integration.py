"""`ai-trader sinks` as the supervisor runs it, and `ai-trader sinks lag`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from typing import Any

from tests import factories as f
from tests.sinks.conftest import count, publish, wait_for
from topics.catalog import Catalog
from topics.settings import Settings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(settings: Settings, catalog: Catalog) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": settings.database_dsn(),
            "AI_TRADER_TOPIC_PREFIX": catalog.prefix, "AI_TRADER_ENV": "test"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lag(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "api.cli", "sinks", "lag", "--json"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    data = json.loads(done.stdout)
    return {t["topic"]: t for t in data["topics"]} | {"_group": data["group"]}


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:  # noqa: S310
            return str(r.read().decode())
    except OSError:
        return ""


def test_sinks_command_writes_serves_metrics_and_stops_on_sigterm(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    port = _free_port()
    env = _env(sink_db, catalog)
    publish(bus, catalog, "news.items.v1", [("test", f.news_item(item_id=f"n-{i}"))
                                            for i in range(3)])
    before = _lag(env)
    assert before["_group"] == f"{catalog.prefix}ai-trader-sinks"
    assert before["news.items.v1"]["lag"] == 3
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "sinks", "--metrics-port",
                             str(port)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        publish(bus, catalog, "market.candles.v1",
                [(c["symbol"], c) for c in f.random_candles(10)])
        wait_for("the rows", lambda: count(sink_db, "snapshot_market") == 10
                 and count(sink_db, "snapshot_news") == 3)
        wait_for("the metrics", lambda: 'sink_rows_written_total{table="snapshot_market"} 10.0'
                 in _scrape(port))
        wait_for("lag 0", lambda: _lag(env)["market.candles.v1"]["lag"] == 0)
        after = _lag(env)
        assert after["market.candles.v1"]["committed"] == 10
        assert after["news.items.v1"]["lag"] == 0
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert '"sink stopped"' in out


def test_a_sink_killed_mid_stream_restarts_without_losing_or_duplicating_rows(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    env = _env(sink_db, catalog)
    candles = f.random_candles(30_000, seed=5)
    publish(bus, catalog, "market.candles.v1", [(c["symbol"], c) for c in candles])
    command = [sys.executable, "-m", "api.cli", "sinks", "--metrics-port", "0", "--batch", "200"]
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for("some rows", lambda: count(sink_db, "snapshot_market") >= 1000)
        proc.send_signal(signal.SIGKILL)  # no goodbye: batches in flight, offsets behind
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = count(sink_db, "snapshot_market")
    assert at_kill < len(candles), "the sink finished before it was killed: nothing tested"
    assert _lag(env)["market.candles.v1"]["lag"] > 0
    again = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for("every row", lambda: count(sink_db, "snapshot_market") == len(candles),
                 timeout=120)
        wait_for("lag 0", lambda: _lag(env)["market.candles.v1"]["lag"] == 0)
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(60)
    assert count(sink_db, "snapshot_market") == len(candles)
