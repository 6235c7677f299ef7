"""Test data for the decision core (strategies, ideas, confidence, gate): small factories.

Every factory returns a valid record for the default scenario, a Gold Pullback Buy that
matches: XAUUSD M5, bullish trend, RSI 38 near the swing low, inside the London
morning window, no news, a healthy account. Override any field with keyword arguments.
Time comes from `T0` (a Tuesday 08:00 UTC); nothing reads a clock.

(`factories.py` next to this file holds the candle factories of the indicator tests.)
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from streams.core.calendar import SessionWindow
from streams.core.gate import GateContext, GateState
from streams.core.market import IndicatorValues
from streams.core.model import (
    AccountState,
    CalendarEvent,
    CalendarStatus,
    KillSwitch,
    Position,
    RiskConfig,
    TradeIdea,
)
from streams.core.strategy import EvaluationContext, Match, Strategy, evaluate, parse_strategy

T0 = datetime(2024, 4, 2, 8, 0, tzinfo=UTC)  # Tuesday 08:00 UTC, inside 07:00Z-11:00Z
STRATEGIES_DIR = Path(__file__).resolve().parents[3] / "strategies"
EXAMPLES = ("gold_pullback_buy", "eurusd_macd_trend_sell", "us30_breakout_momentum")

GOLD_ID = "5b0f4c3e-8f2a-5d1e-9a37-0c2b6f1d4e01"


def strategy_dict(**overrides: Any) -> dict[str, Any]:
    """A valid Gold Pullback Buy definition; top-level keys replaced by `overrides`."""
    definition: dict[str, Any] = {
        "id": GOLD_ID,
        "name": "Gold Pullback Buy",
        "version": 1,
        "is_active": True,
        "allowed_symbols": ["XAUUSD"],
        "timeframes": ["M5"],
        "session_windows": [
            {"start": "07:00Z", "end": "11:00Z", "days": ["Mon", "Tue", "Wed", "Thu", "Fri"]}
        ],
        "entry_conditions": {
            "direction": "buy",
            "trend_alignment": "bullish",
            "rsi_below": 40,
            "near_swing_low_atr": 1.0,
            "nice_to_have": {"higher_timeframe_trend": {"timeframe": "H1", "trend": "bullish"}},
        },
        "exit_rules": {
            "stop_loss": {"type": "swing", "offset": 0.5},
            "take_profit_rr": [2, 3],
            "time_limit_minutes": 30,
        },
        "forbidden_conditions": {
            "block_high_impact_news_minutes": 5,
            "blocked_symbols_during_news": ["USD"],
        },
        "risk_caps": {"max_lot_size": 1.0, "max_concurrent_positions": 2, "lot_size": 0.5},
        "rr_expectation": 2.0,
    }
    definition.update(copy.deepcopy(overrides))
    return definition


def with_path(definition: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `definition` with the dotted `path` set to `value` (list indexes ok)."""
    result = copy.deepcopy(definition)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def without_path(definition: dict[str, Any], path: str) -> dict[str, Any]:
    """A deep copy of `definition` with the dotted `path` removed."""
    result = copy.deepcopy(definition)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[part]
    del node[last]
    return result


def strategy(**overrides: Any) -> Strategy:
    """The parsed default strategy (see `strategy_dict`)."""
    return parse_strategy(strategy_dict(**overrides))


def session_strategy(windows: list[dict[str, Any]]) -> Strategy:
    """The default strategy with other session windows."""
    return strategy(session_windows=windows)


def window(start: str, end: str, days: tuple[str, ...], tz: str = "UTC") -> SessionWindow:
    """A parsed session window, through a strategy so the parsing rules apply."""
    spec = {"start": start, "end": end, "days": list(days), "tz": tz}
    return session_strategy([spec]).sessions[0]


def example_definition(name: str) -> dict[str, Any]:
    """One shipped example from `strategies/` as decoded JSON."""
    loaded: dict[str, Any] = json.loads((STRATEGIES_DIR / f"{name}.json").read_text("utf-8"))
    return loaded


def example(name: str) -> Strategy:
    """One shipped example strategy, parsed."""
    return parse_strategy(example_definition(name))


def indicators(close_at: datetime = T0, **overrides: Any) -> IndicatorValues:
    """XAUUSD M5 indicators of the candle closing at `close_at`, matching the default strategy."""
    fields: dict[str, Any] = {
        "symbol": "XAUUSD",
        "timeframe": "M5",
        "open_time": close_at - timedelta(minutes=5),
        "close": 2385.2,
        "spread": 0.2,
        "rsi_14": 38.0,
        "sma_50": 2380.0,
        "sma_200": 2350.0,
        "macd": 0.8,
        "macd_signal": 1.0,
        "macd_hist": -0.2,
        "prev_macd_hist": -0.1,
        "atr_14": 2.0,
        "day_open": 2380.0,
        "pct_move_today": 0.22,
        "swing_high": 2392.0,
        "swing_low": 2384.0,
    }
    fields.update(overrides)
    return IndicatorValues(**fields)


def higher_timeframe(trend: str = "bullish", timeframe: str = "H1") -> IndicatorValues:
    """Higher-timeframe indicators with the given SMA trend."""
    fast, slow = (2370.0, 2340.0) if trend == "bullish" else (2340.0, 2370.0)
    return indicators(timeframe=timeframe, open_time=T0 - timedelta(hours=1), sma_50=fast,
                      sma_200=slow)


def event(
    minutes_from_t0: float = 0.0,
    currency: str = "USD",
    impact: str = "high",
    title: str = "Non-Farm Payrolls",
    at: datetime = T0,
    all_day: bool = False,
) -> CalendarEvent:
    """A calendar event `minutes_from_t0` after `at` (negative: before)."""
    when = at + timedelta(minutes=minutes_from_t0)
    return CalendarEvent(
        event_id=f"{currency}-{title}-{when.isoformat()}",
        currency=currency,
        impact=impact,
        title=title,
        event_time=when,
        all_day=all_day,
    )


def calendar(
    *events: CalendarEvent, last_success_at: datetime | None = T0 - timedelta(minutes=10)
) -> CalendarStatus:
    """A calendar that succeeded 10 minutes before T0, holding `events`."""
    return CalendarStatus(events=tuple(events), last_success_at=last_success_at)


def eval_context(
    *events: CalendarEvent,
    htf: IndicatorValues | None = None,
    last_success_at: datetime | None = T0 - timedelta(minutes=10),
    snapshot_ref: str | None = "snap-1",
) -> EvaluationContext:
    """Evaluation context: a fresh calendar with `events` and an optional H1 trend."""
    frames = {} if htf is None else {htf.timeframe: htf}
    return EvaluationContext(
        calendar=calendar(*events, last_success_at=last_success_at),
        higher_timeframes=frames,
        snapshot_ref=snapshot_ref,
    )


def account(**overrides: Any) -> AccountState:
    """A healthy 10 000 USD account captured 10 s before T0."""
    fields: dict[str, Any] = {
        "balance": Decimal("10000.00"),
        "equity": Decimal("10000.00"),
        "margin_used": Decimal("500.00"),
        "margin_free": Decimal("9500.00"),
        "open_pl": Decimal("0.00"),
        "captured_at": T0 - timedelta(seconds=10),
    }
    fields.update(overrides)
    return AccountState(**fields)


def risk_config(**overrides: Any) -> RiskConfig:
    """Autonomous mode, threshold 90, 1.00 lot cap, 3 concurrent, target 2000, drawdown 1000."""
    fields: dict[str, Any] = {
        "ai_trading_enabled": True,
        "min_confidence_threshold": Decimal("90.00"),
        "max_lot_size": Decimal("1.00"),
        "max_concurrent_trades": 3,
        "daily_profit_target": Decimal("2000.00"),
        "stop_after_target": True,
        "max_drawdown_amount": Decimal("1000.00"),
        "halt_on_drawdown": True,
        "allow_off_watchlist_autotrade": False,
        "watchlist": frozenset({"XAUUSD", "EURUSD", "US30"}),
    }
    fields.update(overrides)
    return RiskConfig(**fields)


def gate_state(config: RiskConfig | None = None, **overrides: Any) -> GateState:
    """A gate state on T0's trading day with no positions."""
    fields: dict[str, Any] = {"config": config or risk_config(), "kill": KillSwitch()}
    fields.update(overrides)
    return GateState(**fields).roll(T0)


def gate_context(
    account_state: AccountState | None = None,
    *events: CalendarEvent,
    last_success_at: datetime | None = T0 - timedelta(minutes=10),
    no_account: bool = False,
) -> GateContext:
    """Gate context with a healthy account and a fresh calendar holding `events`."""
    return GateContext(
        account=None if no_account else (account_state or account()),
        calendar=calendar(*events, last_success_at=last_success_at),
    )


def idea(strat: Strategy | None = None, **overrides: Any) -> TradeIdea:
    """The idea the default strategy produces at T0 (fields overridable)."""
    result = evaluate(strat or strategy(), indicators(), eval_context())
    assert isinstance(result, Match), result
    return dataclasses.replace(result.idea, **overrides)


def position(**overrides: Any) -> Position:
    """An open XAUUSD buy of 0.50 lots from the default strategy."""
    fields: dict[str, Any] = {
        "position_id": "1001",
        "symbol": "XAUUSD",
        "direction": "buy",
        "lots": Decimal("0.50"),
        "opened_at": T0 - timedelta(hours=1),
        "idea_id": None,
        "strategy_id": GOLD_ID,
    }
    fields.update(overrides)
    return Position(**fields)


HIGH_CONFIDENCE = Decimal("95.00")
