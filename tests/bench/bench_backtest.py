"""Backtest speed in candles per second, on a year of M1-like candles.

    .venv/bin/python tests/bench/bench_backtest.py [--candles 374400] [--e2e-candles 37440]

- candles: the seeded synthetic market (connectors/market/synthetic.py, XAUUSD M1,
  weekends skipped): a trading year is 52 weeks x 5 days x 1440 = 374,400 bars (the
  default). Generating them is not timed.
- simulation: `Simulation.step()` over every candle (indicators, one strategy evaluated
  on every bar, snapshot bundles, the gate, the paper broker, exits), the core's speed.
- end to end: `ai-trader backtest` as a function on a CSV file of `--e2e-candles`
  candles: parsing, the simulation, candles.csv and every report file (charts included
  when matplotlib is installed).

Rates are CPU time (`time.process_time`): the machine may be shared, and waiting for a
CPU is not the code's cost. Single process, single thread.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connectors.market.synthetic import SyntheticMarket  # noqa: E402
from streams.backtest.engine import BacktestConfig, Simulation  # noqa: E402
from streams.backtest.run import RunOptions, run_backtest  # noqa: E402
from streams.core.strategy import parse_strategy  # noqa: E402
from streams.defaults import DEFAULT_RISK, parse_risk_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
YEAR_OF_M1 = 52 * 5 * 1440
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday

#: The shipped gold pullback, evaluated on every M1 bar all day (so the core always works).
STRATEGY: dict[str, Any] = json.loads((REPO / "strategies" / "gold_pullback_buy.json")
                                      .read_text())
STRATEGY.update(id="5d1e6a0b-3c2f-4e8d-9b7a-0f1e2d3c4b5a", name="Gold pullback M1 (bench)",
                timeframes=["M1"], session_windows=[
                    {"start": "00:00Z", "end": "12:00Z", "days": ["Mon", "Tue", "Wed", "Thu",
                                                                 "Fri", "Sat", "Sun"]},
                    {"start": "12:00Z", "end": "00:00Z", "days": ["Mon", "Tue", "Wed", "Thu",
                                                                 "Fri", "Sat", "Sun"]}])
STRATEGY["entry_conditions"]["rsi_below"] = 45
RISK = {**DEFAULT_RISK, "ai_trading_enabled": True, "min_confidence_threshold": "60",
        "max_lot_size": "1.00", "watchlist": ["XAUUSD"]}


def generate(n: int) -> list[dict[str, Any]]:
    market = SyntheticMarket(("XAUUSD",), "M1", 42, START)
    return [bars[0].record for bars in itertools.islice(market, n)]


def bench_simulation(candles: list[dict[str, Any]]) -> tuple[float, Any]:
    sim = Simulation(BacktestConfig((parse_strategy(STRATEGY),), parse_risk_config(RISK),
                                    price_timeframes={"XAUUSD": "M1"}))
    started = time.process_time()
    for candle in candles:
        sim.step(candle)
    result = sim.finish()
    return time.process_time() - started, result


def bench_end_to_end(candles: list[dict[str, Any]]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data, strategy, risk = d / "XAUUSD_M1.csv", d / "strategy.json", d / "risk.json"
        with data.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["time", "open", "high", "low", "close", "volume", "spread"])
            out.writerows([c["open_time"].isoformat(), c["open"], c["high"], c["low"],
                           c["close"], c["volume"], c["spread"]] for c in candles)
        strategy.write_text(json.dumps(STRATEGY))
        risk.write_text(json.dumps(RISK))
        started = time.process_time()
        run_backtest(RunOptions(data=[data], strategies=[strategy], risk=risk, out=d / "out",
                                progress=False))
        return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=YEAR_OF_M1,
                        help=f"candles for the simulation (default a year of M1: {YEAR_OF_M1})")
    parser.add_argument("--e2e-candles", type=int, default=None,
                        help="candles for the end-to-end run (default a tenth of --candles)")
    args = parser.parse_args()
    e2e = args.e2e_candles if args.e2e_candles is not None else max(args.candles // 10, 1000)
    print(f"python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs (shared), CPU-time rates")
    wall = time.perf_counter()
    candles = generate(max(args.candles, e2e))
    first, last = candles[0]["open_time"], candles[args.candles - 1]["open_time"]
    span = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    print(f"candles: {args.candles:,} synthetic XAUUSD M1 ({span}), generated in "
          f"{time.perf_counter() - wall:.1f} s (not timed)")
    seconds, result = bench_simulation(candles[:args.candles])
    print(f"simulation: {args.candles / seconds:,.0f} candles/s ({seconds:.1f} s CPU; "
          f"{len(result.ideas):,} ideas, {len(result.decisions):,} decisions, "
          f"{len(result.trades):,} trades)")
    seconds = bench_end_to_end(candles[:e2e])
    print(f"end to end (parse CSV, simulate, write candles.csv and the report): "
          f"{e2e / seconds:,.0f} candles/s on {e2e:,} candles ({seconds:.1f} s CPU)")
    print(f"total wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
