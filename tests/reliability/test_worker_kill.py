"""`kill -9` of the real worker in the middle of a stream of candles, then a restart.

Candles keep arriving while the worker is dead. After the restart every idea the market
agent published must have exactly one decision and one first status (a redelivered copy
is the same record, never a second verdict), no idea may have two different order
requests, and the decision log must be one unbroken hash chain with a decision for
every idea: nothing lost, nothing decided twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.core.audit import verify_chain
from tests.reliability.procs import Service, service_env
from tests.streams.harness import (
    ACCOUNT,
    ANY_BAR_BUY,
    KEY,
    Bus,
    candles,
    fresh_context,
    minute_floor,
    now,
)
from topics.catalog import Catalog
from topics.settings import Settings

BARS = 90
STALL_SECONDS = 30
WARM_UP = 14
RISK = {"ai_trading_enabled": True, "min_confidence_threshold": "0", "max_lot_size": "1.00",
        "max_concurrent_trades": 40, "daily_profit_target": "5000.00",
        "max_drawdown_amount": "3000.00", "watchlist": ["XAUUSD"]}
#: Every third idea may auto-execute (room for 25 positions), the rest are rejected.
STRATEGY = {**ANY_BAR_BUY, "risk_caps": {"max_lot_size": 1.0, "max_concurrent_positions": 25,
                                         "lot_size": 0.1}}


@pytest.fixture
def worker(bus: Settings, catalog: Catalog, tmp_path: Path) -> Iterator[Service]:
    # The watchdog's limit is short here: a worker hung after the restart stops itself
    # and is restarted below, as `ai-trader run` would.
    service = Service("worker", ["worker"],
                      service_env(bus, catalog, ACCOUNT, KEY, tmp_path,
                                  AI_TRADER_WORKER_STALL_SECONDS=str(STALL_SECONDS)),
                      tmp_path)
    service.start()
    yield service
    service.stop()


def _wait_supervised(io: Bus, worker: Service, check: Callable[[list[Any]], bool],
                     timeout: float, what: str) -> int:
    """`io.wait`, restarting the worker whenever it has stopped (the supervisor's job);
    returns how many restarts that took."""
    deadline = time.monotonic() + timeout
    restarts = 0
    while True:
        try:
            io.wait(check, 5, what)
            return restarts
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{exc}\nthe worker's log since the kill:\n"
                                     f"{worker.output().split('==== start 2')[-1][-6000:]}"
                                     ) from exc
        if not worker.alive():
            worker.start()
            restarts += 1


def _sender(io: Bus, bars: list[dict[str, Any]], every: float) -> threading.Thread:
    def run() -> None:
        for bar in bars:
            io.producer.send("market.candles.v1", bar["symbol"], bar)
            io.producer.flush()
            time.sleep(every)
    thread = threading.Thread(target=run, name="candles", daemon=True)
    thread.start()
    return thread


def test_kill_9_mid_stream_loses_nothing_and_decides_nothing_twice(
        bus: Settings, catalog: Catalog, worker: Service) -> None:
    io = Bus(bus, catalog)
    io.follow(("decisions.log.v1", "ideas.status.v1", "orders.requests.v1", "gate.inbox.v1",
               "control.replies.v1", "market.indicators.v1"))
    io.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 90, "the seed")
    for command in (io.command("put_strategy", strategy_id=STRATEGY["id"],
                               payload={"definition": STRATEGY}),
                    io.command("set_risk_config", payload=RISK)):
        assert io.reply(command["command_id"])["status"] == "accepted"
    start = minute_floor(now()) - timedelta(minutes=BARS + 1)
    fresh_context(io, start + timedelta(minutes=BARS))
    bars = candles(start, BARS)
    for bar in bars[:WARM_UP]:
        io.producer.send("market.candles.v1", bar["symbol"], bar)
    io.producer.flush()
    io.wait(lambda rs: len(io.of("market.indicators.v1")) >= WARM_UP, 60, "warm-up")

    sender = _sender(io, bars[WARM_UP:], every=0.05)
    io.wait(lambda rs: len(io.of("decisions.log.v1")) >= 25, 60, "decisions before the kill")
    worker.kill9()  # mid-stream: candles keep coming while it is dead
    killed_at = len(io.of("decisions.log.v1"))
    time.sleep(1.0)
    worker.start()
    sender.join(60)

    def inbox_ideas() -> set[str]:
        return {m["idea"]["idea_id"] for m in io.of("gate.inbox.v1") if m.get("idea")}

    ideas_expected = BARS - WARM_UP
    restarts = _wait_supervised(
        io, worker, lambda rs: len(inbox_ideas()) >= ideas_expected
        and {d["trade_idea_id"] for d in io.of("decisions.log.v1")} >= inbox_ideas(),
        180, "a decision for every idea after the restart")
    time.sleep(2.0)  # let redeliveries, if any, arrive before counting
    io.wait(lambda rs: True, 2, "the tail")

    ideas = inbox_ideas()
    decisions = io.of("decisions.log.v1")
    statuses = io.of("ideas.status.v1")
    orders = io.of("orders.requests.v1")
    print(f"killed after {killed_at} decisions, {restarts} watchdog restarts; "
          f"{len(ideas)} ideas, {len(decisions)} "
          f"decision records, {len(statuses)} statuses, {len(orders)} order requests")

    # Every idea: one decision (copies identical), one first status.
    by_idea: dict[str, set[str]] = defaultdict(set)
    for d in decisions:
        if d["trade_idea_id"]:
            by_idea[d["trade_idea_id"]].add(d["hash"])
    assert set(by_idea) == ideas
    assert {i: h for i, h in by_idea.items() if len(h) != 1} == {}
    first: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for s in statuses:
        if s.get("idea") is not None:
            first[s["idea_id"]].add((s["status"], s["decision_id"], s["reason"]))
    assert set(first) == ideas
    assert {i: v for i, v in first.items() if len(v) != 1} == {}
    assert Counter(next(iter(v))[0] for v in first.values())["auto_executing"] >= 20

    # Orders: one order per idea at most, copies identical.
    contents: dict[str, set[str]] = defaultdict(set)
    for o in orders:
        contents[o["request_id"]].add(repr(sorted(o.items())))
    assert {r: len(c) for r, c in contents.items() if len(c) != 1} == {}
    auto = {i for i, v in first.items() if next(iter(v))[0] == "auto_executing"}
    assert set(contents) == auto

    # The decision log: one chain, nothing missing, no two events for one decision id.
    unique = {d["hash"]: d for d in decisions}
    report = verify_chain(ACCOUNT, unique.values())
    assert report.ok, report.first_break
    assert report.verified == len(unique)
    ids = Counter(d["decision_id"] for d in unique.values())
    assert [i for i, n in ids.items() if n > 1] == []
    # the kill's restart, plus one per watchdog stop (a faust restart that hung), each
    # of which the worker explained
    assert worker.starts == 2 + restarts
    assert worker.log.read_text().count("agent watchdog failed: WorkerStalled") == restarts
    after_kill = worker.output().split("==== start 2")[-1]
    at = after_kill.find("Traceback")
    assert at < 0, after_kill[max(0, at - 1500):at + 3000]
