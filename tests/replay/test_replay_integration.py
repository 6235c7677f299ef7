"""`ai-trader replay` on decisions made by the real streams worker, read back from the
topics and from the database the real sinks wrote.

The worker (`ai-trader worker`) and the sinks (`ai-trader sinks`) run as subprocesses on
this test's own topics and database; replay runs as the CLI the user types.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from streams.core.audit import seal
from streams.replay import is_idea_decision
from tests.conftest import scratch_database
from tests.streams.harness import (
    ACCOUNT,
    ANY_BAR_BUY,
    REPO,
    Bus,
    WorkerProcess,
    candles,
    fresh_context,
    minute_floor,
    now,
)
from topics.catalog import Catalog
from topics.settings import Settings

WARM_UP = 14
RISK_ON = {"ai_trading_enabled": True, "min_confidence_threshold": "0",
           "max_lot_size": "1.00", "max_concurrent_trades": 2,
           "daily_profit_target": "5000.00", "max_drawdown_amount": "3000.00",
           "watchlist": ["XAUUSD"]}


def _env(bus: Settings, catalog: Catalog, database: Settings) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bus.kafka_bootstrap_servers,
            "AI_TRADER_TOPIC_PREFIX": catalog.prefix, "DATABASE_URL": database.database_dsn(),
            "AI_TRADER_ENV": "test", "AI_TRADER_METRICS_PORT": "0"}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180, check=False)


def _verify(env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    done = _cli(env, "replay", "--verify", "--json", "--no-progress", *extra)
    assert done.stdout.startswith("{"), done.stderr
    return done.returncode, json.loads(done.stdout)


@contextmanager
def _sinks(env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "sinks"], env=env, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _count(database: Settings, table: str) -> int:
    try:
        with psycopg.connect(database.database_dsn(), connect_timeout=5) as conn:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
    except psycopg.Error:
        return -1  # not migrated yet
    return int(row[0]) if row else 0


def _until(what: str, check: Callable[[], bool], timeout: float = 240.0,
           detail: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} {detail()}")


def _feed(io: Bus, batch: list[dict[str, Any]], warm: bool) -> None:
    head = batch[:WARM_UP] if warm else []
    before = len(io.of("market.indicators.v1"))
    for c in head:
        io.producer.send("market.candles.v1", c["symbol"], c)
    io.producer.flush()
    if head:  # strategies reach the market agent through a topic: let it warm up first
        io.wait(lambda rs: len(io.of("market.indicators.v1")) >= before + len(head), 60,
                "warm-up indicators")
    for c in batch[len(head):]:
        io.producer.send("market.candles.v1", c["symbol"], c)
    io.producer.flush()


def _make_decisions(io: Bus) -> list[dict[str, Any]]:
    """Supervised ideas first (ai_proposed), then autonomous ones (executed, rejected)."""
    io.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 90,
            "the seed commands' replies")
    put = io.command("put_strategy", strategy_id=ANY_BAR_BUY["id"],
                     payload={"definition": ANY_BAR_BUY})
    assert io.reply(put["command_id"])["status"] == "accepted"
    start = minute_floor(now()) - timedelta(minutes=41)
    fresh_context(io, start + timedelta(minutes=40))
    bars = candles(start, 30)

    def decided(action: str) -> int:
        return sum(1 for d in io.of("decisions.log.v1") if d["action"] == action)

    _feed(io, bars[:20], warm=True)
    io.wait(lambda rs: decided("ai_proposed") >= 5, 60, "supervised ideas")
    risk = io.command("set_risk_config", payload=RISK_ON)
    assert io.reply(risk["command_id"])["status"] == "accepted"
    _feed(io, bars[20:], warm=False)
    io.wait(lambda rs: decided("ai_auto_executed") == 2 and decided("risk_rejected") >= 8, 60,
            "autonomous decisions")
    return io.of("decisions.log.v1")


@pytest.fixture
def database(stack_settings: Settings) -> Iterator[Settings]:
    """This test's own database: the session one holds decisions other modules wrote,
    and this test counts and verifies every decision in the database it reads."""
    with scratch_database(stack_settings) as settings:
        yield settings


def test_replay_proves_the_workers_decisions_from_topics_and_database(
    bus: Settings, catalog: Catalog, database: Settings, tmp_path: Path
) -> None:
    env = _env(bus, catalog, database)
    worker = WorkerProcess(bus, catalog, tmp_path)
    worker.start()
    io = Bus(bus, catalog)
    io.follow(("decisions.log.v1", "control.replies.v1", "market.indicators.v1"))
    try:
        decisions = _make_decisions(io)
    finally:
        worker.stop()
    ideas = [d for d in decisions if is_idea_decision(d)]
    assert {"ai_proposed", "ai_auto_executed", "risk_rejected"} <= {d["action"] for d in ideas}

    # 1. From the topics alone: every idea decision re-decided, 0 differences.
    code, topics = _verify(env, "--from-topics")
    assert code == 0, topics
    assert topics["differences"] == 0
    assert topics["verified"] == len(ideas)
    assert topics["decisions_read"] == len(decisions)  # the non-idea ones are read, not re-run

    with _sinks(env, tmp_path / "sinks.log"):
        _until("the decisions in the database",
               lambda: _count(database, "decision_history") == len(decisions)
               and _count(database, "snapshot_bundles") >= len(ideas),
               detail=lambda: (f"(decision_history {_count(database, 'decision_history')}/"
                               f"{len(decisions)}, snapshot_bundles "
                               f"{_count(database, 'snapshot_bundles')}/{len(ideas)}; sinks log: "
                               f"{(tmp_path / 'sinks.log').read_text()[-2000:]})"))

        # 2. From the database the sinks wrote: the same proof.
        code, db = _verify(env)
        assert code == 0, db
        assert (db["verified"], db["differences"]) == (len(ideas), 0)

        # 3. One decision in full, from both sources.
        executed = next(d for d in ideas if d["action"] == "ai_auto_executed")
        shown = _cli(env, "replay", executed["decision_id"], "--no-progress")
        assert shown.returncode == 0, shown.stderr
        for part in ("ai_auto_executed (auto_execute)", "Confidence", "strategy_match",
                     "Checks:", "max_concurrent_trades", "Indicators:", "rsi_14", "Calendar",
                     "Account:", "Risk config", f"Strategy: {ANY_BAR_BUY['name']}"):
            assert part in shown.stdout, part
        from_db = json.loads(_cli(env, "replay", executed["decision_id"], "--json").stdout)
        from_bus = json.loads(_cli(env, "replay", executed["decision_id"], "--json",
                                   "--from-topics", "--no-progress").stdout)
        for key in ("decision", "confidence", "checks", "risk_config", "bundle"):
            assert from_db[key] == from_bus[key], key

        # 4. A forged decision (valid Avro, valid hash, confidence raised) is caught by both.
        forged = {k: v for k, v in executed.items() if k != "hash"}
        forged.update(decision_id=str(uuid.uuid4()),
                      confidence=executed["confidence"] + Decimal("5.00"))
        io.send("decisions.log.v1", ACCOUNT, seal(forged, executed["hash"]))
        _until("the forged decision in the database",
               lambda: _count(database, "decision_history") == len(decisions) + 1)
        for extra in ((), ("--from-topics",)):
            done = _cli(env, "replay", "--verify", "--no-progress", *extra)
            assert done.returncode == 1, done.stdout + done.stderr
            assert f"DIFFERENT: decision {forged['decision_id']}" in done.stdout
            assert f"recorded: {executed['confidence'] + Decimal('5.00')}" in done.stdout
            assert f"replayed: {executed['confidence']}" in done.stdout
            assert f"{len(ideas) + 1} decisions verified" in done.stdout
    io.close()
