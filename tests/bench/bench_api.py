"""`GET /v1/ai/history` with filters over a large decision history, through real HTTP.

    .venv/bin/python tests/bench/bench_api.py [--rows 2000000] [--requests 300] [--keep]

Builds a dedicated database (`ai_trader_bench_api`, migrated like production) and fills
`decision_history` server-side with `generate_series` (8 symbols, the 7 actions, one row
every 3 s back from now), then serves the API with `ai-trader api` (uvicorn, its own
process, logs on) and times requests from one keep-alive client, one at a time:
no filter, by symbol, by action, symbol + action, symbol + a one-day window, and the next
page through the cursor. Prints p50 / p99 per query and overall, with the row count and
the machine's cores. Target: p99 <= 10 ms at 10 million rows (`--rows 10000000`; the
default is smaller so a run takes about two minutes). The database is dropped at the end
unless `--keep` (a kept one with the same row count is reused).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from api.auth import hash_password  # noqa: E402
from sinks import queries  # noqa: E402
from sinks.migrate import migrate  # noqa: E402
from topics.bus import admin_client, ensure_topics  # noqa: E402
from topics.catalog import Catalog  # noqa: E402
from topics.settings import Settings  # noqa: E402

DB_NAME = "ai_trader_bench_api"
CHUNK = 1_000_000
PASSWORD = "bench password 1234"
SYMBOLS = ["XAUUSD", "EURUSD", "US30", "GBPUSD", "USDJPY", "BTCUSD", "NAS100", "GER40"]
ACTIONS = ["ai_proposed", "ai_auto_executed", "human_approved", "human_rejected",
           "risk_rejected", "ai_halted", "ai_resumed"]

FILL = """
INSERT INTO decision_history (id, account, occurred_at, symbol, action, outcome, rationale,
    confidence_score, risk_check_result, strategy_id, trade_idea_id, snapshot_ref,
    human_override, issuer, gate_state, code_version, hash)
SELECT md5(g::text), 'bench', %(now)s - g * interval '3 seconds',
       (%(symbols)s::text[])[1 + g %% 8],
       ((%(actions)s::text[])[1 + (g / 8) %% 7])::decision_action,
       'needs_approval',
       'Strategy matched: RSI cooled to 38 at support, no high-impact news within 15 minutes',
       50 + (g %% 50), CASE WHEN g %% 3 = 0 THEN 'fail:max_drawdown' ELSE 'pass' END,
       's-' || (g %% 5), md5((g / 2)::text), 'snap-' || g, g %% 7 = 0, 'bench', '{}', 'bench',
       md5(g::text)
FROM generate_series(%(first)s, %(last)s) AS g
"""


def _admin(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(settings.database_dsn().rsplit("/", 1)[0] + "/postgres",
                           autocommit=True)


def prepare(base: Settings, rows: int) -> Settings:
    """The bench database with `rows` decisions (reused when a kept one matches)."""
    dsn = base.database_dsn().rsplit("/", 1)[0] + "/" + DB_NAME
    settings = base.model_copy(update={"database_url": SecretStr(dsn)})
    with _admin(base) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (DB_NAME,)).fetchone()
        if exists:
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    have = conn.execute("SELECT count(*) FROM decision_history").fetchone()
            except psycopg.Error:
                have = None  # a run that stopped half-way: start again
            if have and have[0] == rows:
                print(f"reusing {DB_NAME} with {rows:,} rows", flush=True)
                return settings
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    migrate(settings)
    started = time.perf_counter()
    now = time.time()
    with psycopg.connect(dsn, autocommit=True) as conn:
        from datetime import UTC, datetime

        at = datetime.fromtimestamp(now, UTC)
        for first in range(1, rows + 1, CHUNK):
            last = min(rows, first + CHUNK - 1)
            conn.execute(FILL, {"now": at, "symbols": SYMBOLS, "actions": ACTIONS,
                                "first": first, "last": last})
            print(f"  {last:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        conn.execute("VACUUM ANALYZE decision_history")
    print(f"generated {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    return settings


def serve(settings: Settings, prefix: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`ai-trader api` on the bench database, in its own process."""
    env = {**os.environ, "DATABASE_URL": settings.database_dsn(), "AI_TRADER_ENV": "test",
           "AI_TRADER_TOPIC_PREFIX": prefix, "AI_TRADER_COOKIE_SECURE": "false",
           "AI_TRADER_API_HOST": "127.0.0.1", "AI_TRADER_API_PORT": str(port)}
    out = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", "api.cli", "api"], env=env,  # noqa: S603
                            stdout=out, stderr=subprocess.STDOUT)


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the API did not come up")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(client: httpx.Client, params: dict[str, Any], n: int) -> list[float]:
    """Latencies (ms) of `n` requests; a cursor query follows the first page's cursor."""
    cursor = None
    if params.pop("_next_page", False):
        first = client.get("/v1/ai/history", params=params)
        cursor = first.headers["x-next-cursor"]
    out = []
    for _ in range(n):
        q = {**params, "cursor": cursor} if cursor else params
        started = time.perf_counter()
        r = client.get("/v1/ai/history", params=q)
        out.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200 or not r.json():
            raise RuntimeError(f"{q}: {r.status_code} {r.text[:200]}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per query")
    parser.add_argument("--port", type=int, default=18_731)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    base = Settings(AI_TRADER_ENV="test")  # type: ignore[call-arg]
    print(f"bench_api: rows={args.rows:,} requests/query={args.requests} "
          f"cores={os.cpu_count()} python={platform.python_version()}", flush=True)
    settings = prepare(base, args.rows)
    with psycopg.connect(settings.database_dsn(), autocommit=True) as conn:
        email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
        queries.insert_user(conn, str(uuid.uuid4()), email, hash_password(PASSWORD))
        middle = conn.execute("SELECT occurred_at FROM decision_history ORDER BY occurred_at "
                              "DESC OFFSET %s LIMIT 1", (args.rows // 2,)).fetchone()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    catalog = Catalog(prefix)
    ensure_topics(base, catalog)
    url = f"http://127.0.0.1:{args.port}"
    log = Path(base.state_dir) / "logs" / "bench_api.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = serve(settings, prefix, args.port, log)
    try:
        wait_up(url, proc)
        with httpx.Client(base_url=url, timeout=30) as client:
            r = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            client.cookies.set("auth_token", r.cookies["auth_token"])
            day = middle[0] if middle else None
            cases: dict[str, dict[str, Any]] = {
                "no filter": {},
                "symbol": {"symbol": "XAUUSD"},
                "action": {"action": "risk_rejected"},
                "symbol+action": {"symbol": "US30", "action": "human_rejected"},
                "symbol+1 day": {"symbol": "EURUSD", "until": day.isoformat(),
                                 "since": (day.replace(hour=0, minute=0)).isoformat()}
                if day else {"symbol": "EURUSD"},
                "next page": {"symbol": "XAUUSD", "_next_page": True},
            }
            for params in cases.values():  # warm up: pool, prepared statements, caches
                run(client, dict(params), 30)
            everything: list[float] = []
            print(f"{'query':<16} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}", flush=True)
            for name, params in cases.items():
                lat = run(client, dict(params), args.requests)
                everything += lat
                print(f"{name:<16} {statistics.median(lat):8.2f} {percentile(lat, 0.99):8.2f} "
                      f"{max(lat):8.2f}", flush=True)
            p99 = percentile(everything, 0.99)
            print(f"{'all':<16} {statistics.median(everything):8.2f} {p99:8.2f} "
                  f"{max(everything):8.2f}   (limit=100, {len(everything)} requests)")
            print(f"target p99 <= 10 ms at 10M rows: {'met' if p99 <= 10 else 'NOT met'} "
                  f"here with {args.rows:,} rows")
    finally:
        proc.terminate()
        proc.wait(15)
        admin = admin_client(base)
        for fut in admin.delete_topics(list(catalog.physical_topics()),
                                       operation_timeout=30).values():
            fut.result()
        if not args.keep:
            with _admin(base) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(DB_NAME)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
