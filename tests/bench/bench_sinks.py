"""Sink benchmarks: topic -> committed rows, and the decision-history query at 10 M rows.

    .venv/bin/python tests/bench/bench_sinks.py [--candles 100000] [--batch 10000]
        [--rows 10000000] [--queries 1000] [--skip-ingest] [--skip-query]
    .venv/bin/python tests/bench/bench_sinks.py --candles 1000000 --rows 20000000  # bigger

Needs the local Kafka and PostgreSQL (`bash infra/stack.sh start`). Everything runs in a
dedicated database (`bench_sinks_<hex>`) and uuid-prefixed topics, dropped at the end.

1. Sink ingest, candles: N candles are produced to market.candles.v1, then a SinkService
   (the real one: consume, decode, validate, stage, merge, commit, commit offsets) reads
   them into snapshot_market, once with binary COPY into the staging table and once with
   executemany INSERTs, each with a fresh consumer group. The rate is N / (time from the
   first record consumed to the last offset committed). Target: >= 100,000 rows/s.
   For context, the writer alone (rows already built, no bus) is timed the same way.
2. Decision history: --rows decisions generated server-side with generate_series
   (indexes built after the load, as a restore would), then the API's query
   (`sinks.queries.decision_history`: symbol and action filters, newest 100) with random
   symbol/action pairs: p50/p99 of the server's execution time (EXPLAIN ANALYZE) and of
   the client round trip. Target: p99 <= 5 ms in the database.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from sinks import queries
from sinks.batch import Batch
from sinks.migrate import migrate
from sinks.routes import Record, candle_rows
from sinks.service import SinkConfig, SinkService, tune_process
from sinks.writer import Method, Writer
from topics.bus import BusProducer, admin_client, ensure_topics
from topics.catalog import Catalog
from topics.settings import Settings

SYMBOLS = ("XAUUSD", "EURUSD", "US30", "GBPUSD", "USDJPY", "BTCUSD", "NAS100", "SPX500")
#: realistic mix: most decisions are proposals and risk rejections, halts are rare
ACTIONS = ("ai_proposed", "ai_proposed", "ai_proposed", "risk_rejected", "risk_rejected",
           "human_approved", "human_rejected", "ai_auto_executed", "ai_halted", "ai_resumed")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _admin(settings: Settings) -> str:
    return settings.database_dsn().rsplit("/", 1)[0] + "/postgres"


@contextmanager
def bench_database(settings: Settings) -> Iterator[Settings]:
    """A migrated database of its own, dropped afterwards."""
    name = f"bench_sinks_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    bench = settings.model_copy(update={
        "database_url": type(settings.database_url)(
            settings.database_dsn().rsplit("/", 1)[0] + "/" + name)})
    try:
        migrate(bench)
        yield bench
    finally:
        with psycopg.connect(_admin(settings), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


@contextmanager
def bench_topics(settings: Settings) -> Iterator[Catalog]:
    """Every catalog topic under a fresh prefix, deleted afterwards."""
    catalog = Catalog(prefix=f"bench{uuid.uuid4().hex[:10]}.")
    ensure_topics(settings, catalog)
    try:
        yield catalog
    finally:
        admin = admin_client(settings)
        for fut in admin.delete_topics(list(catalog.physical_topics()),
                                       operation_timeout=30).values():
            fut.result()


def candles(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """n distinct M1 candles, a random walk per symbol."""
    rng = random.Random(seed)
    price = {s: 100.0 + 40 * k for k, s in enumerate(SYMBOLS)}
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        o = price[symbol]
        c = o * (1 + rng.gauss(0, 0.001))
        price[symbol] = c
        yield {"symbol": symbol, "timeframe": "M1",
               "open_time": T0 + timedelta(minutes=i // len(SYMBOLS)), "open": o,
               "high": max(o, c) * 1.0004, "low": min(o, c) * 0.9996, "close": c,
               "volume": rng.randint(0, 10_000), "source": "bench", "spread": 0.2,
               "closed": True}


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} rows/s  ({n:,} rows in {seconds:.2f} s)"


def produce(settings: Settings, catalog: Catalog, n: int) -> None:
    producer = BusProducer(settings, catalog, **{"linger.ms": 20})
    started = time.perf_counter()
    for record in candles(n):
        producer.send("market.candles.v1", record["symbol"], record)
    producer.flush(120)
    print(f"  produced (encode + send)        {_rate(n, time.perf_counter() - started)}")


def _written(service: SinkService) -> float:
    value = service.metrics.registry.get_sample_value(
        "sink_rows_written_total", {"table": "snapshot_market"})
    return value or 0.0


def _consumed(service: SinkService) -> float:
    value = service.metrics.registry.get_sample_value(
        "sink_records_consumed_total", {"topic": "market.candles.v1"})
    return value or 0.0


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TimedSink(SinkService):
    """The sink service, counting the CPU time of its writer thread."""

    writer_cpu = 0.0

    def _write_until_done(self, batch: Batch, final: bool) -> bool:
        started = time.thread_time()
        try:
            return super()._write_until_done(batch, final)
        finally:
            self.writer_cpu += time.thread_time() - started


def sink_ingest(db: Settings, catalog: Catalog, n: int, method: Method, batch: int
                ) -> tuple[float, dict[str, float]]:
    """Seconds from the first record consumed to the last offset committed, and CPU/row."""
    with psycopg.connect(db.database_dsn(), autocommit=True) as conn:
        conn.execute("TRUNCATE snapshot_market")
    config = SinkConfig(group_id=f"bench-{method}-{uuid.uuid4().hex[:8]}", max_batch=batch,
                        lag_interval=0, method=method)
    service = TimedSink(db, catalog, config)
    backend = service.writer.connection().info.backend_pid
    first: float | None = None
    deadline = time.monotonic() + 600
    main_cpu = db_cpu = 0.0
    try:
        while _written(service) < n:
            before, before_cpu = time.perf_counter(), time.thread_time()
            before_db = _process_cpu(backend) if first is None else db_cpu
            service.step()
            if first is None and _consumed(service):
                first, main_cpu, db_cpu = before, before_cpu, before_db
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: {_written(service):.0f} of {n} rows in 600 s")
        done = time.perf_counter()
        cpu = {"main": time.thread_time() - main_cpu, "writer": service.writer_cpu,
               "database": _process_cpu(backend) - db_cpu}
    finally:
        service.close()
    with psycopg.connect(db.database_dsn()) as conn:
        row = conn.execute("SELECT count(*) FROM snapshot_market").fetchone()
    if row is None or row[0] != n or first is None:
        raise RuntimeError(f"{method}: {row} rows, expected {n}")
    return done - first, {k: v / n * 1e6 for k, v in cpu.items()}


def writer_only(db: Settings, n: int, method: Method, batch: int) -> float:
    """The database part alone: rows already built, written in batches of `batch`."""
    with psycopg.connect(db.database_dsn(), autocommit=True) as conn:
        conn.execute("TRUNCATE snapshot_market")
    now = datetime.now(UTC)
    rows = [candle_rows(Record("market.candles.v1", 0, i, c, b"", now))[0]  # type: ignore[index]
            for i, c in enumerate(candles(n))]
    writer = Writer(db.database_dsn(), method)
    started = time.perf_counter()
    for i in range(0, n, batch):
        writer.write({"snapshot_market": rows[i:i + batch]})
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


def bench_ingest(settings: Settings, db: Settings, n: int, batch: int) -> None:
    print(f"sink ingest: market.candles.v1 -> snapshot_market, {n:,} candles, "
          f"batches of {batch}")
    with bench_topics(settings) as catalog:
        produce(settings, catalog, n)
        for method in ("copy", "executemany"):
            seconds, cpu = sink_ingest(db, catalog, n, method, batch)
            flag = "  (target >= 100,000)" if method == "copy" else ""
            print(f"  topic -> committed rows, {method:<11} {_rate(n, seconds)}{flag}")
            bound = 1e6 / max(cpu["main"] + cpu["writer"], cpu["database"])
            print(f"      CPU per row: sink main thread {cpu['main']:.1f} us, writer thread "
                  f"{cpu['writer']:.1f} us, database backend {cpu['database']:.1f} us"
                  f" -> {bound:,.0f} rows/s on two idle cores")
    for method in ("copy", "executemany"):
        seconds = writer_only(db, n, method, batch)
        print(f"  writer alone (no bus), {method:<11} {_rate(n, seconds)}")


GENERATE = """
INSERT INTO decision_history (id, account, occurred_at, symbol, action, outcome, rationale,
    confidence_score, risk_check_result, strategy_id, trade_idea_id, gate_state,
    code_version, hash)
SELECT 'd' || g, 'paper-1', %(t0)s + g * interval '3 seconds',
    (%(symbols)s::text[])[1 + (abs(hashint4(g)) %% %(n_symbols)s)],
    ((%(actions)s::text[])[1 + (abs(hashint4(g + 7)) %% %(n_actions)s)])::decision_action,
    'needs_approval', 'RSI 38 below 40 near the swing low, no USD news',
    ((g %% 2000) / 20.0)::numeric(5,2), 'pass', 'gold-pullback-buy', 'i' || g, '{}',
    'bench', 'h' || g
FROM generate_series(1, %(rows)s) AS g
"""


def generate_decisions(db: Settings, rows: int) -> None:
    """Load `rows` decisions with the indexes dropped, then rebuild them (like a restore)."""
    started = time.perf_counter()
    with psycopg.connect(db.database_dsn(), autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'decision_history'"
            " AND indexname <> 'decision_history_pkey'").fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.execute("ALTER TABLE decision_history DROP CONSTRAINT decision_history_pkey")
        conn.execute(GENERATE, {"t0": T0, "symbols": list(SYMBOLS), "n_symbols": len(SYMBOLS),
                                "actions": list(ACTIONS), "n_actions": len(ACTIONS),
                                "rows": rows})
        loaded = time.perf_counter()
        conn.execute("ALTER TABLE decision_history ADD PRIMARY KEY (id, occurred_at)")
        for _, definition in indexes:
            conn.execute(definition)  # from pg_indexes of this database
        conn.execute("ANALYZE decision_history")
        size = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('decision_history'))").fetchone()
    print(f"  generated {rows:,} rows in {loaded - started:.1f} s, indexes "
          f"{time.perf_counter() - loaded:.1f} s, table + indexes {size[0] if size else '?'}")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


EXPLAIN = ("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) SELECT * FROM "
           "decision_history WHERE symbol = %s AND action = %s::decision_action "
           "ORDER BY occurred_at DESC, id DESC LIMIT 100")


def bench_query(db: Settings, rows: int, n: int) -> None:
    print(f"decision history: newest 100 by symbol and action, {rows:,} rows")
    generate_decisions(db, rows)
    rng = random.Random(3)
    actions = sorted(set(ACTIONS))
    with psycopg.connect(db.database_dsn()) as conn:
        for _ in range(50):  # warm-up (and psycopg prepares the statement)
            queries.decision_history(conn, symbol=rng.choice(SYMBOLS),
                                     action=rng.choice(actions))
        server, client, returned = [], [], []
        for _ in range(n):
            symbol, action = rng.choice(SYMBOLS), rng.choice(actions)
            plan = conn.execute(EXPLAIN, (symbol, action)).fetchone()
            server.append(plan[0][0]["Execution Time"] if plan else float("nan"))
            started = time.perf_counter()
            result = queries.decision_history(conn, symbol=symbol, action=action)
            client.append((time.perf_counter() - started) * 1000)
            returned.append(len(result))
        print(f"  symbol+action, {n} queries (rows returned: min {min(returned)}):")
        print(f"    in the database (EXPLAIN ANALYZE execution time)  p50 "
              f"{_pct(server, 50):6.3f} ms  p99 {_pct(server, 99):6.3f} ms"
              "  (target p99 <= 5 ms)")
        print(f"    client round trip (psycopg, 100 rows as dicts)    p50 "
              f"{_pct(client, 50):6.3f} ms  p99 {_pct(client, 99):6.3f} ms"
              f"  mean {statistics.fmean(client):.3f} ms")
        for label, kwargs in (("symbol only", {"symbol": "XAUUSD"}),
                              ("action only", {"action": "ai_halted"}), ("no filter", {})):
            times = []
            for _ in range(max(50, n // 10)):
                started = time.perf_counter()
                queries.decision_history(conn, **kwargs)
                times.append((time.perf_counter() - started) * 1000)
            print(f"  {label:<12} client round trip p50 {_pct(times, 50):6.3f} ms"
                  f"  p99 {_pct(times, 99):6.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000, help="sink max batch")
    parser.add_argument("--rows", type=int, default=10_000_000, help="decision_history rows")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    args = parser.parse_args()
    settings = Settings(AI_TRADER_ENV="test")  # type: ignore[call-arg]
    tune_process()  # as `ai-trader sinks` does
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} (the figures assume the 2 CPUs are otherwise idle)")
    print(f"bench_sinks: {os.cpu_count()} CPUs, Kafka {settings.kafka_bootstrap_servers}")
    started = time.perf_counter()
    with bench_database(settings) as db:
        if not args.skip_ingest:
            bench_ingest(settings, db, args.candles, args.batch)
        if not args.skip_query:
            bench_query(db, args.rows, args.queries)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
