"""Valid records for every topic, as small factories (override any field with kwargs)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def candle(i: int = 0, symbol: str = "XAUUSD", **kw: Any) -> dict[str, Any]:
    """The i-th M1 bar of a smooth, deterministic price path."""
    base = 2380.0 + (i % 97) * 0.25
    rec = {
        "symbol": symbol,
        "timeframe": "M1",
        "open_time": T0 + timedelta(minutes=i),
        "open": base,
        "high": base + 1.5,
        "low": base - 1.25,
        "close": base + 0.5,
        "volume": 100 + i % 50,
        "source": "test",
        "spread": 0.3,
        "closed": True,
    }
    rec.update(kw)
    return rec


def random_candles(n: int, seed: int = 7, symbols: tuple[str, ...] = ("XAUUSD", "EURUSD", "US30"),
                   ) -> list[dict[str, Any]]:
    """A seeded random walk over several symbols, every float distinct."""
    rng = random.Random(seed)
    prices = {s: 100.0 + 50 * k for k, s in enumerate(symbols)}
    out = []
    for i in range(n):
        sym = symbols[i % len(symbols)]
        o = prices[sym]
        c = max(0.01, o * (1 + rng.gauss(0, 0.001)))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.0005)))
        lo = min(o, c) * (1 - abs(rng.gauss(0, 0.0005)))
        prices[sym] = c
        out.append(candle(i, sym, open=o, high=h, low=lo, close=c,
                          volume=rng.randint(0, 10_000), spread=rng.random()))
    return out


def position(**kw: Any) -> dict[str, Any]:
    """An open buy position."""
    rec = {
        "ticket": 1001, "symbol": "XAUUSD", "direction": "buy", "volume": Decimal("0.50"),
        "entry_price": 2380.0, "stop_loss": 2370.0, "take_profit": [2395.0, 2400.0],
        "unrealized_pl": Decimal("150.00"), "opened_at": T0, "idea_id": None,
        "strategy_id": None, "magic": 777,
    }
    rec.update(kw)
    return rec


def account_state(**kw: Any) -> dict[str, Any]:
    """A healthy paper account with one position."""
    rec = {
        "account": "paper-1", "broker": "paper", "currency": "USD",
        "balance": Decimal("12000.00"), "equity": Decimal("12250.00"),
        "margin_used": Decimal("4000.00"), "margin_free": Decimal("8000.00"),
        "open_pl": Decimal("250.00"), "realized_pl_today": Decimal("0.00"),
        "positions": [position()], "reconciled": True, "captured_at": T0,
    }
    rec.update(kw)
    return rec


def calendar_event(**kw: Any) -> dict[str, Any]:
    """A high-impact USD release."""
    rec = {
        "event_id": "usd-fomc-1", "event_time": T0 + timedelta(hours=3), "all_day": False,
        "currency": "USD", "impact": "high", "title": "FOMC Rate Decision",
        "previous_raw": "5.25%", "forecast_raw": "5.00%", "actual_raw": None,
        "previous": 5.25, "forecast": 5.0, "actual": None, "source": "test", "captured_at": T0,
    }
    rec.update(kw)
    return rec


def news_item(**kw: Any) -> dict[str, Any]:
    """A gold headline."""
    rec = {
        "item_id": "n-1", "headline": "Gold steadies ahead of Fed", "source": "test",
        "url": "https://example.invalid/n-1", "summary": None, "symbols": ["XAUUSD"],
        "currencies": ["USD"], "published_at": T0, "captured_at": T0,
    }
    rec.update(kw)
    return rec


def trade_idea(**kw: Any) -> dict[str, Any]:
    """A buy idea on gold."""
    rec = {
        "idea_id": "idea-1", "account": "paper-1", "symbol": "XAUUSD", "timeframe": "M15",
        "direction": "buy", "entry_price": 2385.2, "entry_low": None, "entry_high": None,
        "stop_loss": 2378.5, "take_profit": [2398.0, 2402.0], "lot_size": Decimal("0.50"),
        "expected_hold": "scalp_30m", "strategy_id": "gold-pullback-buy", "strategy_version": 1,
        "strategy_hash": "ab" * 32, "rationale": "Pullback in an uptrend.",
        "rationale_bullets": ["RSI 38 < 40"], "confidence": Decimal("91.30"),
        "confidence_json": json.dumps({"strategy_match": 45}), "snapshot_id": "snap-1",
        "created_at": T0, "expires_at": T0 + timedelta(minutes=30),
    }
    rec.update(kw)
    return rec


def indicator_snapshot(**kw: Any) -> dict[str, Any]:
    """Indicators after warm-up."""
    rec = {
        "symbol": "XAUUSD", "timeframe": "M15", "open_time": T0, "close": 2385.2, "spread": 0.3,
        "rsi_14": 38.2, "sma_50": 2380.0, "sma_200": 2350.0, "macd": 1.2, "macd_signal": 1.0,
        "macd_hist": 0.2, "prev_macd_hist": 0.1, "atr_14": 2.3, "day_open": 2379.0,
        "pct_move_today": 0.26, "swing_high": 2390.0, "swing_low": 2378.9,
        "input_partition": 0, "input_offset": 41,
    }
    rec.update(kw)
    return rec


def snapshot_bundle(**kw: Any) -> dict[str, Any]:
    """Everything an idea was built from."""
    rec = {
        "snapshot_id": "snap-1", "account": "paper-1", "symbol": "XAUUSD", "timeframe": "M15",
        "captured_at": T0, "candle": candle(timeframe="M15"),
        "indicators": indicator_snapshot(), "higher_timeframe": None,
        "calendar": [calendar_event()], "calendar_last_success": T0, "news": [news_item()],
        "account_state": account_state(), "strategy_id": "gold-pullback-buy",
        "strategy_version": 1, "strategy_hash": "ab" * 32, "strategy_json": "{}",
        "inputs": [{"topic": "market.candles.v1", "partition": 0, "offset": 41}],
        "code_version": "test",
    }
    rec.update(kw)
    return rec


def control_command(**kw: Any) -> dict[str, Any]:
    """A signed-looking kill command (the gate verifies signatures, not the codec)."""
    rec = {
        "command_id": "cmd-1", "kind": "kill", "account": "paper-1", "issuer": "ops@test",
        "issued_at": T0, "idea_id": None, "strategy_id": None, "lot_size": None,
        "reason": "test", "payload_json": None, "signature": "00" * 32,
    }
    rec.update(kw)
    return rec
