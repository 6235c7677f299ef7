"""The MT5 adapter against the fake MetaTrader5 module: requests, retcodes, reconnects, lookups."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from connectors.brokers.base import BrokerError, BrokerUnavailable, OrderTicket, OutcomeUnknown
from connectors.brokers.mt5.client import Mt5Session
from connectors.brokers.mt5.config import Mt5Config
from connectors.brokers.mt5.execution import Mt5Broker
from connectors.brokers.mt5.parse import server_time
from connectors.core.backoff import Backoff
from connectors.core.clock import ManualClock
from connectors.market.data import Mt5CandleFeed
from connectors.orders.ledger import compact_id
from tests.connectors.factories import T0
from tests.fakes import mt5 as fake_mt5
from tests.fakes.mt5 import FakeMetaTrader5

MAGIC = 240_501


def make(fake: FakeMetaTrader5 | None = None, **kw: object) -> tuple[FakeMetaTrader5, Mt5Broker,
                                                                      list[float]]:
    fake = fake or FakeMetaTrader5(clock=ManualClock(T0))
    config = Mt5Config(account="5551234", login=5551234, password=SecretStr("s3cret-pass"),
                       server="FakeBroker-Demo", magic=MAGIC, **kw)  # type: ignore[arg-type]
    sleeps: list[float] = []
    session = Mt5Session(fake, config, sleep=sleeps.append,
                         backoff=Backoff(base=1.0, cap=8.0, jitter=0.0))
    return fake, Mt5Broker(session, config, ManualClock(T0)), sleeps


def ticket(request_id: str = "idea-1", **kw: object) -> OrderTicket:
    values: dict = {"request_id": request_id, "comment": compact_id(request_id),
                    "symbol": "XAUUSD", "direction": "buy", "order_type": "market",
                    "volume": Decimal("0.10"), "stop_loss": 2370.0,
                    "take_profit": (2395.0, 2400.0), "magic": MAGIC}
    values.update(kw)
    return OrderTicket(**values)


def test_market_order_goes_out_with_magic_compact_comment_first_tp_and_filling() -> None:
    fake, broker, _ = make()

    done = broker.place(ticket())

    sent = fake.sent[0]
    assert (sent.action, sent.type, sent.magic) == (fake.TRADE_ACTION_DEAL, fake.ORDER_TYPE_BUY,
                                                    MAGIC)
    assert sent.comment == compact_id("idea-1")
    assert len(sent.comment) <= 31
    assert (sent.sl, sent.tp, sent.price) == (2370.0, 2395.0, 2380.25)
    assert sent.type_filling == fake.ORDER_FILLING_FOK
    assert fake.checks == 1  # order_check before order_send
    assert (done.status, done.retcode, done.price) == ("filled", 10009, 2380.25)


def test_pending_limit_order_is_placed_with_return_filling() -> None:
    fake, broker, _ = make()

    done = broker.place(ticket(order_type="limit", price=2375.0))

    assert done.status == "placed"
    assert fake.sent[0].type == fake.ORDER_TYPE_BUY_LIMIT
    assert fake.sent[0].type_filling == fake.ORDER_FILLING_RETURN


@pytest.mark.parametrize(("retcode", "error_code", "name", "retryable"), [
    (10004, "requote", "TRADE_RETCODE_REQUOTE", True),
    (10006, "mt5_reject", "TRADE_RETCODE_REJECT", False),
    (10013, "invalid_request", "TRADE_RETCODE_INVALID", False),
    (10014, "invalid_volume", "TRADE_RETCODE_INVALID_VOLUME", False),
    (10015, "invalid_price", "TRADE_RETCODE_INVALID_PRICE", False),
    (10016, "invalid_stops", "TRADE_RETCODE_INVALID_STOPS", False),
    (10018, "market_closed", "TRADE_RETCODE_MARKET_CLOSED", False),
    (10019, "no_money", "TRADE_RETCODE_NO_MONEY", False),
    (10021, "price_off", "TRADE_RETCODE_PRICE_OFF", True),
    (10024, "too_many_requests", "TRADE_RETCODE_TOO_MANY_REQUESTS", True),
    (10027, "autotrading_disabled", "TRADE_RETCODE_CLIENT_DISABLES_AT", False),
    (10031, "no_connection", "TRADE_RETCODE_CONNECTION", True),
    (10099, "mt5_reject", "TRADE_RETCODE_10099", False),
])
def test_retcodes_map_to_clear_error_codes(retcode: int, error_code: str, name: str,
                                           retryable: bool) -> None:
    fake, broker, _ = make()
    fake.script(("reject", retcode))

    with pytest.raises(BrokerError) as refused:
        broker.place(ticket())

    assert refused.value.error_code == error_code
    assert refused.value.retcode == retcode
    assert name in str(refused.value)
    assert refused.value.retryable is retryable
    assert fake.sent == []


def test_order_check_refusal_stops_before_order_send() -> None:
    fake, broker, _ = make()

    with pytest.raises(BrokerError) as refused:
        broker.place(ticket(stop_loss=2390.0))

    assert refused.value.error_code == "invalid_stops"
    assert fake.sent == []


def test_timeout_after_execution_is_an_unknown_outcome_and_lookup_finds_the_order() -> None:
    fake, broker, _ = make()
    fake.script("timeout_after")

    with pytest.raises(OutcomeUnknown):
        broker.place(ticket())
    found = broker.find(compact_id("idea-1"), MAGIC)

    assert found is not None
    assert found.status == "filled"
    assert found.position_ticket == next(iter(fake.positions))
    assert fake.orders_sent_with(compact_id("idea-1")) == 1


def test_timeout_before_execution_looks_up_to_nothing() -> None:
    fake, broker, _ = make()
    fake.script("timeout_before")

    with pytest.raises(OutcomeUnknown):
        broker.place(ticket())

    assert broker.find(compact_id("idea-1"), MAGIC) is None


def test_lookup_finds_orders_in_deal_history_after_the_position_closed() -> None:
    fake, broker, _ = make()
    done = broker.place(ticket())
    broker.close(done.position_ticket or 0)

    found = broker.find(compact_id("idea-1"), MAGIC)

    assert fake.positions == {}
    assert found is not None
    assert found.order_id == done.order_id
    assert found.message == "found in deal history"


def test_lookup_ignores_another_magic_number() -> None:
    fake, broker, _ = make()
    broker.place(ticket(magic=MAGIC + 1))

    assert broker.find(compact_id("idea-1"), MAGIC) is None


def test_lookup_while_the_terminal_is_down_says_unavailable_not_not_found() -> None:
    fake, broker, _ = make()
    broker.connect()
    fake.drop()
    fake.fail_initialize(99)

    with pytest.raises(BrokerUnavailable):
        broker.find(compact_id("idea-1"), MAGIC)


def test_dropped_terminal_reconnects_with_backoff() -> None:
    fake, broker, sleeps = make()
    broker.connect()
    fake.drop()
    fake.fail_initialize(2)

    info = broker.account()

    assert sleeps == [1.0, 2.0]
    assert broker.session.reconnects == 1
    assert info.balance == Decimal("10000.00")


def test_gives_up_after_the_configured_attempts_with_the_last_error() -> None:
    fake, broker, sleeps = make(connect_attempts=3)
    fake.fail_initialize(10)

    with pytest.raises(BrokerUnavailable, match="Initialization failed"):
        broker.connect()
    assert len(sleeps) == 2


def test_wrong_credentials_are_not_retried_and_never_logged(caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    fake = FakeMetaTrader5(clock=ManualClock(T0), password="other-password")
    _, broker, sleeps = make(fake)

    with caplog.at_level(logging.DEBUG), pytest.raises(BrokerUnavailable):
        broker.connect()

    assert sleeps == []
    assert fake.initialize_calls[0]["login"] == 5551234
    assert "s3cret-pass" not in caplog.text
    assert "s3cret-pass" not in repr(broker.config)


def test_account_reads_balances_positions_and_realized_pl_today() -> None:
    fake, broker, _ = make()
    done = broker.place(ticket())
    fake.set_tick("XAUUSD", 2390.0)
    second = broker.place(ticket("idea-2"))
    broker.close(done.position_ticket or 0)

    info = broker.account()

    assert info.realized_pl_today == Decimal("97.50")  # (2390.00 - 2380.25) * 0.10 * 100
    assert info.balance == Decimal("10097.50")
    assert [p.ticket for p in info.positions] == [second.position_ticket]
    assert info.positions[0].comment == compact_id("idea-2")
    assert info.equity == info.balance + info.open_pl


def test_modify_sets_stops_on_the_position() -> None:
    fake, broker, _ = make()
    done = broker.place(ticket())

    broker.modify(done.position_ticket or 0, 2375.0, 2399.0)

    pos = fake.positions[done.position_ticket or 0]
    assert (pos.sl, pos.tp) == (2375.0, 2399.0)


def test_server_times_are_converted_with_the_configured_timezone() -> None:
    athens = ZoneInfo("Europe/Athens")
    wall = int(datetime(2024, 7, 1, 12, 0, tzinfo=UTC).timestamp())  # 12:00 server clock

    assert server_time(wall, athens) == datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def _rates(fake: FakeMetaTrader5, start: datetime, closes: list[float]) -> None:
    base = int(start.timestamp())
    fake.add_rates("XAUUSD", fake_mt5.TIMEFRAME_M1, [
        (base + 60 * i, c, c + 1, c - 1, c, 100 + i, 30, 0) for i, c in enumerate(closes)])


def test_candle_feed_publishes_only_closed_bars_each_once() -> None:
    fake, broker, _ = make()
    _rates(fake, T0, [2380.0, 2381.0, 2382.0])  # the last one is forming
    feed = Mt5CandleFeed(broker.session, ["XAUUSD"], ["M1"], ZoneInfo("UTC"), backfill=5)

    first = [o.record for o in feed.poll().records]
    assert [c["close"] for c in first] == [2380.0, 2381.0]
    assert first[-1]["spread"] == pytest.approx(0.25)  # the tick's ask - bid
    assert first[0]["spread"] == pytest.approx(0.30)  # the bar's 30 points

    assert feed.poll().records == []  # the forming bar is re-sent by MT5, not by us
    _rates(fake, datetime(2026, 3, 2, 9, 3, tzinfo=UTC), [2383.0])
    assert [o.record["close"] for o in feed.poll().records] == [2382.0]


def test_candle_feed_refuses_unknown_timeframes() -> None:
    _, broker, _ = make()
    with pytest.raises(ValueError, match="M7"):
        Mt5CandleFeed(broker.session, ["XAUUSD"], ["M7"], ZoneInfo("UTC"))


def test_fake_uses_the_documented_constant_values() -> None:
    fake = FakeMetaTrader5()
    assert (fake.TIMEFRAME_M1, fake.TIMEFRAME_M5, fake.TIMEFRAME_M15, fake.TIMEFRAME_H1) == (
        1, 5, 15, 16385)
    assert (fake.TRADE_ACTION_DEAL, fake.TRADE_ACTION_PENDING, fake.TRADE_ACTION_SLTP) == (
        1, 5, 6)
    assert (fake.ORDER_TYPE_BUY, fake.ORDER_TYPE_SELL, fake.TRADE_RETCODE_DONE) == (0, 1, 10009)
