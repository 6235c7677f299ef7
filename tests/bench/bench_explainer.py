"""Explainer costs: its own CPU per explanation, and throughput/latency on the real bus.

    .venv/bin/python tests/bench/bench_explainer.py [--records 200] [--repeat 3]

- local cost: facts + prompt + number guard + record for an idea (with its bundle) and
  for a decision, in CPU time (`time.process_time`, best of `--repeat`), no I/O;
- on the bus, against the local OpenAI-compatible server answering at once: `--records`
  decisions published, wall time until all are explained (the ceiling the explainer
  itself sets; a real model adds its own latency per call, typically 0.5-3 s), and the
  end-to-end latency of single decisions (publish -> explanation read back), p50/p95;
- the same throughput with no key (fallback path, no HTTP).

The gate is not involved: the explainer is a separate process and the gate never waits
for it; these figures only say how far behind the explanations can fall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pydantic import SecretStr  # noqa: E402

from streams.explainer.facts import decision_subject, idea_subject  # noqa: E402
from streams.explainer.guard import check_numbers, index_facts  # noqa: E402
from streams.explainer.prompt import build_prompt, clean_text  # noqa: E402
from streams.explainer.service import build_loop  # noqa: E402
from tests.explainer import factories as f  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Reply  # noqa: E402
from topics.bus import BusConsumer, BusProducer, admin_client, ensure_topics  # noqa: E402
from topics.catalog import Catalog  # noqa: E402
from topics.settings import Settings  # noqa: E402


def _cpu_rate(fn: Any, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, time.process_time() - start)
    return best / n


def local_costs(repeat: int) -> None:
    idea = f.trade_idea()
    status, bundle, decision = f.idea_status(idea), f.bundle(idea), f.decision(idea)

    def explain_idea() -> None:
        subject = idea_subject(status, bundle)
        assert subject is not None
        prompt = build_prompt(subject)
        assert check_numbers(clean_text(f.IDEA_TEXT, "idea"), index_facts(prompt.facts_text)).ok

    def explain_decision() -> None:
        prompt = build_prompt(decision_subject(decision))
        assert check_numbers(clean_text(f.DECISION_TEXT, "decision"),
                             index_facts(prompt.facts_text)).ok

    for name, fn in (("idea (with bundle)", explain_idea), ("decision", explain_decision)):
        per = _cpu_rate(fn, 500, repeat)
        print(f"local cost   {name:<20} {per * 1e6:8.0f} us CPU per explanation "
              f"(facts + prompt + guard)")


def _drain(consumer: BusConsumer, want: int, timeout: float) -> int:
    got, deadline = 0, time.monotonic() + timeout
    while got < want and time.monotonic() < deadline:
        got += len(consumer.poll(500, 0.1))
    return got


def _bus_run(settings: Settings, catalog: Catalog, records: int, label: str) -> None:
    loop = build_loop(settings, catalog, clock=lambda: f.NOW)
    producer = BusProducer(settings, catalog)
    reader = BusConsumer(settings, catalog, ["explanations.v1"],
                         group_id=f"{catalog.prefix}bench-{uuid.uuid4().hex[:6]}")
    try:
        # warm up: group joins, connections open
        producer.send("decisions.log.v1", "paper-1", f.decision())
        producer.flush()
        while loop.published < 1:
            loop.step(0.2)
        _drain(reader, 1, 30)
        decisions = [f.decision() for _ in range(records)]
        start = time.perf_counter()
        for d in decisions:
            producer.send("decisions.log.v1", "paper-1", d)
        producer.flush()
        while loop.published < records + 1:
            loop.step(0.1)
        got = _drain(reader, records, 60)
        wall = time.perf_counter() - start
        print(f"bus          {label:<20} {records / wall:8.1f} explanations/s "
              f"({got}/{records} read back in {wall:.2f}s)")
        latencies = []
        for _ in range(20):
            t0 = time.perf_counter()
            producer.send("decisions.log.v1", "paper-1", f.decision())
            producer.flush()
            target = loop.published + 1
            while loop.published < target:
                loop.step(0.05)
            _drain(reader, 1, 30)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()
        print(f"bus          {label:<20} latency publish->explanation read: "
              f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {latencies[int(0.95 * len(latencies)) - 1] * 1000:.0f} ms (n=20)")
    finally:
        loop.producer.flush()
        loop.consumer.close()
        loop.explainer.client.close()
        reader.close()


def bus_figures(records: int) -> None:
    base = Settings(AI_TRADER_ENV="test")  # type: ignore[call-arg]
    catalog = Catalog(prefix=f"bench{uuid.uuid4().hex[:8]}.")
    ensure_topics(base, catalog)
    try:
        with tempfile.TemporaryDirectory() as state, \
                FakeOpenAI(default=Reply(lambda r: f.text_for(r.prompt))) as server:
            common = {"openai_base_url": server.url, "state_dir": Path(state),
                      "explainer_metrics_port": 0, "llm_daily_call_budget": 10**6,
                      "llm_daily_token_budget": 10**9}
            with_key = base.model_copy(update={**common,
                                               "openai_api_key": SecretStr(server.api_key)})
            _bus_run(with_key, catalog, records, "instant model")
            no_key = base.model_copy(update={**common, "openai_api_key": None})
            _bus_run(no_key, Catalog(prefix=catalog.prefix), records, "no key (fallback)")
    finally:
        admin = admin_client(base)
        for fut in admin.delete_topics(list(catalog.physical_topics()),
                                       operation_timeout=30).values():
            fut.result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}")
    local_costs(args.repeat)
    bus_figures(args.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
