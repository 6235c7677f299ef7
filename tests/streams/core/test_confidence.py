"""Confidence score v1 (blueprint §14.1): components, penalties, determinism."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.confidence import (
    ConfidenceResult,
    ScoreInputs,
    score_confidence,
)
from streams.core.strategy import EvaluationContext, parse_strategy
from tests.streams.core.decision_factories import (
    T0,
    account,
    calendar,
    eval_context,
    event,
    higher_timeframe,
    idea,
    indicators,
    position,
    strategy,
    strategy_dict,
)


def _score(
    ind_overrides: dict[str, Any] | None = None,
    context: EvaluationContext | None = None,
    **inputs: Any,
) -> ConfidenceResult:
    fields: dict[str, Any] = {
        "indicators": indicators(**(ind_overrides or {})),
        "now": T0,
        "context": context or eval_context(htf=higher_timeframe()),
        "account": account(),
        "positions": (),
    }
    fields.update(inputs)
    return score_confidence(idea(), strategy(), ScoreInputs(**fields))


def test_best_case_scores_each_component_near_its_maximum() -> None:
    result = _score()

    assert result.strategy_match.score == Decimal("50.00")
    assert result.market_risk.score == Decimal("24.20")  # ATR 0.084 % of price on M5: -0.80
    assert result.account_comfort.score == Decimal("25.00")
    assert result.score == Decimal("99.20")


def test_same_inputs_give_the_same_score_every_time() -> None:
    assert _score() == _score()
    assert _score().to_dict() == _score().to_dict()


def test_score_is_the_sum_of_its_components() -> None:
    result = _score({"rsi_14": 45.0, "spread": 0.6}, positions=(position(),))

    parts = (result.strategy_match, result.market_risk, result.account_comfort)

    assert result.score == sum((p.score for p in parts), Decimal(0))


def test_failed_required_condition_costs_15_points() -> None:
    result = _score({"rsi_14": 45.0})

    assert result.strategy_match.score == Decimal("35.00")
    assert any("required rsi_below failed" in r for r in result.strategy_match.reasons)


def test_missed_nice_to_have_costs_4_points() -> None:
    result = _score(context=eval_context(htf=higher_timeframe("bearish")))

    assert result.strategy_match.score == Decimal("46.00")


def test_related_high_impact_news_within_30_minutes_zeroes_market_risk() -> None:
    result = _score(context=eval_context(event(25), htf=higher_timeframe()))

    assert result.market_risk.score == Decimal("0.00")
    assert result.market_risk.reasons[0].startswith("news_blackout")


def test_unrelated_news_leaves_market_risk_alone() -> None:
    result = _score(context=eval_context(event(25, currency="JPY"), htf=higher_timeframe()))

    assert result.market_risk.score == Decimal("24.20")


def test_stale_calendar_zeroes_market_risk() -> None:
    stale = eval_context(htf=higher_timeframe(), last_success_at=T0 - timedelta(hours=3))

    assert _score(context=stale).market_risk.score == Decimal("0.00")


def test_wide_spread_costs_the_full_spread_penalty() -> None:
    result = _score({"spread": 1.0})  # half the ATR

    assert result.market_risk.score == Decimal("14.20")


def test_spike_day_costs_the_full_spike_penalty() -> None:
    result = _score({"pct_move_today": -3.5})

    assert result.market_risk.score == Decimal("17.20")


def test_missing_atr_costs_spread_and_volatility_penalties() -> None:
    assert _score({"atr_14": None}).market_risk.score == Decimal("7.00")


def test_missing_or_stale_account_zeroes_account_comfort() -> None:
    stale = account(captured_at=T0 - timedelta(minutes=5))

    assert _score(account=None).account_comfort.score == Decimal("0.00")
    assert _score(account=stale).account_comfort.score == Decimal("0.00")


def test_tight_margin_costs_the_full_margin_penalty() -> None:
    tight = account(margin_free=Decimal("3000.00"), margin_used=Decimal("7000.00"))

    assert _score(account=tight).account_comfort.score == Decimal("15.00")


def test_exposure_in_the_same_symbol_and_direction_lowers_account_comfort() -> None:
    one = _score(positions=(position(),))
    opposite = _score(positions=(position(direction="sell"),))
    correlated = _score(positions=(position(symbol="EURUSD"),))
    crowded = _score(positions=tuple(position(position_id=str(i)) for i in range(4)))

    assert one.account_comfort.score == Decimal("19.00")
    assert opposite.account_comfort.score == Decimal("22.00")
    assert correlated.account_comfort.score == Decimal("23.00")
    assert crowded.account_comfort.score == Decimal("10.00")  # exposure capped at 15


def test_score_does_not_depend_on_the_order_of_positions_events_or_frames() -> None:
    positions = [position(position_id=str(i), symbol=s, direction=d)
                 for i, (s, d) in enumerate([("XAUUSD", "buy"), ("EURUSD", "sell"),
                                             ("US30", "buy")])]
    events = [event(-90, "EUR"), event(120, "JPY"), event(200, "USD", impact="medium")]
    frames = [higher_timeframe(), higher_timeframe("bearish", "H4")]
    results = set()
    for p_order, e_order, f_order in itertools.product(
        itertools.permutations(positions), itertools.permutations(events),
        itertools.permutations(frames),
    ):
        context = EvaluationContext(calendar=calendar(*e_order),
                                    higher_timeframes={f.timeframe: f for f in f_order})
        result = _score(context=context, positions=p_order)
        results.add(repr(result.to_dict()))

    assert len(results) == 1


def test_strategy_definition_key_order_does_not_change_the_score() -> None:
    reordered = parse_strategy(dict(reversed(list(strategy_dict().items()))))
    inputs = ScoreInputs(indicators(), T0, eval_context(htf=higher_timeframe()), account())

    original = score_confidence(idea(), strategy(), inputs)

    assert score_confidence(idea(), reordered, inputs) == original


INDICATOR_VALUES = st.fixed_dictionaries({
    "rsi_14": st.none() | st.floats(0, 100),
    "atr_14": st.none() | st.floats(0.001, 50),
    "spread": st.floats(0, 5),
    "pct_move_today": st.none() | st.floats(-10, 10),
    "sma_50": st.none() | st.floats(2000, 2500),
    "swing_low": st.none() | st.floats(2300, 2400),
})


POSITIONS = st.lists(
    st.builds(lambda i, symbol, side: position(position_id=str(i), symbol=symbol, direction=side),
              st.integers(0, 99), st.sampled_from(["XAUUSD", "EURUSD", "US30", "FOOBAR"]),
              st.sampled_from(["buy", "sell"])),
    max_size=5,
)
EVENTS = st.lists(
    st.builds(event, st.integers(-120, 120), st.sampled_from(["USD", "EUR", "JPY"]),
              st.sampled_from(["high", "medium", "low"])),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(values=INDICATOR_VALUES, open_pl=st.integers(-5000, 5000), free=st.integers(0, 10000),
       positions=POSITIONS, events=EVENTS, data=st.data())
def test_score_is_bounded_deterministic_and_independent_of_ordering(
    values: dict[str, Any], open_pl: int, free: int, positions: list[Any], events: list[Any],
    data: st.DataObject,
) -> None:
    acct = account(open_pl=Decimal(open_pl), margin_free=Decimal(free))
    frames = [higher_timeframe(), higher_timeframe("bearish", "H4")]
    shuffled = [data.draw(st.permutations(items)) for items in (positions, events, frames)]

    def context(events: list[Any], frames: list[Any]) -> EvaluationContext:
        return EvaluationContext(calendar=calendar(*events),
                                 higher_timeframes={f.timeframe: f for f in frames})

    first = _score(values, context(events, frames), account=acct, positions=tuple(positions))
    again = _score(values, context(events, frames), account=acct, positions=tuple(positions))
    reordered = _score(dict(reversed(list(values.items()))), context(shuffled[1], shuffled[2]),
                       account=acct, positions=tuple(shuffled[0]))

    assert first == again
    assert reordered == first
    assert Decimal(0) <= first.score <= Decimal(100)
    for part in (first.strategy_match, first.market_risk, first.account_comfort):
        assert Decimal(0) <= part.score <= part.maximum
        assert part.score == part.score.quantize(Decimal("0.01"))
    assert first.score == (first.strategy_match.score + first.market_risk.score
                           + first.account_comfort.score)
