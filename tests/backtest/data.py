"""Inputs of backtest and replay tests: seeded candle files, strategies, risk, calendar."""

from __future__ import annotations

import copy
import csv
import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.market.synthetic import SyntheticMarket
from streams import records
from streams.core.indicators import IndicatorEngine
from streams.core.strategy import Strategy, parse_strategy
from streams.proposals import MarketContext, Proposal, propose
from tests import factories
from tests.streams.harness import ANY_BAR_BUY
from tests.streams.harness import candles as rising_candles

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
REPO = Path(__file__).resolve().parents[2]

#: The shipped gold pullback on M1, all day: fires now and then on the synthetic market.
GOLD_M1: dict[str, Any] = json.loads((REPO / "strategies" / "gold_pullback_buy.json").read_text())
GOLD_M1.update(id="3f0c2b1a-7d4e-4c5b-9a8f-1e2d3c4b5a60", name="Gold pullback M1 (test)",
               timeframes=["M1"])
GOLD_M1["session_windows"] = ANY_BAR_BUY["session_windows"]
GOLD_M1["entry_conditions"]["rsi_below"] = 45

#: Every warm closed bar is an idea (see tests/streams/harness.py).
ANY_BAR: dict[str, Any] = copy.deepcopy(ANY_BAR_BUY)

RISK_ON: dict[str, Any] = {
    "ai_trading_enabled": True, "min_confidence_threshold": "0", "max_lot_size": "1.00",
    "max_concurrent_trades": 2, "daily_profit_target": "5000.00",
    "max_drawdown_amount": "3000.00", "watchlist": ["XAUUSD"],
}


def strategy(definition: dict[str, Any]) -> Strategy:
    return parse_strategy(copy.deepcopy(definition))


def any_bar_proposal(open_pl: Decimal = Decimal("0.00"), bars: int = 20,
                     start: datetime = factories.T0) -> Proposal:
    """The idea `ANY_BAR` proposes on the last of `bars` rising XAUUSD candles, for
    account "acct" with no position and `open_pl`."""
    engine, candles = IndicatorEngine("XAUUSD", "M1"), rising_candles(start, bars)
    for bar in candles:
        values = engine.update(records.candle(bar)).values
    assert values is not None
    at = candles[-1]["open_time"] + timedelta(minutes=1)
    ctx = MarketContext("acct", "test", calendar_last_success=at, account=factories.account_state(
        account="acct", captured_at=at, positions=[], open_pl=open_pl))
    proposal = propose(strategy(ANY_BAR), candles[-1],
                       records.indicators_record(values, 0, bars - 1), ctx)
    assert proposal is not None
    return proposal


def synthetic(n: int, seed: int = 7, start: datetime = T0) -> list[dict[str, Any]]:
    """n seeded synthetic XAUUSD M1 bars (weekends skipped)."""
    market = SyntheticMarket(("XAUUSD",), "M1", seed, start)
    return [bars[0].record for bars in itertools.islice(market, n)]


def write_candles(path: Path, candles: list[dict[str, Any]]) -> Path:
    """A plain OHLCV CSV as a user would export it."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["time", "open", "high", "low", "close", "volume", "spread"])
        for c in candles:
            out.writerow([c["open_time"].isoformat(), c["open"], c["high"], c["low"],
                          c["close"], c["volume"], c["spread"]])
    return path


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def write_calendar(path: Path, events: list[tuple[datetime, str, str, str]]) -> Path:
    """The calendar CSV format: (time, currency, impact, title) per row."""
    lines = ["datetime,currency,impact,title,actual,forecast,previous"]
    lines += [f"{at.isoformat()},{cur},{impact},{title},,," for at, cur, impact, title in events]
    path.write_text("\n".join(lines) + "\n")
    return path


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)
