"""The executor's rules without the bus: at most once at the broker, refusals with reasons."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.brokers.mt5.client import Mt5Session
from connectors.brokers.mt5.config import Mt5Config
from connectors.brokers.mt5.execution import Mt5Broker
from connectors.brokers.paper.config import PaperConfig
from connectors.brokers.paper.execution import PaperBroker
from connectors.core.backoff import Backoff
from connectors.core.clock import ManualClock
from connectors.orders.executor import ExecutorConfig, OrderExecutor, RetryLater
from connectors.orders.ledger import FAILED, SENDING, SENT, Ledger, compact_id
from tests.connectors.factories import T0, decision, gold_candle, order_request
from tests.fakes.mt5 import FakeMetaTrader5

MAGIC = 240_501


class Crash(Exception):
    """Raised by a hook to simulate the process dying there."""


def mt5_executor(tmp_path: Path, fake: FakeMetaTrader5 | None = None, clock: ManualClock | None
                 = None, hook: object = None, reconcile: bool = True
                 ) -> tuple[OrderExecutor, FakeMetaTrader5]:
    clock = clock or ManualClock(T0)
    fake = fake or FakeMetaTrader5(clock=clock)
    config = Mt5Config(account="paper-1", login=5551234, password=SecretStr("s3cret-pass"),
                       magic=MAGIC)
    session = Mt5Session(fake, config, sleep=lambda s: None, backoff=Backoff(jitter=0.0))
    executor = OrderExecutor(Mt5Broker(session, config, clock), Ledger(tmp_path / "l.sqlite"),
                             ExecutorConfig("paper-1", "mt5", MAGIC), clock,
                             hook=hook, sleep=lambda s: None)  # type: ignore[arg-type]
    if reconcile:
        executor.reconcile()
    return executor, fake


def test_filled_result_carries_broker_ids_price_and_volume(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    request = order_request()

    result = executor.handle(request)

    assert result["status"] == "filled"
    assert result["broker_order_id"] == fake.sent[0].order or next(iter(fake.positions))
    assert result["filled_price"] == 2380.25
    assert result["filled_volume"] == Decimal("0.10")
    assert result["retcode"] == 10009
    assert executor.ledger.get(request["request_id"]).state == SENT  # type: ignore[union-attr]


def test_same_request_twice_sends_once_and_returns_the_same_result(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    request = order_request()

    first = executor.handle(request)
    second = executor.handle(request)

    assert first == second
    assert fake.orders_sent_with(compact_id(request["request_id"])) == 1


def test_timeout_that_did_execute_is_found_by_comment_and_not_sent_again(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    fake.script("timeout_after")
    request = order_request()

    result = executor.handle(request)

    assert result["status"] == "filled"
    assert result["message"].startswith("recovered")
    assert fake.orders_sent_with(compact_id(request["request_id"])) == 1
    assert fake.checks == 1  # no second attempt at all


def test_timeout_that_did_not_execute_is_retried_after_a_lookup(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    fake.script("timeout_before")
    request = order_request()

    result = executor.handle(request)

    assert result["status"] == "filled"
    assert fake.orders_sent_with(compact_id(request["request_id"])) == 1
    assert fake.checks == 2


def test_requotes_are_retried_then_reported_with_the_retcode(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    fake.script("requote", "requote", "requote")

    result = executor.handle(order_request())

    assert (result["status"], result["error_code"], result["retcode"]) == (
        "rejected", "requote", 10004)
    assert fake.sent == []


def test_broker_rejection_is_a_failed_result_with_code_and_message(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    fake.script(("reject", 10019))

    result = executor.handle(order_request())

    assert (result["status"], result["error_code"], result["retcode"]) == (
        "rejected", "no_money", 10019)
    assert "TRADE_RETCODE_NO_MONEY" in result["message"]


def test_expired_request_is_not_sent(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    executor, fake = mt5_executor(tmp_path, clock=clock)
    request = order_request()
    clock.advance(timedelta(minutes=30))

    result = executor.handle(request)

    assert (result["status"], result["error_code"]) == ("expired", "expired")
    assert fake.sent == []
    assert fake.checks == 0
    assert executor.ledger.get(request["request_id"]).state == FAILED  # type: ignore[union-attr]


def test_request_arriving_while_halted_is_not_sent_until_resumed(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)

    executor.on_decision(decision("ai_halted"))
    halted = executor.handle(order_request())
    executor.on_decision(decision("ai_resumed"))
    resumed = executor.handle(order_request())

    assert (halted["status"], halted["error_code"]) == ("rejected", "halted")
    assert resumed["status"] == "filled"
    assert len(fake.sent) == 1


def test_halt_of_another_account_does_not_stop_this_one(tmp_path: Path) -> None:
    executor, _ = mt5_executor(tmp_path)

    executor.on_decision(decision("ai_halted", account="other"))

    assert executor.handle(order_request())["status"] == "filled"


def test_halted_flag_survives_a_restart(tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    executor.on_decision(decision("ai_halted"))
    executor.ledger.close()

    again, _ = mt5_executor(tmp_path, fake)

    assert again.handle(order_request())["error_code"] == "halted"


def test_account_is_reduce_only_until_reconciliation_passes(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    fake = FakeMetaTrader5(clock=clock)
    fake.fail_initialize(100)
    config = Mt5Config(account="paper-1", magic=MAGIC, connect_attempts=1)
    broker = Mt5Broker(Mt5Session(fake, config, sleep=lambda s: None), config, clock)
    executor = OrderExecutor(broker, Ledger(tmp_path / "l.sqlite"),
                             ExecutorConfig("paper-1", "mt5", MAGIC), clock)
    with pytest.raises(Exception, match="cannot connect"):
        executor.reconcile()
    fake.fail_initialize(0)
    fake.connected = True  # the terminal is back for lookups, reconciliation not yet re-run

    refused = executor.handle(order_request())
    executor.reconcile()
    accepted = executor.handle(order_request())

    assert (refused["status"], refused["error_code"]) == ("rejected", "reduce_only")
    assert accepted["status"] == "filled"
    assert len(fake.sent) == 1


def test_broker_down_before_sending_asks_to_retry_later_and_sends_once_back(
        tmp_path: Path) -> None:
    executor, fake = mt5_executor(tmp_path)
    fake.drop()
    fake.fail_initialize(100)
    request = order_request()

    with pytest.raises(RetryLater):
        executor.handle(request)
    fake.fail_initialize(0)
    result = executor.handle(request)

    assert result["status"] == "filled"
    assert fake.orders_sent_with(compact_id(request["request_id"])) == 1


@pytest.mark.parametrize("point", ["before_send", "after_send", "after_ledger"])
def test_crash_at_each_point_then_restart_gives_one_order_and_one_outcome(
        tmp_path: Path, point: str) -> None:
    armed = [True]

    def hook(where: str, request_id: str) -> None:
        if where == point and armed[0]:
            armed[0] = False
            raise Crash(where)

    executor, fake = mt5_executor(tmp_path, hook=hook)
    request = order_request()
    with pytest.raises(Crash):
        executor.handle(request)
    executor.ledger.close()

    restarted, _ = mt5_executor(tmp_path, fake)
    result = restarted.handle(request)

    assert result["status"] == "filled"
    assert fake.orders_sent_with(compact_id(request["request_id"])) == 1
    assert restarted.handle(request) == result


def test_reconciliation_resolves_in_flight_orders_and_reports_unknown_positions(
        tmp_path: Path) -> None:
    def crash_after_send(where: str, request_id: str) -> None:
        if where == "after_send":
            raise Crash(where)

    executor, fake = mt5_executor(tmp_path, hook=crash_after_send)
    request = order_request()
    with pytest.raises(Crash):
        executor.handle(request)
    assert executor.ledger.get(request["request_id"]).state == SENDING  # type: ignore[union-attr]
    fake.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                     "magic": MAGIC, "comment": "manual"})
    fake.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "magic": 0,
                     "comment": "by hand"})
    executor.ledger.close()

    restarted, _ = mt5_executor(tmp_path, fake, reconcile=False)

    report = restarted.reconcile()
    assert report.recovered == [request["request_id"]]
    assert len(report.unknown_positions) == 1
    assert len(report.foreign_positions) == 1
    assert restarted.ledger.get(request["request_id"]).state == SENT  # type: ignore[union-attr]


def test_paper_broker_works_behind_the_same_executor(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    paper = PaperBroker(PaperConfig(state_file=tmp_path / "paper.json"), clock)
    paper.on_candle(gold_candle(0, 2380.0))
    executor = OrderExecutor(paper, Ledger(tmp_path / "l.sqlite"),
                             ExecutorConfig("paper-1", "paper", MAGIC), clock)
    executor.reconcile()
    request = order_request()

    result = executor.handle(request)

    assert result["status"] == "filled"
    assert result["filled_price"] == pytest.approx(2380.3)
    assert paper.find(compact_id(request["request_id"]), MAGIC) is not None


def test_compact_id_fits_the_mt5_comment_and_is_stable() -> None:
    uid = "6f1c2b1e-6a8e-4b6f-9a55-0e4a1f7b2c3d"

    assert compact_id(uid) == "ait:6f1c2b1e6a8e4b6f9a550e4a1f"
    assert len(compact_id(uid)) == 30
    assert compact_id("idea-1") == compact_id("idea-1") != compact_id("idea-2")
