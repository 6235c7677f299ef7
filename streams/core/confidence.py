"""Confidence score v1 (blueprint §14.1): a reproducible 0-100 number, never from the LLM.

    confidence = strategy_match (0-50) + market_risk (0-25) + account_comfort (0-25)

**Strategy match** starts at 50. Each required entry condition that fails costs
`REQUIRED_PENALTY` (15); each nice-to-have (`entry_conditions.nice_to_have`, e.g.
higher-timeframe confluence) that is *not* met costs `NICE_TO_HAVE_WEIGHT` (4). Read the
other way round: a strategy that declares nice-to-haves starts 4 points lower per
nice-to-have and earns each back as a bonus when it hits, capped at 50. Floor 0.

**Market risk** is 0 when a related high-impact event is within
`max(NEWS_SCORE_WINDOW_MINUTES, strategy block minutes)` of the decision time, or the
calendar is stale for the symbol's currencies (unknown is never safe). Otherwise it
starts at 25 and loses, each linearly between a calm and a wild bound:

- up to 10 for spread / ATR between 0.10 and 0.50 (a wide spread eats the stop);
- up to 8 for ATR / price (volatility) between the timeframe's calm and wild bounds
  (`VOLATILITY_BOUNDS`, in percent);
- up to 7 for a spike day: abs(pct_move_today) between 1 % and 3 %.

A missing indicator costs its full penalty.

**Account comfort** is 0 without a fresh, reconciled account or with equity <= 0.
Otherwise it starts at 25 and loses up to 10 for margin_free / equity falling from
0.80 to 0.30, and for exposure: 6 per open position in the same symbol and direction,
3 per position in the same symbol opposite direction, 2 per other-symbol position in
the same direction sharing a currency (at most 15 for exposure).

Each component is rounded to cents (half-even) on its own and the total is their exact
decimal sum, capped at 100: the same inputs always give the same number, whatever the
order of positions or calendar events (only counts and "any" are taken from them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from streams.core.calendar import news_verdict, relevant_currencies
from streams.core.market import IndicatorValues
from streams.core.model import (
    CENT,
    DEFAULT_ACCOUNT_MAX_AGE,
    AccountState,
    Position,
    TradeIdea,
    finite,
    fmt_decimal,
    fmt_price,
    to_decimal,
)
from streams.core.strategy import (
    EvaluationContext,
    Strategy,
    evaluate_conditions,
)

STRATEGY_MAX = Decimal("50.00")
MARKET_MAX = Decimal("25.00")
ACCOUNT_MAX = Decimal("25.00")
TOTAL_MAX = Decimal("100.00")

REQUIRED_PENALTY = Decimal(15)
NICE_TO_HAVE_WEIGHT = Decimal(4)
NEWS_SCORE_WINDOW_MINUTES = 30

SPREAD_PENALTY, SPREAD_CALM, SPREAD_WILD = Decimal(10), 0.10, 0.50
VOLATILITY_PENALTY = Decimal(8)
SPIKE_PENALTY, SPIKE_CALM, SPIKE_WILD = Decimal(7), 1.0, 3.0
MARGIN_PENALTY, MARGIN_HEALTHY, MARGIN_TIGHT = Decimal(10), Decimal("0.80"), Decimal("0.30")
SAME_SIDE_PENALTY, OPPOSITE_PENALTY, CORRELATED_PENALTY = Decimal(6), Decimal(3), Decimal(2)
EXPOSURE_PENALTY_CAP = Decimal(15)

# ATR as percent of price: (calm, wild) per timeframe.
VOLATILITY_BOUNDS: dict[str, tuple[float, float]] = {
    "M1": (0.03, 0.15),
    "M5": (0.06, 0.30),
    "M15": (0.10, 0.50),
    "M30": (0.15, 0.70),
    "H1": (0.20, 1.00),
    "H4": (0.40, 2.00),
    "D1": (1.00, 4.00),
}


@dataclass(frozen=True, slots=True)
class ScoreComponent:
    """One part of the score: its points, its maximum and why."""

    name: str
    score: Decimal
    maximum: Decimal
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "name": self.name,
            "score": fmt_decimal(self.score),
            "maximum": fmt_decimal(self.maximum),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class ConfidenceResult:
    """The score and its three components (`confidence_json` of ideas and decisions)."""

    score: Decimal
    strategy_match: ScoreComponent
    market_risk: ScoreComponent
    account_comfort: ScoreComponent

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "score": fmt_decimal(self.score),
            "components": [
                self.strategy_match.to_dict(),
                self.market_risk.to_dict(),
                self.account_comfort.to_dict(),
            ],
        }


@dataclass(frozen=True, slots=True)
class ScoreInputs:
    """What the score is computed from besides the idea and its strategy.

    `now` is the decision's event time (normally the idea's `created_at`); `positions`
    are the open (and pending) positions of the account.
    """

    indicators: IndicatorValues
    now: datetime
    context: EvaluationContext = field(default_factory=EvaluationContext)
    account: AccountState | None = None
    positions: Sequence[Position] = ()
    account_max_age: timedelta = DEFAULT_ACCOUNT_MAX_AGE


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


def _ramp(value: float | None, calm: float, wild: float) -> Decimal:
    """0 at or below `calm`, 1 at or above `wild`, linear between; 1 when unknown."""
    if value is None:
        return Decimal(1)
    fraction = (to_decimal(round(value, 8)) - to_decimal(calm)) / to_decimal(wild - calm)
    return _clamp(fraction, Decimal(0), Decimal(1))


# ----------------------------------------------------------------------- strategy match


def _strategy_match(idea: TradeIdea, strategy: Strategy, inputs: ScoreInputs) -> ScoreComponent:
    required = evaluate_conditions(strategy.conditions, inputs.indicators, inputs.context)
    nice = evaluate_conditions(strategy.nice_to_have, inputs.indicators, inputs.context)
    reasons: list[str] = []
    points = STRATEGY_MAX
    for outcome in required:
        if not outcome.met:
            points -= REQUIRED_PENALTY
            penalty = f"-{REQUIRED_PENALTY}"
            reasons.append(f"required {outcome.name} failed ({penalty}): {outcome.detail}")
    for outcome in nice:
        if outcome.met:
            reasons.append(f"nice-to-have {outcome.name} met: {outcome.detail}")
        else:
            points -= NICE_TO_HAVE_WEIGHT
            reasons.append(f"nice-to-have {outcome.name} missed (-{NICE_TO_HAVE_WEIGHT})")
    met = sum(1 for outcome in required if outcome.met)
    reasons.insert(0, f"{met}/{len(required)} required conditions met")
    return ScoreComponent("strategy_match", _cents(_clamp(points, Decimal(0), STRATEGY_MAX)),
                          STRATEGY_MAX, tuple(reasons))


# -------------------------------------------------------------------------- market risk


def _volatility(ind: IndicatorValues) -> tuple[Decimal, str]:
    atr = finite(ind.atr_14)
    calm, wild = VOLATILITY_BOUNDS.get(ind.timeframe, VOLATILITY_BOUNDS["M5"])
    if atr is None or ind.close <= 0:
        return VOLATILITY_PENALTY, f"volatility unknown (-{VOLATILITY_PENALTY})"
    atr_pct = atr / ind.close * 100
    penalty = _cents(VOLATILITY_PENALTY * _ramp(atr_pct, calm, wild))
    return penalty, f"ATR {fmt_price(atr_pct)}% of price (calm {calm}, wild {wild}): -{penalty}"


def _spread(ind: IndicatorValues) -> tuple[Decimal, str]:
    atr, spread = finite(ind.atr_14), finite(ind.spread)
    if atr is None or spread is None or atr <= 0:
        return SPREAD_PENALTY, f"spread/ATR unknown (-{SPREAD_PENALTY})"
    ratio = spread / atr
    penalty = _cents(SPREAD_PENALTY * _ramp(ratio, SPREAD_CALM, SPREAD_WILD))
    return penalty, f"spread {fmt_price(ratio)} x ATR: -{penalty}"


def _spike(ind: IndicatorValues) -> tuple[Decimal, str]:
    move = finite(ind.pct_move_today)
    if move is None:
        return SPIKE_PENALTY, f"day move unknown (-{SPIKE_PENALTY})"
    penalty = _cents(SPIKE_PENALTY * _ramp(abs(move), SPIKE_CALM, SPIKE_WILD))
    return penalty, f"day move {fmt_price(move)}%: -{penalty}"


def _market_risk(idea: TradeIdea, strategy: Strategy, inputs: ScoreInputs) -> ScoreComponent:
    window = max(NEWS_SCORE_WINDOW_MINUTES, strategy.news.block_minutes)
    ctx = inputs.context
    verdict = news_verdict(
        idea.symbol, strategy.news.currencies, window, ctx.calendar, inputs.now,
        ctx.calendar_max_age, ctx.symbols,
    )
    if verdict.blocked:
        return ScoreComponent("market_risk", Decimal("0.00"), MARKET_MAX,
                              (f"{verdict.reason}: {verdict.detail}",))
    parts = (_spread(inputs.indicators), _volatility(inputs.indicators), _spike(inputs.indicators))
    points = MARKET_MAX - sum((penalty for penalty, _ in parts), Decimal(0))
    reasons = (verdict.detail, *(text for _, text in parts))
    return ScoreComponent("market_risk", _cents(_clamp(points, Decimal(0), MARKET_MAX)),
                          MARKET_MAX, reasons)


# ---------------------------------------------------------------------- account comfort


def _account_problem(account: AccountState | None, inputs: ScoreInputs) -> str | None:
    if account is None:
        return "no account state"
    if not account.reconciled:
        return "account not reconciled with the broker"
    if inputs.now - account.captured_at > inputs.account_max_age:
        return f"account state stale (captured {account.captured_at.isoformat()})"
    if account.equity <= 0:
        return f"equity {fmt_decimal(account.equity)} <= 0"
    return None


def _exposure(idea: TradeIdea, inputs: ScoreInputs) -> tuple[Decimal, str]:
    symbols = inputs.context.symbols
    mine = relevant_currencies(idea.symbol, (), symbols) or frozenset()
    same = opposite = correlated = 0
    for position in inputs.positions:
        if position.symbol == idea.symbol:
            same += position.direction == idea.direction
            opposite += position.direction != idea.direction
        elif position.direction == idea.direction:
            theirs = symbols.currencies(position.symbol)
            correlated += theirs is None or bool(theirs & mine)
    penalty = _cents(min(
        EXPOSURE_PENALTY_CAP,
        SAME_SIDE_PENALTY * same + OPPOSITE_PENALTY * opposite + CORRELATED_PENALTY * correlated,
    ))
    text = (f"exposure: {same} same symbol+direction, {opposite} same symbol opposite, "
            f"{correlated} correlated same direction: -{penalty}")
    return penalty, text


def _account_comfort(idea: TradeIdea, inputs: ScoreInputs) -> ScoreComponent:
    account = inputs.account
    problem = _account_problem(account, inputs)
    if problem is not None or account is None:
        return ScoreComponent("account_comfort", Decimal("0.00"), ACCOUNT_MAX, (str(problem),))
    ratio = account.margin_free / account.equity
    fraction = _clamp((MARGIN_HEALTHY - ratio) / (MARGIN_HEALTHY - MARGIN_TIGHT),
                      Decimal(0), Decimal(1))
    margin_penalty = _cents(MARGIN_PENALTY * fraction)
    exposure_penalty, exposure_text = _exposure(idea, inputs)
    points = ACCOUNT_MAX - margin_penalty - exposure_penalty
    reasons = (f"margin free {_cents(ratio)} of equity: -{margin_penalty}", exposure_text)
    return ScoreComponent("account_comfort", _cents(_clamp(points, Decimal(0), ACCOUNT_MAX)),
                          ACCOUNT_MAX, reasons)


def score_confidence(idea: TradeIdea, strategy: Strategy, inputs: ScoreInputs) -> ConfidenceResult:
    """Confidence v1 of `idea` (see the module docstring); pure and deterministic."""
    strategy_part = _strategy_match(idea, strategy, inputs)
    market_part = _market_risk(idea, strategy, inputs)
    account_part = _account_comfort(idea, inputs)
    total = min(TOTAL_MAX, strategy_part.score + market_part.score + account_part.score)
    return ConfidenceResult(_cents(total), strategy_part, market_part, account_part)
