"""End to end through the streams worker: candle published -> decision event consumed.

    .venv/bin/python tests/bench/bench_pipeline.py [--symbols 10 100] [--candles 20000]
                                                   [--paced-rate 500]

One `ai-trader worker` process (the production entry point) on fresh topics of the
running bus. Every candle goes through the indicator engine and strategy evaluation;
a bench strategy matches every closed candle of the first `--deciding` symbols (default
1: one symbol in 10 or in 100 produces an idea and a decision per candle, the rest are
evaluated without a match, as most candles are live). For each symbol count:

- latency: candles published at `--paced-rate` per second for `--paced-seconds` (20), after
  `--settle` seconds (5) of the same that are not measured (a p99 over the first seconds
  after start-up measured the start-up, over ~200 decisions: one stall made it); for each
  decision, the time from its candle's publication to the decision's arrival at a
  consumer (p50/p99); `--dump FILE` writes each one, for a look at the tail;
- throughput: `--candles` published as fast as the producer goes; candles per second
  from the first publication to the last indicator record consumed (every candle has
  one), and to the last decision of that burst consumed ("with decisions": the gate
  decides one idea per candle of the deciding symbols, 1 in 10 at 10 symbols).

Targets (issue 4): p99 <= 25 ms and >= 5,000 candles/s on one worker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

from tests.streams.harness import ANY_BAR_BUY, Bus, WorkerProcess  # noqa: E402
from topics.bus import (  # noqa: E402
    admin_client,
    close_consumer,
    consumer_config,
    ensure_topics,
    producer_config,
    wait_for_bus,
)
from topics.catalog import Catalog  # noqa: E402
from topics.settings import Settings  # noqa: E402

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def strategy(symbols: list[str]) -> dict[str, Any]:
    """Matches every warm candle of `symbols`."""
    return {**ANY_BAR_BUY, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench{len(symbols)}")),
            "name": f"Bench every bar ({len(symbols)} symbols)", "allowed_symbols": symbols,
            "forbidden_conditions": {"block_high_impact_news_minutes": 0}}


def candle(symbol: str, i: int) -> dict[str, Any]:
    base = 100.0 + (hash(symbol) % 50) + i * 0.01 + (i % 3) * 0.02
    return {"symbol": symbol, "timeframe": "M1", "open_time": T0 + timedelta(minutes=i),
            "open": base, "high": base + 0.5, "low": base - 0.4, "close": base + 0.1,
            "volume": 10, "source": "bench", "spread": 0.01, "closed": True}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Run:
    def __init__(self, settings: Settings, n_symbols: int, tmp: Path, deciding: int,
                 stages: bool = False, worker_argv: tuple[str, ...] | None = None) -> None:
        self.deciding = deciding
        self.stages = stages
        #: idea id -> when the market agent produced it (the inbox record's timestamp)
        self.proposed: dict[str, float] = {}
        #: per paced decision: (market agent, gate, last hop) in seconds
        self.stage_times: list[tuple[float, float, float]] = []
        self.catalog = Catalog(prefix=f"bench{uuid.uuid4().hex[:8]}.")
        ensure_topics(settings, self.catalog)
        self.settings = settings
        self.symbols = [f"S{k:03d}" for k in range(n_symbols)]
        self.worker = (WorkerProcess(settings, self.catalog, tmp) if worker_argv is None
                       else WorkerProcess(settings, self.catalog, tmp, worker_argv))
        self.io = Bus(settings, self.catalog)
        self.index = dict.fromkeys(self.symbols, 0)
        self.sent: dict[tuple[str, datetime], float] = {}
        #: the same, for the indicator records (a decision may arrive before its candle's
        #: indicator record, which the worker batches longer: each has its own entry)
        self.sent_indicators: dict[tuple[str, datetime], float] = {}
        self.indicator_latency: list[float] = []
        self.decided: list[tuple[float, float]] = []
        self.indicators = 0
        self.last_indicator = 0.0
        self.decode_indicators = True  # for the paced phase's indicator latencies

    def start(self) -> None:
        self.worker.start()
        self.io.follow(["control.replies.v1", "decisions.log.v1",
                        *(["gate.inbox.v1"] if self.stages else [])])
        # Indicator records are counted raw: decoding 20,000 of them would cost this
        # process as much CPU as the worker spends making them, on the same two cores.
        self.raw = Consumer(consumer_config(self.settings, f"{self.catalog.prefix}raw"))
        self.raw.subscribe([self.catalog.name("market.indicators.v1")])
        self.io.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 120,
                     "seed replies")
        # --deciding 0: the strategy allows only a symbol no candle has (every candle is
        # evaluated, none matches): what the ideas cost is the difference
        strat = strategy(self.symbols[:self.deciding] or ["NONE"])
        reply = self.io.reply(self.io.command("put_strategy", strategy_id=strat["id"],
                                              payload={"definition": strat})["command_id"])
        assert reply["status"] == "accepted", reply
        # The kill switch makes every idea a decision without growing the pending book.
        self.io.reply(self.io.command("kill_switch", reason="benchmark")["command_id"])
        self.publish(15 * len(self.symbols), rate=None)  # warm-up: no idea possible yet
        time.sleep(2)

    def publish(self, n: int, rate: float | None) -> float:
        producer = self.io.producer
        began = time.perf_counter()
        began_wall = time.time()
        for k in range(n):
            sym = self.symbols[k % len(self.symbols)]
            i = self.index[sym]
            self.index[sym] = i + 1
            rec = candle(sym, i)
            self.sent[(sym, rec["open_time"] + timedelta(minutes=1))] = time.time()
            if self.decode_indicators:
                self.sent_indicators[(sym, rec["open_time"])] = \
                    self.sent[(sym, rec["open_time"] + timedelta(minutes=1))]
            producer.send("market.candles.v1", sym, rec)
            if k % 200 == 0:
                producer._producer.poll(0)
            if rate is not None:
                producer._producer.poll(0)
                # Read the outputs while waiting for the next send: a record's latency is
                # measured when it arrives, not when the bench gets round to it.
                while time.perf_counter() < began + (k + 1) / rate:
                    self.collect(0.002)
        producer.flush()
        return began_wall

    def collect(self, timeout: float) -> None:
        """Read what arrived: indicator records and decisions, with their arrival times."""
        consumer = self.io._consumer
        assert consumer is not None
        codec = self.catalog.codec("market.indicators.v1")
        for m in self.raw.consume(5000, timeout / 2):
            if m.error() is not None:
                continue
            now = time.time()
            self.indicators += 1
            self.last_indicator = now
            if self.decode_indicators:
                v = codec.decode(m.value())
                sent = self.sent_indicators.pop((v["symbol"], v["open_time"]), None)
                if sent is not None:
                    self.indicator_latency.append(now - sent)
        for r in consumer.poll(5000, timeout / 2):
            now = time.time()
            v = r.value
            if r.topic == "gate.inbox.v1" and v["idea"] is not None:
                self.proposed[v["idea"]["idea_id"]] = r.timestamp_ms / 1000
            if r.topic == "decisions.log.v1" and v["action"] == "risk_rejected":
                key = (v["symbol"], v["occurred_at"])
                if key in self.sent:
                    sent = self.sent.pop(key)
                    self.decided.append((sent, now))
                    proposed = self.proposed.pop(v["trade_idea_id"], None)
                    if proposed is not None:
                        decided = r.timestamp_ms / 1000
                        self.stage_times.append((proposed - sent, decided - proposed,
                                                 now - decided))

    def drain(self, candles: int, timeout: float,
              decisions: int | None = None) -> tuple[list[tuple[float, float]], float]:
        """Until `candles` indicator records (and their decisions) arrived: the
        (published, consumed) wall times of each decision, and when the last indicator
        record arrived. Counters restart for the next phase."""
        deadline = time.monotonic() + timeout
        expected = self.expected_decisions(candles) if decisions is None else decisions
        while ((self.indicators < candles or len(self.decided) < expected)
               and time.monotonic() < deadline):
            self.collect(0.05)
        out, last = self.decided, self.last_indicator
        self.decided, self.indicators = [], 0
        return out, last

    def expected_decisions(self, candles: int) -> int:
        return candles * self.deciding // len(self.symbols)

    def stop(self) -> None:
        close_consumer(self.raw, "bench-indicators")
        self.io.close()
        self.worker.stop()
        keep = os.environ.get("BENCH_KEEP_WORKER_LOG")
        if keep:  # the worker's own account of the run, for when a figure looks wrong
            Path(keep).write_text(self.worker.output())
        # every topic of the run: the catalog's, and the worker's tables' changelogs
        admin = admin_client(self.settings)
        mine = [t for t in admin.list_topics(timeout=30).topics
                if t.startswith(self.catalog.prefix)]
        for fut in admin.delete_topics(mine, operation_timeout=30).values():
            try:
                fut.result()
            except Exception:  # noqa: BLE001, S110 - best-effort cleanup
                pass


class CpuMeter:
    """CPU seconds used since it was made: by the worker, by the broker (when it runs
    here), by this process (publishing and consuming), and by the whole machine."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, worker_pid: int) -> None:
        self.pids = {"worker": worker_pid, "broker": _broker_pid()}
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        out = {name: _process_cpu(pid) for name, pid in self.pids.items()}
        out["bench"] = time.process_time()
        with open("/proc/stat") as f:  # "cpu user nice system idle iowait irq softirq ..."
            fields = [int(x) for x in f.readline().split()[1:8]]
        out["machine"] = (sum(fields) - fields[3] - fields[4]) / self.TICK
        return out

    def read(self) -> dict[str, float]:
        now = self._now()
        return {k: now[k] - self.start[k] for k in now}


def _process_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CpuMeter.TICK  # utime, stime


def _broker_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"kafka.Kafka" in cmd:
                return int(entry.name)
    return None


def bare_hop(settings: Settings, rate: float, seconds: float) -> list[float]:
    """The reference: one hop through the broker and nothing else, with the pipeline's
    client settings (librdkafka producer -> broker -> librdkafka consumer), at the paced
    rate. The pipeline crosses the broker three times (candle, idea, decision)."""
    topic = f"bench{uuid.uuid4().hex[:8]}.hop"
    admin = admin_client(settings)
    for fut in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        fut.result()
    producer = Producer(producer_config(settings))
    consumer = Consumer(consumer_config(settings, topic))
    consumer.subscribe([topic])
    latencies: list[float] = []
    try:
        producer.produce(topic, value=repr(time.time()).encode())
        producer.flush()
        while not consumer.consume(1, 0.5):  # assigned and positioned
            pass
        began = time.perf_counter()
        n = int(rate * seconds)
        for k in range(n + int(rate)):  # the last second's records are not awaited
            producer.produce(topic, value=repr(time.time()).encode())
            producer.poll(0)
            while time.perf_counter() < began + (k + 1) / rate:
                for m in consumer.consume(100, 0.002):
                    if m.error() is None and len(latencies) < n:
                        latencies.append(time.time() - float(m.value()))
        producer.flush()
    finally:
        close_consumer(consumer, "bench-hop")
        for fut in admin.delete_topics([topic], operation_timeout=30).values():
            try:
                fut.result()  # awaited: else the request may never leave before exit
            except Exception:  # noqa: BLE001, S110 - best-effort cleanup
                pass
    return latencies


def faust_floor(settings: Settings, n_symbols: int, candles: int) -> dict[str, float]:
    """The throughput reference: the worker with a market agent that forwards each
    candle unchanged (tests/bench/faust_floor.py), measured as the burst is: candles/s
    from the first publication to the last forwarded record consumed, and CPU per candle."""
    floor = (str(Path(__file__).with_name("faust_floor.py")),)
    with tempfile.TemporaryDirectory() as tmp:
        # the bench strategy is put as in the pipeline run; the forwarder never evaluates it
        run = Run(settings, n_symbols, Path(tmp), 1, worker_argv=floor)
        try:
            run.decode_indicators = False  # the forwarded records are candles
            run.start()
            run.drain(15 * n_symbols, 60, decisions=0)
            cpu = CpuMeter(run.worker.pid)
            began = run.publish(candles, rate=None)
            _, last = run.drain(candles, 300, decisions=0)
            used = cpu.read()
            return {"candles_per_s": candles / (last - began),
                    **{f"cpu_{k}": v / candles * 1e6 for k, v in used.items()}}
        finally:
            run.stop()


def bench(settings: Settings, n_symbols: int, candles: int, paced: float,
          deciding: int, stages: bool = False, paced_seconds: float = 20.0,
          settle: float = 5.0, dump: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(settings, n_symbols, Path(tmp), deciding, stages)
        try:
            run.start()
            run.drain(15 * n_symbols, 60, decisions=0)  # the warm-up: no idea yet
            if settle > 0:  # paced but not measured: the worker's start-up is behind it
                n_settle = int(paced * settle)
                run.publish(n_settle, rate=paced)
                run.drain(n_settle, 120)
            run.sent.clear()  # what the warm-up decided is not measured
            run.sent_indicators.clear()
            run.stage_times.clear()
            run.indicator_latency.clear()
            n_paced = int(min(candles, paced * paced_seconds))
            began_paced = run.publish(n_paced, rate=paced)
            paced_decided = run.drain(n_paced, 120)[0]
            lat = [c - p for p, c in paced_decided]
            if dump is not None:  # when each paced decision's candle was sent, and its latency
                dump.write_text("".join(f"{p - began_paced:.4f} {(c - p) * 1000:.2f}\n"
                                        for p, c in sorted(paced_decided)))
            ind = run.indicator_latency
            print(f"  indicators, paced: p50 {statistics.median(ind) * 1000:.2f} ms, "
                  f"p99 {percentile(ind, 0.99) * 1000:.2f} ms ({len(ind)} records)")
            if run.stage_times:
                for name, values in zip(("candle -> idea produced", "idea -> decision produced",
                                         "decision -> bench"), zip(*run.stage_times, strict=True),
                                        strict=True):
                    print(f"  {name}, paced: p50 {statistics.median(values) * 1000:.1f} ms, "
                          f"p99 {percentile(list(values), 0.99) * 1000:.1f} ms")
            run.decode_indicators = False
            cpu = CpuMeter(run.worker.pid)
            began = run.publish(candles, rate=None)
            decided, last = run.drain(candles, 300)
            used = cpu.read()
            return {
                **{f"cpu_{k}": v / candles * 1e6 for k, v in used.items()},
                "symbols": n_symbols, "deciding": deciding, "paced_rate": paced,
                "paced_n": len(lat),
                "p50_ms": statistics.median(lat) * 1000 if lat else float("nan"),
                "p99_ms": percentile(lat, 0.99) * 1000 if lat else float("nan"), "burst_n": candles,
                "burst_decisions": len(decided), "candles_per_s": candles / (last - began),
                "with_decisions_per_s": candles / (max([last, *(c for _, c in decided)])
                                                   - began),
            }
        finally:
            run.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--candles", type=int, default=20_000)
    parser.add_argument("--paced-rate", type=float, default=500.0)
    parser.add_argument("--deciding", type=int, default=1,
                        help="symbols whose every candle becomes a decision (0: none, for what "
                             "the ideas cost)")
    parser.add_argument("--paced-seconds", type=float, default=20.0,
                        help="how long the measured paced phase lasts")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds of paced candles, not measured, before it")
    parser.add_argument("--dump", type=Path,
                        help="write each paced decision's send time and latency (ms) to "
                             "DUMP.<symbols>")
    parser.add_argument("--stages", action="store_true",
                        help="also split each paced decision's latency by stage (reads the "
                             "gate's inbox: costs the bench CPU in the burst)")
    args = parser.parse_args()
    settings = Settings(AI_TRADER_ENV="test")  # type: ignore[call-arg]
    wait_for_bus(settings, timeout=30)
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  one worker process")
    hop = bare_hop(settings, args.paced_rate, 10)
    print(f"reference, one bare broker hop at {args.paced_rate:.0f}/s (the pipeline makes "
          f"three): p50 {statistics.median(hop) * 1000:.2f} ms, "
          f"p99 {percentile(hop, 0.99) * 1000:.2f} ms ({len(hop)} records)")
    for n in args.symbols:
        f = faust_floor(settings, n, args.candles)
        print(f"reference, the worker forwarding each candle and nothing else, {n} symbols: "
              f"{f['candles_per_s']:.0f} candles/s; CPU per candle: worker "
              f"{f['cpu_worker']:.0f} us, broker {f['cpu_broker']:.0f} us, bench "
              f"{f['cpu_bench']:.0f} us, machine {f['cpu_machine']:.0f} us")
    print(f"{'symbols':>8} {'deciding':>8} {'paced/s':>8} {'decided':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'burst n':>8} {'decided':>8} {'candles/s':>10} "
          f"{'w/ decisions/s':>15}")
    for n in args.symbols:
        r = bench(settings, n, args.candles, args.paced_rate, args.deciding, args.stages,
                  args.paced_seconds, args.settle,
                  None if args.dump is None else args.dump.with_suffix(f".{n}"))
        print(f"{r['symbols']:>8} {r['deciding']:>8} {r['paced_rate']:>8.0f} "
              f"{r['paced_n']:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['burst_n']:>8} {r['burst_decisions']:>8} {r['candles_per_s']:>10.0f} "
              f"{r['with_decisions_per_s']:>15.0f}")
        print(f"  CPU per candle in the burst: worker {r['cpu_worker']:.0f} us, broker "
              f"{r['cpu_broker']:.0f} us, bench {r['cpu_bench']:.0f} us; machine "
              f"{r['cpu_machine']:.0f} us of {os.cpu_count()} cores")
    print("targets: p99 <= 25 ms, >= 5,000 candles/s end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
