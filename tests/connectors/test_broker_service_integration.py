"""The broker service on the real bus: requests in, results and account states out.

Results on `orders.results.v1` may repeat after a crash (published, then killed
before the offset commit); a repeat always carries the same outcome, and
consumers dedupe by `request_id`. What must never happen — a second order at the
broker, or a request without a result — is what the crash test checks.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.brokers.base import Broker
from connectors.brokers.mt5.client import Mt5Session
from connectors.brokers.mt5.config import Mt5Config
from connectors.brokers.mt5.execution import Mt5Broker
from connectors.brokers.paper.config import PaperConfig
from connectors.brokers.paper.execution import PaperBroker
from connectors.core.backoff import Backoff
from connectors.core.clock import ManualClock
from connectors.orders.ledger import TERMINAL, compact_id
from connectors.orders.service import BrokerLoop
from connectors.service import broker_loop
from tests.connectors.bus import read
from tests.connectors.factories import T0, decision, gold_candle, order_request, refresh_command
from tests.fakes.mt5 import FakeMetaTrader5
from topics.bus import BusProducer
from topics.catalog import Catalog
from topics.settings import Settings

MAGIC = 240_501


class InjectedCrash(Exception):
    """The executor process 'dies' here (raised from a hook)."""


def _settings(bus: Settings, tmp_path: Path, broker: str) -> Settings:
    return bus.model_copy(update={"state_dir": tmp_path, "broker": broker, "mt5_magic": MAGIC,
                                  "account_snapshot_interval_seconds": 3600.0})


def _mt5(fake: FakeMetaTrader5, clock: ManualClock) -> Mt5Broker:
    config = Mt5Config(account="paper-1", login=5551234, password=SecretStr("s3cret-pass"),
                       magic=MAGIC)
    session = Mt5Session(fake, config, sleep=lambda s: None, backoff=Backoff(jitter=0.0))
    return Mt5Broker(session, config, clock)


def _paper(tmp_path: Path, clock: ManualClock) -> PaperBroker:
    paper = PaperBroker(PaperConfig(state_file=tmp_path / "paper.json",
                                    initial_balance=Decimal("1000000.00")), clock)
    if "XAUUSD" not in paper.state.quotes:
        paper.set_quote("XAUUSD", 2380.0, 0.3, T0)
    return paper


def _publish(bus: Settings, catalog: Catalog, topic: str, records: list[dict[str, Any]]) -> None:
    producer = BusProducer(bus, catalog)
    for rec in records:
        producer.send(topic, rec["account"], rec)
    producer.flush()


def _run_until(loop: BrokerLoop, done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        loop.step()
    assert done(), "the broker loop did not get there in time"


def _close(loop: BrokerLoop) -> None:
    loop.consumer.close()
    if loop.prices is not None:
        loop.prices.close()
    loop.executor.ledger.close()


def test_request_becomes_a_filled_result_and_an_account_state_with_the_idea(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    settings = _settings(bus, tmp_path, "paper")
    producer = BusProducer(bus, catalog)
    producer.send("market.candles.v1", "XAUUSD", gold_candle(0, 2380.0))
    producer.flush()
    paper = PaperBroker(PaperConfig(state_file=tmp_path / "paper.json"), clock)
    loop = broker_loop(settings, catalog, paper, clock)
    loop.start()
    _run_until(loop, lambda: "XAUUSD" in paper.state.quotes)  # the price came off the topic
    request = order_request()
    _publish(bus, catalog, "orders.requests.v1", [request])
    _run_until(loop, lambda: loop.results_published == 1)
    _close(loop)

    results = read(bus, catalog, "orders.results.v1", 1)
    states = read(bus, catalog, "account.state.v1", 3, settle=0.5)
    result = results[0].value
    assert (result["request_id"], result["status"], result["broker"]) == (
        request["request_id"], "filled", "paper")
    assert result["filled_price"] == pytest.approx(2380.3)
    assert states[0].value["reconciled"] is False  # announced before reconciliation
    last = states[-1].value
    assert last["reconciled"] is True
    assert [p["idea_id"] for p in last["positions"]] == [request["idea_id"]]
    assert last["positions"][0]["take_profit"] == [2395.0, 2400.0]  # all TPs reported
    assert last["equity"] == last["balance"] + last["open_pl"]
    health = read(bus, catalog, "feeds.health.v1", 1)
    assert health[0].key == "broker.paper"


def test_refresh_command_publishes_the_account_at_once(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    loop = broker_loop(_settings(bus, tmp_path, "paper"), catalog, _paper(tmp_path, clock),
                       clock)
    loop.start()
    before = len(read(bus, catalog, "account.state.v1", 2))
    _publish(bus, catalog, "broker.commands.v1", [refresh_command()])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(read(bus, catalog, "account.state.v1",
                                                   before + 1, timeout=0.5)) <= before:
        loop.step()
    _close(loop)

    assert len(read(bus, catalog, "account.state.v1", before + 1)) == before + 1


def test_halt_on_the_decision_log_blocks_requests_that_follow(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    fake = FakeMetaTrader5(clock=clock)
    loop = broker_loop(_settings(bus, tmp_path, "mt5"), catalog, _mt5(fake, clock), clock)
    loop.start()
    _publish(bus, catalog, "decisions.log.v1", [decision("ai_halted")])
    _run_until(loop, lambda: loop.executor.halted)
    _publish(bus, catalog, "orders.requests.v1", [order_request()])
    _run_until(loop, lambda: loop.results_published == 1)
    _close(loop)

    result = read(bus, catalog, "orders.results.v1", 1)[0].value
    assert (result["status"], result["error_code"]) == ("rejected", "halted")
    assert fake.sent == []


def test_broker_down_keeps_the_request_until_it_is_back_then_sends_once(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    fake = FakeMetaTrader5(clock=clock)
    loop = broker_loop(_settings(bus, tmp_path, "mt5"), catalog, _mt5(fake, clock), clock)
    loop.start()
    fake.drop()
    fake.fail_initialize(1000)
    request = order_request()
    _publish(bus, catalog, "orders.requests.v1", [request])
    _run_until(loop, lambda: loop.health.consecutive_errors > 0)
    assert loop.results_published == 0
    assert loop.pending
    fake.fail_initialize(0)
    loop._retry_at = 0.0  # skip the backoff wait
    _run_until(loop, lambda: loop.results_published == 1)
    _close(loop)

    assert fake.orders_sent_with(compact_id(request["request_id"])) == 1
    assert read(bus, catalog, "orders.results.v1", 1)[0].value["status"] == "filled"


def _crash_hook(rng: random.Random, state: dict[str, int]) -> Any:
    def hook(point: str, request_id: str) -> None:
        state["calls"] += 1
        if state["crashes"] < state["target"] and rng.random() < 0.3:
            state["crashes"] += 1
            state[point] = state.get(point, 0) + 1
            raise InjectedCrash(point)
    return hook


@pytest.mark.parametrize("broker_kind", ["mt5", "paper"])
def test_executor_killed_at_random_points_never_duplicates_or_loses_an_order(
        bus: Settings, catalog: Catalog, tmp_path: Path, broker_kind: str) -> None:
    rng = random.Random(20260302 + len(broker_kind))
    clock = ManualClock(T0)
    fake = FakeMetaTrader5(clock=clock)
    settings = _settings(bus, tmp_path, broker_kind)
    requests = [order_request(lot_size=order_request()["lot_size"]) for _ in range(24)]
    for expired in requests[::8]:
        expired["expires_at"] = T0 - timedelta(seconds=1)
    _publish(bus, catalog, "orders.requests.v1", requests)
    state = {"crashes": 0, "calls": 0, "target": 55}
    hook = _crash_hook(rng, state)
    ids = {r["request_id"] for r in requests}
    restarts = 0

    def all_terminal(loop: BrokerLoop) -> bool:
        counts = loop.executor.ledger.counts()
        return sum(counts.get(s, 0) for s in TERMINAL) == len(ids) and not loop.pending

    while True:
        if broker_kind == "mt5":  # the terminal misbehaves too: timeouts after/before executing
            fake.script(*rng.choices(["ok", "timeout_after", "timeout_before"], k=3))
            broker: Broker = _mt5(fake, clock)
        else:
            broker = _paper(tmp_path, clock)
        loop = broker_loop(settings, catalog, broker, clock, hook)
        try:
            loop.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                loop.step()
                if all_terminal(loop) and state["crashes"] >= state["target"]:
                    for _ in range(5):  # drain redeliveries, commit
                        loop.step()
                    break
            _close(loop)
            break
        except InjectedCrash:
            _close(loop)  # the consumer leaves without committing, like a dead process
            restarts += 1
        assert restarts < 400

    results = read(bus, catalog, "orders.results.v1", len(ids), settle=2.0)
    outcomes: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for r in results:
        v = r.value
        outcomes[v["request_id"]].add((v["status"], v["broker_order_id"], v["error_code"],
                                       v["filled_price"]))
    assert state["crashes"] >= 50, state
    assert set(outcomes) == ids  # no request lost
    assert all(len(o) == 1 for o in outcomes.values())  # repeats carry the same outcome
    for req in requests:
        (status, order_id, error_code, _), = outcomes[req["request_id"]]
        comment = compact_id(req["request_id"])
        if req["expires_at"] <= T0:
            assert (status, error_code) == ("expired", "expired")
        else:
            assert status == "filled", (req["request_id"], error_code)
        sent = (fake.orders_sent_with(comment) if broker_kind == "mt5" else
                sum(1 for d in _paper(tmp_path, clock).state.deals
                    if d.comment == comment and d.entry == "in"))
        assert sent == (1 if status == "filled" else 0), req["request_id"]
    print(f"{broker_kind}: {state['crashes']} crashes over {state['calls']} hook calls, "
          f"{len(results)} results published for {len(ids)} requests; by point: "
          f"{ {k: v for k, v in state.items() if k not in ('crashes', 'calls', 'target')} }")
