"""The streams worker's own work per candle and per idea, without the bus.

    .venv/bin/python tests/bench/bench_idea.py [--ideas 400] [--repeat 7]

What the worker does in Python for the pipeline benchmark's load (bench_pipeline.py: the
bench strategy matches every closed candle of one symbol, the kill switch is on, so every
idea is decided `risk_rejected`), stage by stage, with the same functions it calls:

- a candle: the indicator engine's update, the IndicatorSnapshot record and its encoding
  (every candle; the reference for the rest);
- an idea: `propose` (live evaluation, bundle, derivation from the bundle, confidence),
  the bundle's and the gate-inbox message's encodings (the bundle's bytes reused in the
  message, as the market agent does), the gate's `Book.on_idea` with the
  market agent's derivation (`proposals.Derivations`: checks, decision and status
  records, hash chain), and the encoding of what it emits.

CPU time (`time.process_time`), best of `--repeat` passes, each with the caches a run
fills emptied first (what they keep is what one run repeats, not what earlier passes
did): on a shared machine the waiting is not the code's cost, and the pipeline's own
figures move by up to 2x within an hour; these do much less, so they tell whether a
change to this work paid. The bus,
faust and librdkafka are outside it: the pipeline benchmark measures those.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streams import records  # noqa: E402
from streams.core import audit  # noqa: E402
from streams.core.indicators import IndicatorEngine  # noqa: E402
from streams.core.strategy import idea_id_for, parse_strategy  # noqa: E402
from streams.defaults import default_risk_config  # noqa: E402
from streams.gatekeeper import Book  # noqa: E402
from streams.proposals import MarketContext, propose  # noqa: E402
from tests.streams.harness import ANY_BAR_BUY  # noqa: E402
from topics.catalog import Catalog  # noqa: E402
from topics.commands import new_command  # noqa: E402

KEY = b"bench-idea-hmac-key-of-32-bytes!"
ACCOUNT = "acct-bench"
T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
CATALOG = Catalog(prefix="bench.")
STRATEGY = {**ANY_BAR_BUY, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "bench-idea")),
            "name": "Bench every bar", "allowed_symbols": ["S000"],
            "forbidden_conditions": {"block_high_impact_news_minutes": 0}}


def candle(i: int) -> dict[str, Any]:
    """bench_pipeline.py's candle series for one symbol."""
    base = 107.0 + i * 0.01 + (i % 3) * 0.02
    return {"symbol": "S000", "timeframe": "M1", "open_time": T0 + timedelta(minutes=i),
            "open": base, "high": base + 0.5, "low": base - 0.4, "close": base + 0.1,
            "volume": 10, "source": "bench", "spread": 0.01, "closed": True}


def killed_book() -> Book:
    """A fresh book that knows the strategy, with the kill switch on (as in the bench)."""
    book = Book.new(ACCOUNT, default_risk_config(), "bench",
                    pending={}, decided={}, commands={})
    now = datetime.now(UTC)
    for kind, fields in (("put_strategy", {"strategy_id": STRATEGY["id"],
                                           "payload": {"definition": STRATEGY}}),
                         ("kill_switch", {"reason": "benchmark"})):
        command = new_command(kind, ACCOUNT, "bench", KEY, now=now,
                              command_id=str(uuid.uuid4()), **fields)
        reply = book.on_command(command, KEY, now).replies[0]
        assert reply["status"] == "accepted", reply
    return book


def best_of(repeat: int, one_pass: Callable[[dict[str, float]], None]) -> dict[str, float]:
    """Seconds per stage of the fastest pass (by total)."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        stages: dict[str, float] = {}
        one_pass(stages)
        if best is None or sum(stages.values()) < sum(best.values()):
            best = stages
    assert best is not None
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ideas", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n = args.ideas
    codec = CATALOG.codec
    candles = [candle(i) for i in range(100 + n)]
    strategy = parse_strategy(STRATEGY)
    context = MarketContext(account_id=ACCOUNT, code_version="bench")

    def candle_pass(stages: dict[str, float]) -> None:
        engine = IndicatorEngine("S000", "M1")
        clock = time.process_time
        spent = 0.0
        for i, c in enumerate(candles):
            started = clock()
            update = engine.update(records.candle(c))
            if update.values is not None:
                codec("market.indicators.v1").encode(
                    records.indicators_record(update.values, 0, i))
            spent += clock() - started
        stages["candle"] = spent / len(candles)

    # the snapshots the ideas are made from: the engine warmed up on the first 100 candles
    engine = IndicatorEngine("S000", "M1")
    snapshots = []
    for i, c in enumerate(candles):
        values = engine.update(records.candle(c)).values
        if values is not None and i >= 100:
            snapshots.append((c, records.indicators_record(values, 0, i)))
    assert len(snapshots) == n, len(snapshots)

    def idea_pass(stages: dict[str, float]) -> None:
        # every pass as the first: what the caches keep is only what one run repeats
        audit._text_json.cache_clear()
        idea_id_for.cache_clear()
        book = killed_book()
        clock = time.process_time
        spent = dict.fromkeys(("propose", "encode idea", "gate", "encode outputs"), 0.0)
        for offset, (c, snapshot) in enumerate(snapshots):
            t0 = clock()
            proposal = propose(strategy, c, snapshot, context)
            assert proposal is not None
            t1 = clock()
            _, bundle = codec("snapshots.bundles.v1").encode_reusable(proposal.bundle)
            message = {"account": ACCOUNT, "idea": proposal.idea_record,
                       "bundle": proposal.bundle, "command": None}
            codec("gate.inbox.v1").encode(message, {"bundle": bundle})
            t2 = clock()
            out = book.on_idea(message, [{"topic": "gate.inbox.v1", "partition": 0,
                                          "offset": offset}], proposal)
            t3 = clock()
            for logical, _key, record in out.records(ACCOUNT):
                codec(logical).encode(record)
            t4 = clock()
            spent["propose"] += t1 - t0
            spent["encode idea"] += t2 - t1
            spent["gate"] += t3 - t2
            spent["encode outputs"] += t4 - t3
            assert [d["action"] for d in out.decisions] == ["risk_rejected"], out.decisions
        stages.update({k: v / n for k, v in spent.items()})

    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  (single thread, CPU "
          f"time, best of {args.repeat})")
    per_candle = best_of(args.repeat, candle_pass)["candle"]
    print(f"reference, a candle (indicators, record, encoding): {per_candle * 1e6:7.1f} us")
    stages = best_of(args.repeat, idea_pass)
    per_idea = sum(stages.values())
    print(f"an idea, {n} of them:                              {per_idea * 1e6:7.1f} us "
          f"({per_idea / per_candle:.1f} candles)")
    for name, seconds in stages.items():
        print(f"  {name:<16} {seconds * 1e6:7.1f} us")
    share = 0.1 * per_idea / (per_candle + 0.1 * per_idea)
    print(f"at 1 idea in 10 candles (bench_pipeline.py, 10 symbols) the ideas are "
          f"{share:.0%} of this work")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
