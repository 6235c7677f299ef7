"""The worker's context (which strategies a candle is evaluated against) and its
interpreter settings."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from streams.app import Context, configure_interpreter
from tests.streams.harness import ANY_BAR_BUY
from topics.settings import Settings


def _record(**changes: Any) -> dict[str, Any]:
    definition = {**ANY_BAR_BUY, **changes}
    return {"strategy_id": definition["id"], "definition_json": json.dumps(definition)}


def _ids(context: Context, symbol: str) -> list[str]:
    return [s.strategy_id for s in context.strategies_for(symbol, "M1")]


def test_the_strategies_of_a_symbol_follow_every_strategy_record() -> None:
    context = Context("acct", "test")
    assert _ids(context, "XAUUSD") == []
    context.apply("state.strategies.v1", 0, 1, _record())
    assert _ids(context, "XAUUSD") == [ANY_BAR_BUY["id"]]
    assert _ids(context, "EURUSD") == []

    context.apply("state.strategies.v1", 0, 2, _record(is_active=False, version=2))
    assert _ids(context, "XAUUSD") == []

    context.apply("state.strategies.v1", 0, 3, _record(version=3, allowed_symbols=["EURUSD"]))
    assert _ids(context, "XAUUSD") == []
    assert _ids(context, "EURUSD") == [ANY_BAR_BUY["id"]]

    first = "00000000-5f0c-4d1a-9a51-1b7a3c1e9d01"  # sorts before the other's id
    context.apply("state.strategies.v1", 0, 4, _record(id=first, allowed_symbols=["EURUSD"]))
    assert _ids(context, "EURUSD") == [first, ANY_BAR_BUY["id"]]


def test_an_invalid_strategy_record_changes_nothing() -> None:
    context = Context("acct", "test")
    context.apply("state.strategies.v1", 0, 1, _record())
    context.apply("state.strategies.v1", 0, 2, {"strategy_id": ANY_BAR_BUY["id"],
                                                 "definition_json": "{}"})
    assert _ids(context, "XAUUSD") == [ANY_BAR_BUY["id"]]


def test_the_worker_keeps_the_gil_for_its_configured_switch_interval() -> None:
    before = sys.getswitchinterval()
    try:
        configure_interpreter(Settings(AI_TRADER_WORKER_SWITCH_INTERVAL_MS=20))
        assert sys.getswitchinterval() == pytest.approx(0.020)
        configure_interpreter(Settings(AI_TRADER_WORKER_SWITCH_INTERVAL_MS=7.5))
        assert sys.getswitchinterval() == pytest.approx(0.0075)
    finally:
        sys.setswitchinterval(before)
    assert Settings().worker_switch_interval_ms == 20
