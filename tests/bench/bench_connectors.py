"""Throughput of the connector hot paths (not part of `make test`).

    .venv/bin/python tests/bench/bench_connectors.py

- synthetic market: bars generated per second (the load-test feed);
- paper broker: candles applied per second with open positions (SL/TP checks);
- calendar/news parsers: documents per second on the fixture files.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connectors.brokers.base import OrderTicket  # noqa: E402
from connectors.brokers.paper.config import PaperConfig  # noqa: E402
from connectors.brokers.paper.execution import PaperBroker  # noqa: E402
from connectors.calendar.parse import parse_ff_json  # noqa: E402
from connectors.core.clock import ManualClock  # noqa: E402
from connectors.market.synthetic import SyntheticMarket  # noqa: E402
from connectors.news.parse import parse_feed  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "connectors"
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def rate(name: str, fn: Callable[[], int]) -> None:
    start = time.perf_counter()
    done = fn()
    seconds = time.perf_counter() - start
    print(f"{name:<40} {done / seconds:>12,.0f} /s  ({done} in {seconds:.2f}s)")


def synthetic(n: int) -> int:
    market = SyntheticMarket(start=T0)
    return sum(len(market.next_bars()) for _ in range(n))


def paper(n: int) -> int:
    market = SyntheticMarket(symbols=("XAUUSD",), start=T0)
    broker = PaperBroker(PaperConfig(initial_balance=Decimal("1000000")), ManualClock(T0))
    broker.on_candle(market.next_bars()[0].record)
    for i in range(20):
        price = broker.state.quotes["XAUUSD"].ask
        broker.place(OrderTicket(f"r{i}", f"ait:{i:026x}", "XAUUSD", "buy", "market",
                                 Decimal("0.01"), round(price - 500, 2), (round(price + 500, 2),)))
    for _ in range(n):
        broker.on_candle(market.next_bars()[0].record)
    return n


def parsers(n: int) -> int:
    body, rss = (FIXTURES / "ff_calendar_thisweek.json").read_bytes(), \
        (FIXTURES / "rss2_windows1252.xml").read_bytes()
    for _ in range(n):
        parse_ff_json(body, "ff", T0)
        parse_feed(rss, "wire", T0)
    return n


if __name__ == "__main__":
    rate("synthetic bars (3 symbols, M1)", lambda: synthetic(20_000))
    rate("paper candles with 20 open positions", lambda: paper(20_000))
    rate("calendar JSON + RSS documents", lambda: parsers(300))
    print(f"one synthetic trading week is {timedelta(days=5) // timedelta(minutes=1) * 3} bars")
