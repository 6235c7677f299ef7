"""Strategy matching: ideas from indicators, the vocabulary, sessions and news at candle close."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from streams.core.strategy import (
    IDEA_NAMESPACE,
    Condition,
    Match,
    NoMatch,
    decision_time,
    evaluate,
    evaluate_conditions,
    idea_id_for,
    parse_strategy,
)
from tests.streams.core.decision_factories import (
    T0,
    eval_context,
    event,
    example,
    higher_timeframe,
    indicators,
    strategy,
    strategy_dict,
    with_path,
)


def _match(result: Match | NoMatch) -> Match:
    assert isinstance(result, Match), result
    return result


def _no_match(result: Match | NoMatch) -> NoMatch:
    assert isinstance(result, NoMatch), result
    return result


# ------------------------------------------------------------------ blueprint §8.1


def test_rsi_below_40_bullish_structure_in_session_generates_a_buy_idea() -> None:
    gold = strategy()

    idea = _match(evaluate(gold, indicators(), eval_context())).idea

    assert idea.direction == "buy"
    assert idea.symbol == "XAUUSD"
    assert idea.entry_price == 2385.2
    assert idea.stop_loss == pytest.approx(2383.5)  # swing low 2384 - 0.5
    assert idea.take_profit == pytest.approx((2388.6, 2390.3))  # RR 2 and 3 on 1.7 risk
    assert idea.expected_hold == "scalp_30m"
    assert idea.lot_size == Decimal("0.50")
    assert (idea.strategy_id, idea.strategy_version) == (gold.strategy_id, 1)
    assert idea.strategy_hash == gold.definition_hash
    assert idea.created_at == T0
    assert idea.snapshot_ref == "snap-1"


def test_high_impact_usd_news_under_5_minutes_away_generates_no_idea() -> None:
    result = _no_match(evaluate(strategy(), indicators(), eval_context(event(3))))

    assert result.codes == ("news_blackout",)


# ---------------------------------------------------------------------------- ideas


def test_idea_rationale_bullets_state_the_facts() -> None:
    idea = _match(evaluate(strategy(), indicators(), eval_context(htf=higher_timeframe()))).idea

    assert "RSI(14) 38.00 < 40" in idea.rationale_bullets
    assert "trend bullish: SMA50 2380 vs SMA200 2350 (want bullish)" in idea.rationale_bullets
    assert "confluence: H1 trend bullish (want bullish)" in idea.rationale_bullets
    assert "no high-impact USD/XAU news within 5 min" in idea.rationale_bullets
    assert idea.rationale.endswith(".")


def test_reprocessing_the_same_candle_gives_the_same_idea() -> None:
    first = _match(evaluate(strategy(), indicators(), eval_context())).idea
    again = _match(evaluate(strategy(), indicators(), eval_context())).idea

    assert again == first


def test_idea_id_is_uuid5_of_strategy_symbol_timeframe_and_open_time() -> None:
    ind = indicators()
    key = f"{strategy().strategy_id}|XAUUSD|M5|{ind.open_time.isoformat()}"

    idea = _match(evaluate(strategy(), ind, eval_context())).idea

    assert idea.idea_id == str(uuid.uuid5(IDEA_NAMESPACE, key))


def test_next_candle_gives_another_idea_id() -> None:
    first = _match(evaluate(strategy(), indicators(), eval_context())).idea
    later = indicators(close_at=T0 + timedelta(minutes=5))

    second = _match(evaluate(strategy(), later, eval_context())).idea

    assert second.idea_id != first.idea_id


def test_idea_id_does_not_depend_on_the_timezone_the_open_time_is_written_in() -> None:
    open_utc = datetime(2024, 4, 2, 7, 55, tzinfo=UTC)
    open_other = open_utc.astimezone(ZoneInfo("Asia/Tokyo"))

    assert idea_id_for("s", "X", "M5", open_utc) == idea_id_for("s", "X", "M5", open_other)


def test_evaluation_time_is_the_candle_close() -> None:
    assert decision_time(indicators()) == T0


def test_sell_idea_with_atr_stop_places_levels_above_and_below() -> None:
    eurusd = example("eurusd_macd_trend_sell")
    ind = indicators(
        symbol="EURUSD", timeframe="M15", close_at=datetime(2024, 4, 2, 9, 0, tzinfo=UTC),
        open_time=datetime(2024, 4, 2, 8, 45, tzinfo=UTC), close=1.08, spread=0.0001,
        sma_50=1.0820, sma_200=1.0850, prev_macd_hist=0.0001, macd_hist=-0.0002,
        rsi_14=42.0, atr_14=0.0010,
    )
    ctx = eval_context(last_success_at=datetime(2024, 4, 2, 8, 50, tzinfo=UTC))

    idea = _match(evaluate(eurusd, ind, ctx)).idea

    assert idea.direction == "sell"
    assert idea.stop_loss == pytest.approx(1.0815)
    assert idea.take_profit == pytest.approx((1.07775, 1.07625))
    assert idea.expected_hold == "intraday_4h"
    assert idea.lot_size == Decimal("0.50")


# ------------------------------------------------------------------------ no match


def test_rsi_exactly_at_the_bound_does_not_match() -> None:
    result = _no_match(evaluate(strategy(), indicators(rsi_14=40.0), eval_context()))

    assert result.codes == ("condition_not_met",)
    assert "RSI(14) 40.00 >= 40" in result.reasons[0].detail


def test_bearish_structure_does_not_match_a_bullish_strategy() -> None:
    result = _no_match(evaluate(strategy(), indicators(sma_50=2340.0), eval_context()))

    assert result.codes == ("condition_not_met",)


def test_indicator_not_available_yet_fails_its_condition() -> None:
    result = _no_match(evaluate(strategy(), indicators(sma_200=None), eval_context()))

    assert "sma_50/sma_200 not available" in result.reasons[0].detail


def test_non_finite_indicator_counts_as_missing() -> None:
    result = _no_match(evaluate(strategy(), indicators(rsi_14=float("nan")), eval_context()))

    assert result.reasons[0].detail == "rsi_below: rsi_14 not available"


def test_candle_closing_at_session_end_is_outside() -> None:
    at_end = indicators(close_at=datetime(2024, 4, 2, 11, 0, tzinfo=UTC))
    ctx = eval_context(last_success_at=datetime(2024, 4, 2, 10, 55, tzinfo=UTC))

    assert _no_match(evaluate(strategy(), at_end, ctx)).codes == ("outside_session",)


def test_candle_closing_at_session_start_is_inside() -> None:
    at_start = indicators(close_at=datetime(2024, 4, 2, 7, 0, tzinfo=UTC))
    ctx = eval_context(last_success_at=datetime(2024, 4, 2, 6, 55, tzinfo=UTC))

    _match(evaluate(strategy(), at_start, ctx))


def test_inactive_strategy_produces_nothing() -> None:
    result = _no_match(evaluate(strategy(is_active=False), indicators(), eval_context()))

    assert result.codes == ("strategy_inactive",)


def test_symbol_and_timeframe_not_allowed_are_both_reported() -> None:
    ind = indicators(symbol="XAGUSD", timeframe="M1", open_time=T0 - timedelta(minutes=1))

    result = _no_match(evaluate(strategy(), ind, eval_context()))

    assert result.codes == ("symbol_not_allowed", "timeframe_not_allowed")


def test_stale_calendar_generates_no_idea() -> None:
    stale = eval_context(last_success_at=T0 - timedelta(hours=2))

    assert _no_match(evaluate(strategy(), indicators(), stale)).codes == ("calendar_stale",)


def test_stop_that_is_not_beyond_the_entry_generates_no_idea() -> None:
    flat = parse_strategy(with_path(strategy_dict(), "exit_rules.stop_loss",
                                    {"type": "swing", "offset": 0}))

    result = _no_match(evaluate(flat, indicators(swing_low=2385.2), eval_context()))

    assert result.codes == ("invalid_levels",)


def test_nice_to_have_missing_does_not_block_the_match() -> None:
    _match(evaluate(strategy(), indicators(), eval_context(htf=higher_timeframe("bearish"))))


def test_naive_candle_time_is_refused_not_crashed() -> None:
    naive = indicators(open_time=datetime(2024, 4, 2, 7, 55))  # noqa: DTZ001 - the point

    assert _no_match(evaluate(strategy(), naive, eval_context())).codes == ("invalid_indicators",)


# ----------------------------------------------------------------------- vocabulary

VOCABULARY: list[tuple[str, Any, dict[str, Any], bool]] = [
    ("trend_alignment", "bullish", {"sma_50": 2, "sma_200": 1}, True),
    ("trend_alignment", "bearish", {"sma_50": 2, "sma_200": 1}, False),
    ("trend_alignment", "bullish", {"sma_50": 1, "sma_200": 1}, False),
    ("rsi_below", 40, {"rsi_14": 39.99}, True),
    ("rsi_above", 60, {"rsi_14": 60.0}, False),
    ("rsi_above", 60, {"rsi_14": 60.01}, True),
    ("macd_cross", "up", {"prev_macd_hist": -0.1, "macd_hist": 0.1}, True),
    ("macd_cross", "up", {"prev_macd_hist": 0.0, "macd_hist": 0.1}, True),
    ("macd_cross", "up", {"prev_macd_hist": 0.1, "macd_hist": 0.2}, False),
    ("macd_cross", "up", {"prev_macd_hist": -0.1, "macd_hist": 0.0}, False),
    ("macd_cross", "down", {"prev_macd_hist": 0.1, "macd_hist": -0.1}, True),
    ("macd_cross", "down", {"prev_macd_hist": None, "macd_hist": -0.1}, False),
    ("macd_hist_sign", "positive", {"macd_hist": 0.0}, False),
    ("macd_hist_sign", "negative", {"macd_hist": -0.01}, True),
    ("price_vs_sma50", "above", {"close": 10.0, "sma_50": 9.0}, True),
    ("price_vs_sma50", "below", {"close": 10.0, "sma_50": 10.0}, False),
    ("price_vs_sma200", "below", {"close": 10.0, "sma_200": 11.0}, True),
    ("atr_min", 2.0, {"atr_14": 2.0}, True),
    ("atr_max", 2.0, {"atr_14": 2.01}, False),
    ("pct_move_today_min", 0.3, {"pct_move_today": 0.3}, True),
    ("pct_move_today_max", -0.5, {"pct_move_today": -0.4}, False),
    ("spread_max", 0.3, {"spread": 0.3}, True),
    ("spread_max_atr", 0.1, {"spread": 0.3, "atr_14": 2.0}, False),
    ("near_swing_low_atr", 1.0, {"close": 102.0, "swing_low": 100.0, "atr_14": 2.0}, True),
    ("near_swing_low_atr", 1.0, {"close": 102.1, "swing_low": 100.0, "atr_14": 2.0}, False),
    ("near_swing_high_atr", 0.5, {"close": 99.0, "swing_high": 100.0, "atr_14": 2.0}, True),
    ("near_swing_high_atr", 0.5, {"close": 99.0, "swing_high": None, "atr_14": 2.0}, False),
]


@pytest.mark.parametrize(("name", "param", "values", "met"), VOCABULARY)
def test_vocabulary_condition_holds_exactly_as_documented(
    name: str, param: Any, values: dict[str, Any], met: bool
) -> None:
    outcome = evaluate_conditions([Condition(name, param)], indicators(**values), eval_context())

    assert outcome[0].met is met, outcome[0].detail


def test_higher_timeframe_trend_needs_that_timeframes_indicators() -> None:
    condition = Condition("higher_timeframe_trend", {"timeframe": "H4", "trend": "bullish"})

    missing = evaluate_conditions([condition], indicators(), eval_context(htf=higher_timeframe()))
    present = evaluate_conditions(
        [condition], indicators(), eval_context(htf=higher_timeframe(timeframe="H4"))
    )

    assert (missing[0].met, present[0].met) == (False, True)
