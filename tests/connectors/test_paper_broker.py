"""The paper broker: fills, SL/TP on later candles, margin, equity = balance + open P/L, restart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.brokers.base import BrokerError, OrderTicket
from connectors.brokers.paper.config import PaperConfig
from connectors.brokers.paper.execution import PaperBroker
from connectors.core.clock import ManualClock
from tests.connectors.factories import T0, gold_candle


def ticket(n: int = 1, **kw: object) -> OrderTicket:
    values: dict = {"request_id": f"r{n}", "comment": f"ait:{n:026x}", "symbol": "XAUUSD",
                    "direction": "buy", "order_type": "market", "volume": Decimal("0.10"),
                    "stop_loss": 2370.0, "take_profit": (2395.0, 2400.0), "magic": 7}
    values.update(kw)
    return OrderTicket(**values)


def broker(tmp_path: Path | None = None, **kw: object) -> PaperBroker:
    state = tmp_path / "paper.json" if tmp_path else None
    paper = PaperBroker(PaperConfig(state_file=state, **kw), ManualClock(T0))  # type: ignore[arg-type]
    paper.on_candle(gold_candle(0, 2380.0))
    return paper


def test_market_buy_fills_at_ask_plus_slippage_and_sell_at_bid_minus_slippage() -> None:
    paper = broker(slippage_points=5)

    buy = paper.place(ticket(1))
    sell = paper.place(ticket(2, direction="sell", stop_loss=2390.0, take_profit=(2360.0,)))

    assert buy.status == "filled"
    assert buy.price == pytest.approx(2380.0 + 0.3 + 0.05)
    assert sell.price == pytest.approx(2380.0 - 0.05)


def test_take_profit_fills_on_the_candle_whose_high_reaches_it() -> None:
    paper = broker()
    pos = paper.place(ticket(1))
    balance = paper.state.balance

    assert paper.on_candle(gold_candle(1, 2390.0, high=2394.9)) == []
    deals = paper.on_candle(gold_candle(2, 2394.0, high=2396.0))

    assert [d.reason for d in deals] == ["tp"]
    assert deals[0].price == 2395.0
    assert deals[0].time == T0 + timedelta(minutes=3)  # the close of candle 2
    assert paper.state.balance == balance + (Decimal("2395.0") - Decimal(str(pos.price))) * 10
    assert paper.positions() == []


def test_stop_loss_wins_when_sl_and_tp_are_both_inside_one_candle() -> None:
    paper = broker()
    paper.place(ticket(1))

    deals = paper.on_candle(gold_candle(1, 2380.0, high=2399.0, low=2365.0))

    assert [(d.reason, d.price) for d in deals] == [("sl", 2370.0)]


def test_gap_through_the_stop_fills_at_the_open() -> None:
    paper = broker()
    paper.place(ticket(1))

    deals = paper.on_candle(gold_candle(1, 2360.0, high=2362.0, low=2358.0))

    assert deals[0].price == 2360.0


def test_sell_position_exits_on_the_ask_side() -> None:
    paper = broker()
    paper.place(ticket(1, direction="sell", stop_loss=2390.0, take_profit=(2375.0,)))

    assert paper.on_candle(gold_candle(1, 2376.0, low=2374.8)) == []  # ask low = 2375.1
    deals = paper.on_candle(gold_candle(2, 2375.0, low=2374.6))  # ask low = 2374.9

    assert [(d.reason, d.price) for d in deals] == [("tp", 2375.0)]


def test_pending_buy_limit_rests_then_fills_when_the_ask_reaches_it() -> None:
    paper = broker()
    placed = paper.place(ticket(1, order_type="limit", price=2375.0, stop_loss=2365.0))

    assert placed.status == "placed"
    assert paper.positions() == []
    paper.on_candle(gold_candle(1, 2377.0, low=2376.0))
    deals = paper.on_candle(gold_candle(2, 2376.0, low=2374.0))

    assert [d.entry for d in deals] == ["in"]
    assert paper.positions()[0].entry_price == 2375.0


def test_margin_is_lots_times_contract_times_price_over_leverage_and_no_money_is_refused() -> None:
    paper = broker(initial_balance=Decimal("1000.00"))
    paper.place(ticket(1, volume=Decimal("0.05")))

    assert paper.margin_used() == Decimal("595.08")  # 0.05 * 100 * 2380.30 / 20
    with pytest.raises(BrokerError) as refused:
        paper.place(ticket(2, volume=Decimal("0.05")))
    assert refused.value.error_code == "no_money"


@pytest.mark.parametrize(("kw", "code"), [
    ({"volume": Decimal("0.001")}, "invalid_volume"),
    ({"stop_loss": 2390.0}, "invalid_stops"),
    ({"take_profit": (2379.0,)}, "invalid_stops"),
    ({"symbol": "BTCUSD"}, "invalid_request"),
    ({"order_type": "limit", "price": 2390.0}, "invalid_price"),
])
def test_invalid_orders_are_refused_with_a_clear_error_code(kw: dict, code: str) -> None:
    with pytest.raises(BrokerError) as refused:
        broker().place(ticket(1, **kw))
    assert refused.value.error_code == code


def test_no_price_yet_is_refused_as_market_closed() -> None:
    paper = PaperBroker(PaperConfig(), ManualClock(T0))
    with pytest.raises(BrokerError) as refused:
        paper.place(ticket(1))
    assert refused.value.error_code == "market_closed"


def test_order_is_found_by_its_comment_and_magic_only() -> None:
    paper = broker()
    sent = paper.place(ticket(1))

    found = paper.find("ait:" + f"{1:026x}", 7)
    assert found is not None
    assert found.order_id == sent.order_id
    assert paper.find("ait:" + f"{1:026x}", 8) is None
    assert paper.find("ait:" + f"{2:026x}", 7) is None


def test_restart_from_the_persisted_state_continues_the_same_account(tmp_path: Path) -> None:
    paper = broker(tmp_path)
    paper.place(ticket(1))
    paper.on_candle(gold_candle(1, 2385.0))
    before = paper.account()

    again = PaperBroker(PaperConfig(state_file=tmp_path / "paper.json"), ManualClock(T0))
    after = again.account()
    assert (after.balance, after.equity, after.positions) == (
        before.balance, before.equity, before.positions)
    again.on_candle(gold_candle(2, 2396.0, high=2396.0))  # the TP fills after the restart
    assert again.positions() == []
    assert again.find("ait:" + f"{1:026x}", 7) is not None
    fresh = again.place(ticket(2, stop_loss=2380.0, take_profit=(2410.0,)))
    assert fresh.position_ticket not in {p.ticket for p in before.positions}


def test_replayed_candle_is_not_applied_twice() -> None:
    paper = broker()
    paper.place(ticket(1))
    candle = gold_candle(1, 2371.0, low=2369.0)
    assert paper.on_candle(candle)
    paper.place(ticket(2))
    assert paper.on_candle(candle) == []


moves = st.lists(
    st.tuples(st.floats(-8, 8), st.floats(0, 6), st.floats(0, 6),
              st.sampled_from(["none", "buy", "sell", "close"])),
    min_size=1, max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=moves)
def test_equity_is_balance_plus_open_pl_at_every_step(path: list) -> None:
    paper = broker(initial_balance=Decimal("100000.00"))
    price, opened = 2380.0, 0
    for i, (move, up, down, action) in enumerate(path, start=1):
        open_ = price
        price = round(max(100.0, price + move), 2)
        paper.on_candle(gold_candle(i, price, high=max(open_, price) + up,
                                    low=min(open_, price) - down, open=open_))
        if action in ("buy", "sell"):
            sign = 1 if action == "buy" else -1
            quote = paper.state.quotes["XAUUSD"]
            entry = quote.ask if action == "buy" else quote.bid
            opened += 1
            paper.place(ticket(opened, direction=action, stop_loss=round(entry - sign * 9, 2),
                               take_profit=(round(entry + sign * 9, 2),)))
        elif action == "close" and paper.positions():
            paper.close(paper.positions()[0].ticket)
        account = paper.account()
        assert account.equity == account.balance + account.open_pl
        assert account.open_pl == sum((p.unrealized_pl for p in account.positions), Decimal(0))
        assert account.margin_free == account.equity - account.margin_used
        realized = sum((d.profit for d in paper.state.deals if d.entry == "out"), Decimal(0))
        assert account.balance == Decimal("100000.00") + realized
