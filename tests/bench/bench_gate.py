"""Decision-core throughput: gate decisions and strategy evaluations per second.

    .venv/bin/python tests/bench/bench_gate.py [--ideas 2000] [--seconds 4] [--repeat 3]

- strategy evaluation: `evaluate()` of the three shipped strategies on varied indicator
  values (matches and non-matches, calendars with a few events);
- gate decision: `score_confidence()` + `decide()` on prebuilt ideas against varied gate
  states (open positions, P/L, kill switch) and contexts;
- gate transition: `GateState.on_idea()` (decision + records + state change), chained.

Each rate is the best of `--repeat` timed runs of about `--seconds` / repeat each, in CPU
time (`time.process_time`): the machine may be shared and waiting for a CPU is not the
code's cost. Single process, single thread; `os.cpu_count()` is printed for context.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streams.core.calendar import trading_day  # noqa: E402
from streams.core.confidence import ScoreInputs, score_confidence  # noqa: E402
from streams.core.gate import GateContext, GateState, decide  # noqa: E402
from streams.core.market import IndicatorValues  # noqa: E402
from streams.core.model import (  # noqa: E402
    AccountState,
    CalendarEvent,
    CalendarStatus,
    KillSwitch,
    Position,
    RiskConfig,
    TradeIdea,
)
from streams.core.strategy import (  # noqa: E402
    EvaluationContext,
    Match,
    Strategy,
    evaluate,
    parse_strategy,
)

STRATEGIES_DIR = Path(__file__).resolve().parents[2] / "strategies"
T0 = datetime(2024, 4, 2, 8, 0, tzinfo=UTC)  # Tuesday, London and New York sessions apart
SYMBOL_OF = {"Gold Pullback Buy": "XAUUSD", "EURUSD MACD Trend Sell": "EURUSD",
             "US30 Breakout Momentum": "US30"}
PRICE_OF = {"XAUUSD": 2385.0, "EURUSD": 1.08, "US30": 39000.0}


def load_strategies() -> list[Strategy]:
    """The shipped example strategies."""
    return [parse_strategy(json.loads(p.read_text("utf-8")))
            for p in sorted(STRATEGIES_DIR.glob("*.json"))]


def random_indicators(rng: random.Random, strategy: Strategy, at: datetime) -> IndicatorValues:
    """Plausible indicator values for the strategy's symbol, matching about a third of the time."""
    symbol = SYMBOL_OF[strategy.name]
    price = PRICE_OF[symbol] * (1 + rng.uniform(-0.01, 0.01))
    atr = price * rng.uniform(0.0004, 0.003)
    bull = rng.random() < 0.5
    timeframe = strategy.timeframes[0] if strategy.timeframes else "M5"
    return IndicatorValues(
        symbol=symbol, timeframe=timeframe, open_time=at - timedelta(minutes=5), close=price,
        spread=atr * rng.uniform(0.02, 0.4), rsi_14=rng.uniform(20, 80),
        sma_50=price * (1.001 if bull else 0.999), sma_200=price * (0.998 if bull else 1.002),
        macd=rng.uniform(-1, 1), macd_signal=rng.uniform(-1, 1), macd_hist=rng.uniform(-1, 1),
        prev_macd_hist=rng.uniform(-1, 1), atr_14=atr, day_open=price * 0.997,
        pct_move_today=rng.uniform(-2, 2), swing_high=price + atr * rng.uniform(0, 2),
        swing_low=price - atr * rng.uniform(0, 2),
    )


def calendar(rng: random.Random, at: datetime) -> CalendarStatus:
    """A fresh calendar with a few events around `at`."""
    events = tuple(
        CalendarEvent(f"e{i}", rng.choice(["USD", "EUR", "GBP", "JPY"]),
                      rng.choice(["high", "medium", "low"]), "release",
                      at + timedelta(minutes=rng.randint(-240, 240)))
        for i in range(rng.randint(0, 8))
    )
    return CalendarStatus(events, at - timedelta(minutes=5))


def account(rng: random.Random, at: datetime, positions: tuple[Position, ...]) -> AccountState:
    """A fresh account with some open P/L."""
    return AccountState(
        balance=Decimal("10000.00"), equity=Decimal("10000.00"),
        margin_used=Decimal(rng.randint(0, 5000)), margin_free=Decimal(rng.randint(3000, 10000)),
        open_pl=Decimal(rng.randint(-800, 800)), captured_at=at - timedelta(seconds=5),
        positions=positions,
    )


def evaluation_cases(
    n: int, rng: random.Random, strategies: Sequence[Strategy]
) -> list[tuple[Strategy, IndicatorValues, EvaluationContext]]:
    """`n` (strategy, indicators, context) triples at varied times of one trading day."""
    cases = []
    for _ in range(n):
        strategy = rng.choice(strategies)
        at = T0 + timedelta(minutes=5 * rng.randint(-12, 100))
        cases.append((strategy, random_indicators(rng, strategy, at),
                      EvaluationContext(calendar=calendar(rng, at))))
    return cases


IdeaCase = tuple[TradeIdea, Strategy, IndicatorValues, EvaluationContext]


def matching_ideas(n: int, rng: random.Random, strategies: Sequence[Strategy]) -> list[IdeaCase]:
    """`n` ideas: up to 60 real matches, then copies with new ids, some minutes later."""
    found: list[IdeaCase] = []
    while len(found) < min(n, 60):
        for strategy, indicators, context in evaluation_cases(500, rng, strategies):
            result = evaluate(strategy, indicators, context)
            if isinstance(result, Match):
                found.append((result.idea, strategy, indicators, context))
    cases = []
    for i in range(n):
        idea, strategy, indicators, context = found[i % len(found)]
        later = idea.created_at + timedelta(minutes=rng.randint(0, 20))
        cases.append((dataclasses.replace(idea, idea_id=f"{idea.idea_id}-{i}", created_at=later),
                      strategy, indicators, context))
    return cases


def gate_inputs(
    rng: random.Random, idea: TradeIdea, config: RiskConfig
) -> tuple[GateState, GateContext]:
    """A gate state (some positions, P/L, sometimes killed) and context for `idea`."""
    positions = tuple(
        Position(str(i), rng.choice(["XAUUSD", "EURUSD", "US30"]), rng.choice(["buy", "sell"]),
                 Decimal("0.10"), idea.created_at - timedelta(hours=1), strategy_id=idea.strategy_id
                 if rng.random() < 0.3 else None)
        for i in range(rng.randint(0, 3))
    )
    killed = rng.random() < 0.05
    kill = KillSwitch(True, "ops", idea.created_at, "bench") if killed else KillSwitch()
    state = GateState(config=config, kill=kill, positions=positions,
                      trading_day=trading_day(idea.created_at, config.trading_day_start, "UTC"),
                      realised_today=Decimal(rng.randint(-300, 300)))
    context = GateContext(account(rng, idea.created_at, positions),
                          calendar(rng, idea.created_at))
    return state, context


def best_rate(work: Callable[[], int], seconds: float, repeat: int) -> float:
    """Best items/second over `repeat` runs of `work`, each looped for ~`seconds / repeat`."""
    best = 0.0
    for _ in range(repeat):
        done, start = 0, time.process_time()
        while time.process_time() - start < seconds / repeat:
            done += work()
        best = max(best, done / (time.process_time() - start))
    return best


def main(argv: Sequence[str] | None = None) -> None:
    """Build the inputs, time the three loops, print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ideas", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    rng = random.Random(20240402)
    strategies = load_strategies()
    config = RiskConfig(max_lot_size=Decimal("1.00"), max_concurrent_trades=3,
                        daily_profit_target=Decimal("2000.00"),
                        max_drawdown_amount=Decimal("1000.00"), ai_trading_enabled=True,
                        watchlist=frozenset({"XAUUSD", "EURUSD", "US30"}))
    cases = evaluation_cases(args.ideas, rng, strategies)
    ideas = matching_ideas(args.ideas, rng, strategies)
    prepared = [(idea, strategy, indicators, context, *gate_inputs(rng, idea, config))
                for idea, strategy, indicators, context in ideas]

    def evaluations() -> int:
        for strategy, indicators, context in cases:
            evaluate(strategy, indicators, context)
        return len(cases)

    outcomes: dict[str, int] = {}

    def decisions() -> int:
        for idea, strategy, indicators, context, state, gate_context in prepared:
            score = score_confidence(idea, strategy, ScoreInputs(
                indicators, idea.created_at, context, gate_context.account, state.positions))
            result = decide(idea, score, strategy, state, gate_context, idea.created_at)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        return len(prepared)

    def transitions() -> int:
        state = prepared[0][4]
        for idea, strategy, _, _, _, gate_context in prepared:
            fresh = dataclasses.replace(idea, idea_id=f"{idea.idea_id}-{rng.random()}")
            state = state.on_idea(fresh, Decimal("95"), strategy, gate_context,
                                  idea.created_at).state
            if len(state.positions) > 2:
                state = dataclasses.replace(state, positions=())
        return len(prepared)

    matches = sum(isinstance(evaluate(*case), Match) for case in cases)
    print(f"cpu_count: {os.cpu_count()}  python: {platform.python_version()}  "
          f"({platform.machine()}, single thread, CPU time, best of {args.repeat})")
    print(f"inputs: {len(cases)} evaluation cases ({matches} match), {len(prepared)} ideas")
    rows = [
        ("strategy evaluations", evaluations),
        ("gate decisions (confidence + gate)", decisions),
        ("gate transitions (on_idea)", transitions),
    ]
    for name, work in rows:
        print(f"{name:<38} {best_rate(work, args.seconds, args.repeat):>10,.0f} /s")
    print("gate outcomes seen:", json.dumps(dict(sorted(outcomes.items()))))


if __name__ == "__main__":
    main()
