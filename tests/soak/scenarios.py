"""The soak scenarios. Each builds its own `Stack`, injects its faults while a replay of
synthetic candles runs, lets the pipeline catch up, does the accounting, and returns
one row of the summary table."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from tests.reliability.procs import REPO
from tests.soak.accounting import Books, audit, read_all, settle
from tests.soak.stack import (
    ACCOUNT,
    SOAK_RISK,
    SOAK_STRATEGY,
    SYMBOLS,
    Monitor,
    Stack,
    background,
)
from topics.bus import wait_for_bus
from topics.settings import Settings


@dataclass
class Row:
    """One line of the summary table, with the details printed under it."""

    scenario: str
    injections: str
    seconds: float
    processed: int
    lost: int
    duplicated: int
    max_lag: int
    peak_memory: int
    ok: bool
    details: list[str] = field(default_factory=list)


M1 = ("M1",)


def _books_row(name: str, injections: str, started: float, stack: Stack, monitor: Monitor,
               books: Books, extra_ok: bool = True, details: list[str] | None = None) -> Row:
    peaks = monitor.peak_rss()
    lines = list(details or [])
    lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in books.counts.items()))
    lines.append("lost: " + ", ".join(f"{k} {v}" for k, v in books.lost.items()))
    lines.append("duplicated: " + ", ".join(f"{k} {v}" for k, v in books.duplicated.items()))
    lines.append("redelivered copies (same record again, deduped downstream): "
                 + ", ".join(f"{k} {v}" for k, v in books.redelivered.items()))
    lines.append("max lag by group: " + ", ".join(
        f"{k} {v}" for k, v in monitor.max_lag_by_group().items()))
    lines.append("peak RSS: " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in peaks.items()))
    if stack.crash_restarts:  # restarted so that the books can still be balanced
        lines.append(f"PROBLEM: died by themselves: {stack.crash_restarts} (logs in "
                     f"{stack.root})")
    lines += [f"PROBLEM: {p}" for p in books.problems]
    ok = (books.total_lost == 0 and books.total_duplicated == 0 and not books.problems
          and extra_ok and not stack.crash_restarts)
    return Row(name, injections, time.monotonic() - started, stack.bars_sent,
               books.total_lost, books.total_duplicated, monitor.max_lag(),
               max(peaks.values(), default=0), ok, lines)


def _wait_seed(stack: Stack, timeout: float = 120.0) -> None:
    """The worker seeds the default config and shipped strategies on its first start;
    configuring before that would let the seed override the soak's settings."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = read_all(stack, ("control.replies.v1",), quiet=1.0, timeout=10)
        if len(replies["control.replies.v1"]) >= 4:
            return
        stack.supervise()
    raise AssertionError("the worker did not seed within the time allowed")


def _prepare(stack: Stack) -> None:
    _wait_seed(stack)
    stack.configure()
    stack.send_bars(16)  # indicators warm up (RSI 14, ATR 14)


# ------------------------------------------------------------------ kill -9 everything


def kill9(settings: Settings, seconds: float, kills: int, rate: float, seed: int,
          keep: bool) -> Row:
    """kill -9 of worker, sinks, broker and API at random moments of a long replay."""
    rng = random.Random(seed)
    started = time.monotonic()
    with Stack(settings, "kill9", ("worker", "sinks", "broker", "api"), keep) as stack:
        _prepare(stack)
        monitor = Monitor(stack).start()
        killed: dict[str, int] = {}
        order: list[str] = []
        api_after_restart: list[int] = []
        with background(stack.replay, rate, seconds, SYMBOLS, M1):
            t0 = time.monotonic()
            for k in range(kills):
                due = t0 + (k + rng.uniform(0.3, 1.0)) * seconds / max(kills, 1)
                while time.monotonic() < due:
                    stack.supervise()
                    time.sleep(0.2)
                if not order:  # every process in turn, in a shuffled order each round
                    order = rng.sample(sorted(stack.services), len(stack.services))
                name = order.pop()
                stack.services[name].kill9()
                killed[name] = killed.get(name, 0) + 1
                time.sleep(rng.uniform(0.5, 3.0))
                stack.services[name].start()
                if name == "api":
                    api_after_restart.append(_api_status(stack))
        replayed = time.monotonic()
        settle(stack)
        settled = time.monotonic()
        monitor.stop()
        books = audit(stack)
        timing = (f"timing: setup {t0 - started:.0f} s, replay {replayed - t0:.0f} s, "
                  f"catch-up {settled - replayed:.0f} s, accounting "
                  f"{time.monotonic() - settled:.0f} s")
        injections = f"{kills} kill -9 (" + ", ".join(f"{k} {v}" for k, v in
                                                       sorted(killed.items())) + ")"
        api_ok = all(code == 200 for code in api_after_restart)
        details = [f"API after each restart: {api_after_restart or 'not killed'}", timing]
        return _books_row("kill -9 each process", injections, started, stack, monitor,
                          books, api_ok, details)


def _api_status(stack: Stack, timeout: float = 60.0) -> int:
    """The API answers the decision history again after a restart (status code)."""
    deadline = time.monotonic() + timeout
    code = 0
    while time.monotonic() < deadline:
        try:
            with stack.http() as client:
                code = client.get("/v1/ai/history", params={"limit": 5}).status_code
            if code == 200:
                return code
        except Exception:  # noqa: BLE001, S110 - not listening yet
            pass
        time.sleep(0.5)
    return code


# ------------------------------------------------------------------ Kafka stopped


class PrivateKafka:
    """A second single-node Kafka on other ports, from a temporary state directory, so a
    soak can stop and start *its* broker while others use the shared one."""

    def __init__(self, port: int = 29092) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ai-trader-soak-kafka-"))
        (self.root / "kafka").mkdir()
        (self.root / "kafka" / "libs").symlink_to(REPO / ".state" / "kafka" / "libs")
        self.env = {**os.environ, "AI_TRADER_STATE_DIR": str(self.root),
                    "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1),
                    "KAFKA_CDS": "0", "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m"}
        self.env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        self.bootstrap = f"127.0.0.1:{port}"

    def run(self, action: str) -> None:
        subprocess.run(["bash", str(REPO / "infra" / "kafka.sh"), action],  # noqa: S603, S607
                       env=self.env, check=True, timeout=180, capture_output=True)

    def remove(self) -> None:
        try:
            self.run("stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _stack_kafka(action: str) -> None:
    subprocess.run(["bash", str(REPO / "infra" / "kafka.sh"), action],  # noqa: S603, S607
                   check=True, timeout=180, capture_output=True)


def kafka_restart(settings: Settings, seconds: float, outage: float, rate: float,
                  mode: str, keep: bool) -> Row:
    """The Kafka broker stopped mid-run for `outage` seconds, then started again."""
    private = PrivateKafka() if mode == "private" else None
    started = time.monotonic()
    try:
        if private is not None:
            private.run("start")
            private.run("wait")
            settings = settings.model_copy(update={"kafka_bootstrap_servers": private.bootstrap})
        kafka = private.run if private is not None else _stack_kafka
        with Stack(settings, "kafka", ("worker", "sinks", "broker", "api"), keep) as stack:
            _prepare(stack)
            monitor = Monitor(stack).start()
            with background(stack.replay, rate, seconds, SYMBOLS, M1):
                time.sleep(seconds / 3)
                kafka("stop")
                down_at = time.monotonic()
                time.sleep(outage)
                kafka("start")
                kafka("wait")
                wait_for_bus(settings, 120)
                back = time.monotonic() - down_at
                while time.monotonic() - started < seconds:
                    stack.supervise()
                    time.sleep(0.5)
            settle(stack, 300)
            monitor.stop()
            books = audit(stack)
            where = "a private broker" if private else "the stack's broker"
            return _books_row("Kafka broker restarted", f"1 stop/start of {where} "
                              f"({back:.0f} s down)", started, stack, monitor, books)
    finally:
        if private is not None:
            private.remove()


# ------------------------------------------------------------------ database away


def _set_connections(stack: Stack, allowed: bool) -> None:
    admin = stack.settings.database_dsn().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(stack.db_name), sql.SQL("true" if allowed else "false")))
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (stack.db_name,))


def _probe_api(stack: Stack, path: str, seen: list[tuple[float, int, str, float]],
               stop: threading.Event) -> None:
    """Ask the API for `path` every 0.5 s: (when, status, error code, seconds)."""
    with stack.http(timeout=PROBE_TIMEOUT) as client:
        while not stop.is_set():
            t = time.monotonic()
            try:
                r = client.get(path)
                body = r.json() if r.headers.get("content-type", "").startswith(
                    "application/json") else {}
                code = body.get("error", {}).get("code", "") if isinstance(body, dict) else ""
                seen.append((t, r.status_code, code, time.monotonic() - t))
            except Exception as exc:  # noqa: BLE001 - a hang or a broken answer is a finding
                seen.append((t, -1, type(exc).__name__, time.monotonic() - t))
            stop.wait(0.5)


#: How long the probe waits for an answer: a "hang" is an answer slower than
#: HANG_SECONDS (the API's own waits for the gate are 10 s, so 15 s is generous).
PROBE_TIMEOUT = 90.0
HANG_SECONDS = 15.0


def db_outage(settings: Settings, seconds: float, outage: float, rate: float,
              keep: bool) -> Row:
    """The database refuses connections for `outage` s (ALLOW_CONNECTIONS false, sessions
    terminated) while candles flow: the sinks keep their batch and catch up; the API
    answers with the error envelope, never hangs, and recovers."""
    started = time.monotonic()
    with Stack(settings, "db", ("worker", "sinks", "broker", "api"), keep) as stack:
        _prepare(stack)
        monitor = Monitor(stack).start()
        seen: list[tuple[float, int, str, float]] = []
        with (background(stack.replay, rate, seconds, SYMBOLS, M1),
              background(_probe_api, stack, "/v1/ai/history?limit=20", seen),
              background(_probe_api, stack, "/v1/account", seen),
              background(_probe_api, stack, "/v1/health", seen)):
            time.sleep(min(20.0, seconds / 4))
            _set_connections(stack, False)
            down = (time.monotonic(), 0.0)
            time.sleep(outage)
            _set_connections(stack, True)
            down = (down[0], time.monotonic())
            # at least 40 s after the database is back: the API must answer again
            while time.monotonic() < max(started + seconds, down[1] + 40):
                stack.supervise()
                time.sleep(0.5)
        settle(stack, 300)
        monitor.stop()
        books = audit(stack)
        # requests that were waiting for an answer at some moment of the outage
        during = [s for s in seen if s[0] < down[1] - 1 and s[0] + s[3] > down[0] + 1]
        after = [s for s in seen if s[0] > down[1] + 15]
        slowest = max((s[3] for s in during), default=0.0)
        # an answer from a connection that was still open is fine; any other must be 503
        envelope_ok = bool(during) and all(s[1] == 200 or (s[1] == 503
                                                           and s[2] == "UNAVAILABLE")
                                           for s in during)
        no_hang = slowest < HANG_SECONDS
        recovered = bool(after) and after[-1][1] == 200
        answers = sorted(s[3] for s in during)
        details = [f"API during the outage: {_tally(during)} in {len(during)} requests, "
                   f"answer time median {statistics.median(answers) if answers else 0:.2f} s,"
                   f" slowest {slowest:.2f} s; afterwards: {_tally(after)}",
                   f"error envelope: {'yes' if envelope_ok else 'NO'}, no hang (< "
                   f"{HANG_SECONDS:.0f} s): {'yes' if no_hang else 'NO'}, recovered: "
                   f"{'yes' if recovered else 'NO'}"]
        return _books_row("database unavailable", f"{outage:.0f} s without connections",
                          started, stack, monitor, books, envelope_ok and no_hang and recovered,
                          details)


def _tally(samples: list[tuple[float, int, str, float]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, status, code, _ in samples:
        key = f"{status} {code}".strip()
        out[key] = out.get(key, 0) + 1
    return out


# ------------------------------------------------------------------ MT5 misbehaving


def mt5_faults(settings: Settings, seconds: float, rate: float, seed: int, keep: bool) -> Row:
    """The MT5 terminal (tests/fakes/mt5.py) drops, refuses to reconnect, rejects,
    requotes and times out (before and after executing) under the real worker's orders;
    the executor loop also crashes now and then and restarts from its ledger."""
    from connectors.brokers.mt5.client import Mt5Session
    from connectors.brokers.mt5.config import Mt5Config
    from connectors.brokers.mt5.execution import Mt5Broker
    from connectors.core.backoff import Backoff
    from connectors.core.clock import utc_now
    from connectors.orders.ledger import compact_id
    from connectors.service import broker_loop
    from tests.fakes.mt5 import TRADE_RETCODE_NO_MONEY, FakeMetaTrader5

    rng = random.Random(seed)
    started = time.monotonic()
    with Stack(settings, "mt5", ("worker", "sinks"), keep) as stack:
        _prepare(stack)
        _log_to(stack.root / "mt5.log")
        fake = FakeMetaTrader5(clock=utc_now, balance=10_000_000.0)
        state_dir = stack.root / "mt5"
        state_dir.mkdir()
        mt5_settings = settings.model_copy(update={
            "topic_prefix": stack.catalog.prefix, "account": ACCOUNT, "broker": "mt5",
            "state_dir": state_dir, "account_snapshot_interval_seconds": 2.0,
            "command_hmac_key": SecretStr(stack.key.decode())})
        config = Mt5Config(account=ACCOUNT, login=5551234, password=SecretStr("s3cret-pass"),
                           magic=mt5_settings.mt5_magic)
        faults: dict[str, int] = {}
        crashes = 0

        def loop_thread(stop: threading.Event) -> None:
            nonlocal crashes
            while not stop.is_set():
                session = Mt5Session(fake, config, sleep=lambda s: None,
                                     backoff=Backoff(jitter=0.0, cap=1.0))
                loop = broker_loop(mt5_settings, stack.catalog,
                                   Mt5Broker(session, config, utc_now), utc_now)
                loop.start()
                until = time.monotonic() + rng.uniform(5, 15)
                while not stop.is_set() and time.monotonic() < until:
                    loop.step()
                    loop._retry_at = min(loop._retry_at, time.monotonic() + 1.0)  # noqa: SLF001
                loop.consumer.close()  # like a crash: nothing more is committed
                loop.executor.ledger.close()
                crashes += 1

        monitor = Monitor(stack).start()
        with (background(loop_thread),
              background(stack.replay, rate, seconds, SYMBOLS, M1) as feed):
            while not feed.is_set() and time.monotonic() - started < seconds + 30:
                time.sleep(rng.uniform(0.5, 2.0))
                fault = rng.choice(["requote", "reject", "no_money", "timeout_after",
                                    "timeout_before", "drop", "refuse_reconnect"])
                faults[fault] = faults.get(fault, 0) + 1
                if fault == "reject":
                    fake.script(("reject", 10006))
                elif fault == "no_money":
                    fake.script(("reject", TRADE_RETCODE_NO_MONEY))
                elif fault in ("requote", "timeout_after", "timeout_before"):
                    fake.script(fault)
                elif fault == "drop":
                    fake.drop()
                else:
                    fake.drop()
                    fake.fail_initialize(3)
                if time.monotonic() - started > seconds:
                    break
        # the executor gets a last, fault-free run to drain what is left
        fake.send_script.clear()
        fake.fail_initialize(0)
        with background(loop_thread):
            settle(stack, 240)
            time.sleep(5)
        monitor.stop()
        books = audit(stack)
        requests = read_all(stack, ("orders.requests.v1",))["orders.requests.v1"]
        at_broker = {r["request_id"]: fake.orders_sent_with(compact_id(r["request_id"]))
                     for r in requests}
        books.duplicated["orders at the MT5 server"] = sum(1 for n in at_broker.values()
                                                           if n > 1)
        total = sum(faults.values())
        details = [f"faults: {faults}; executor loop crashes: {crashes}; orders executed by "
                   f"the server: {sum(at_broker.values())} for {len(at_broker)} requests"]
        return _books_row("MT5 terminal misbehaving", f"{total} faults + {crashes} crashes",
                          started, stack, monitor, books, details=details)


def _log_to(path: Path) -> None:
    """The in-process executor's log lines go to a file, like a service's."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


# ------------------------------------------------------------------ the same replay twice


def _decisions_of(stack: Stack) -> dict[str, dict[str, Any]]:
    out = {}
    for d in read_all(stack, ("decisions.log.v1",))["decisions.log.v1"]:
        if d["trade_idea_id"]:
            out[d["decision_id"]] = {k: v for k, v in d.items() if k not in ("hash",
                                                                              "prev_hash")}
    return out


def _compare(first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]
             ) -> tuple[list[str], list[str]]:
    differing = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
    fields = sorted({f for k in differing if k in first and k in second
                     for f in first[k] if first[k][f] != second[k].get(f)})
    return differing, fields


def replay_twice(settings: Settings, bars: int, keep: bool) -> Row:
    """The same candles, account and commands into two fresh deployments.

    Phase 1 replays one symbol: the gate's input order is then the bars' order, and the
    idea decisions must be equal field for field (hash links aside: they also chain the
    control decisions, whose times are the commands' wall-clock issue times). Phase 2
    replays three symbols at once: their ideas come from different partitions and reach
    the gate in whatever interleaving the market agent happened to fetch, so decisions
    that depend on each other (caps, the gate state they record) may differ between the
    runs; reported, not failed. Every decision of run 1 must replay exactly from its
    bundle (`ai-trader replay --verify --from-topics`)."""
    from tests import factories

    started = time.monotonic()
    phases: list[list[dict[str, dict[str, Any]]]] = [[], []]
    monitors: list[Monitor] = []
    bars_sent = 0
    verify = ""
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; the same for both runs
    for n in (1, 2):
        with Stack(settings, f"replay{n}", ("worker",), keep, start_time=start) as stack:
            _wait_seed(stack)
            stack.configure()
            assert stack.producer is not None
            stack.producer.send("account.state.v1", ACCOUNT, factories.account_state(
                account=ACCOUNT, captured_at=stack.start_time, positions=[],
                open_pl=Decimal("0.00")))
            stack.producer.flush()
            monitor = Monitor(stack).start()
            stack.send_bars(bars, symbols=("XAUUSD",))
            settle(stack, 240)
            phases[0].append(_decisions_of(stack))
            # room for every idea of phase 2: their order then shows in the gate state
            stack.configure({**SOAK_RISK, "max_concurrent_trades": 1000},
                            {**SOAK_STRATEGY, "version": 2, "risk_caps": {
                                **SOAK_STRATEGY["risk_caps"], "max_concurrent_positions": 100}})
            stack.send_bars(max(bars // 2, 20), symbols=("EURUSD", "US30"))
            settle(stack, 240)
            everything = _decisions_of(stack)
            phases[1].append({k: v for k, v in everything.items() if k not in phases[0][-1]})
            monitor.stop()
            monitors.append(monitor)
            bars_sent += stack.bars_sent
            if n == 1:
                done = subprocess.run(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "api.cli", "replay", "--verify", "--from-topics",
                     "--json", "--no-progress"], env=stack.services["worker"].env,
                    capture_output=True, text=True, timeout=300, check=False)
                verify = done.stdout.strip()
    (one_a, one_b), (many_a, many_b) = phases
    differing, fields = _compare(one_a, one_b)
    many_diff, many_fields = _compare(many_a, many_b)
    try:
        report = json.loads(verify)
        verified = f"{report.get('verified')} verified, {report.get('differences')} differences"
        replay_ok = report.get("differences") == 0
    except ValueError:
        verified, replay_ok = f"replay --verify said: {verify[:200]}", False
    details = [f"one symbol: idea decisions run 1 {len(one_a)}, run 2 {len(one_b)}, "
               f"differing {len(differing)} (fields: {fields or '-'})",
               f"two symbols at once: run 1 {len(many_a)}, run 2 {len(many_b)}, differing "
               f"{len(many_diff)} (fields: {many_fields or '-'}) - ideas of different "
               "partitions reach the gate in a different order (not a failure, see the docs)",
               f"ai-trader replay --verify --from-topics on run 1: {verified}"]
    peak = max((max(m.peak_rss().values(), default=0) for m in monitors), default=0)
    ok = not differing and bool(one_a) and replay_ok
    missing = len(set(one_a) ^ set(one_b))
    return Row("same replay twice", "2 fresh deployments", time.monotonic() - started,
               bars_sent, missing, 0, max(m.max_lag() for m in monitors), peak, ok, details)


# ------------------------------------------------------------------ load


def load(settings: Settings, seconds: float, symbols: int, timeframes: tuple[str, ...],
         keep: bool) -> Row:
    """Sustained load, 10x the blueprint's highest rate: `symbols` symbols x `timeframes`
    every second (one closed bar each), with the whole pipeline running; lag, memory and
    the decision-history query latency (blueprint target < 200 ms) measured meanwhile."""
    names = tuple(list(SYMBOLS) + [f"SYN{i:02d}USD" for i in range(symbols - len(SYMBOLS))])
    started = time.monotonic()
    with Stack(settings, "load", ("worker", "sinks", "broker", "api"), keep) as stack:
        _prepare(stack)
        monitor = Monitor(stack, every=2.0).start()
        latencies: list[float] = []
        errors = 0

        def query(stop: threading.Event) -> None:
            nonlocal errors
            with stack.http() as client:
                while not stop.is_set():
                    t = time.perf_counter()
                    try:
                        r = client.get("/v1/ai/history", params={"symbol": "XAUUSD",
                                                                  "limit": 100})
                        if r.status_code == 200:
                            latencies.append(time.perf_counter() - t)
                        else:
                            errors += 1
                    except Exception:  # noqa: BLE001
                        errors += 1
                    stop.wait(0.5)

        with background(stack.replay, 1.0, seconds, names, timeframes), background(query):
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                stack.supervise()
                time.sleep(1.0)
        settle(stack, 300)
        monitor.stop()
        books = audit(stack)
        latencies.sort()
        p50 = statistics.median(latencies) if latencies else float("nan")
        p99 = latencies[int(len(latencies) * 0.99) - 1] if len(latencies) >= 2 else p50
        trends = {name: monitor.rss_trend(name) for name in stack.services}
        growth = {n: (b - a) / a * 100 if a else 0.0 for n, (a, b) in trends.items()}
        details = [
            f"rate: {len(names)} symbols x {len(timeframes)} timeframes = "
            f"{len(names) * len(timeframes)} bars/s for {seconds:.0f} s",
            f"decision-history query while ingesting: {len(latencies)} answered, p50 "
            f"{p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target < 200 ms), {errors} errors",
            "RSS first third -> last third: " + ", ".join(
                f"{n} {a / 2**20:.0f} -> {b / 2**20:.0f} MiB ({growth[n]:+.0f}%)"
                for n, (a, b) in trends.items()),
        ]
        under_target = bool(latencies) and p99 < 0.200
        return _books_row("load 10x", f"{len(names) * len(timeframes)} bars/s", started,
                          stack, monitor, books, under_target, details)


def scenario_names() -> tuple[str, ...]:
    return ("kill9", "kafka", "db", "mt5", "replay", "load")


def unique_suffix() -> str:
    return uuid.uuid4().hex[:6]
