"""One soak deployment: its own topics, database, processes, and the instruments on them.

A `Stack` creates a uuid-prefixed set of topics and a fresh database (migrated), runs
`ai-trader worker | sinks | broker | api` as subprocesses from a temporary directory,
and offers what the scenarios need: a candle replay that only moves forward, signed
commands, a supervisor that restarts a process that died by itself, and a monitor that
samples consumer lag and the resident memory (/proc) of every process.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import OffsetSpec
from psycopg import sql

from api.auth import issue_token
from sinks import queries
from sinks.migrate import migrate
from tests.reliability.procs import Service, service_env
from topics.bus import BusConsumer, BusProducer, admin_client, consumer_config, ensure_topics
from topics.catalog import Catalog
from topics.commands import new_command
from topics.settings import Settings

ACCOUNT = "soak-1"
ISSUER = "soak@example.com"
SYMBOLS = ("XAUUSD", "EURUSD", "US30")
BASE_PRICE = {"XAUUSD": 2380.0, "EURUSD": 1.085, "US30": 39000.0}

#: Buys any closed M1 bar of the three symbols once RSI and ATR exist; no news rule (the
#: replay runs ahead of the wall clock, the calendar feed does not).
SOAK_STRATEGY: dict[str, Any] = {
    "id": "5a0c0000-0000-4000-8000-00000000000a",
    "name": "Soak any bar",
    "version": 1,
    "is_active": True,
    "allowed_symbols": list(SYMBOLS),
    "timeframes": ["M1"],
    "session_windows": [
        {"start": "00:00Z", "end": "12:00Z", "days": ["Mon", "Tue", "Wed", "Thu", "Fri",
                                                      "Sat", "Sun"]},
        {"start": "12:00Z", "end": "00:00Z", "days": ["Mon", "Tue", "Wed", "Thu", "Fri",
                                                      "Sat", "Sun"]},
    ],
    "entry_conditions": {"direction": "buy", "rsi_above": 1},
    "exit_rules": {"stop_loss": {"type": "atr", "multiple": 1.0}, "take_profit_rr": [1],
                   "time_limit_minutes": 30},
    "forbidden_conditions": {"block_high_impact_news_minutes": 0,
                             "blocked_symbols_during_news": []},
    "risk_caps": {"max_lot_size": 1.0, "max_concurrent_positions": 100, "lot_size": 0.01},
    "rr_expectation": 1.0,
}
#: Autonomous, every idea judged on its own merits; the freshness ages are huge because
#: the replayed bars run ahead of the wall clock the broker's account states carry. The
#: paper broker stamps positions with bar times, so the gate keeps counting a closed
#: position until the wall clock passes its (future) open time: the caps are high enough
#: for about a hundred fills before the rest is rejected for concurrency.
SOAK_RISK: dict[str, Any] = {
    "ai_trading_enabled": True, "min_confidence_threshold": "0", "max_lot_size": "1.00",
    "max_concurrent_trades": 120, "daily_profit_target": None,
    "max_drawdown_amount": "1000000.00", "halt_on_drawdown": True,
    "watchlist": list(SYMBOLS), "account_max_age_minutes": 10_000_000,
    "calendar_max_age_minutes": 10_000_000,
}


#: Topics written on a timer (the broker's account states and health).
PERIODIC = frozenset({"account.state.v1", "feeds.health.v1"})
#: librdkafka keeps quiet about a broker that is away on purpose (the Kafka scenario).
QUIET: dict[str, Any] = {"log_level": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sample:
    """One monitor reading."""

    at: float
    lag: dict[str, int]
    rss: dict[str, int]


@dataclass
class Monitor:
    """Samples consumer-group lag and process memory in a thread."""

    stack: Stack
    every: float = 2.0
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._run, name="soak-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                lag = self.stack.lags()
            except Exception:  # noqa: BLE001 - the bus may be the thing being restarted
                lag = {}
                self.errors += 1
            rss = {name: svc.rss() for name, svc in self.stack.services.items()}
            self.samples.append(Sample(time.monotonic(), lag, rss))
            self._stop.wait(self.every)

    def max_lag(self) -> int:
        return max((sum(s.lag.values()) for s in self.samples), default=0)

    def max_lag_by_group(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.samples:
            for group, lag in s.lag.items():
                out[group] = max(out.get(group, 0), lag)
        return out

    def peak_rss(self) -> dict[str, int]:
        return {name: svc.peak_rss for name, svc in self.stack.services.items()}

    def rss_trend(self, name: str) -> tuple[int, int]:
        """Median RSS of a process over the first and the last third of the samples."""
        values = [s.rss.get(name, 0) for s in self.samples if s.rss.get(name, 0) > 0]
        if len(values) < 6:
            return (values[0], values[-1]) if values else (0, 0)
        third = len(values) // 3
        first, last = sorted(values[:third]), sorted(values[-third:])
        return first[len(first) // 2], last[len(last) // 2]


class Stack:
    """See the module docstring. Use as a context manager (everything is removed after)."""

    def __init__(self, settings: Settings, name: str, processes: tuple[str, ...],
                 keep: bool = False, extra_env: dict[str, str] | None = None,
                 start_time: datetime | None = None) -> None:
        self.settings = settings
        self.name = name
        self.keep = keep
        self.catalog = Catalog(prefix=f"soak{uuid.uuid4().hex[:10]}.")
        self.db_name = f"soak_{uuid.uuid4().hex[:10]}"
        self.dsn = settings.database_dsn().rsplit("/", 1)[0] + "/" + self.db_name
        self.db = settings.model_copy(update={"database_url": self._secret(self.dsn)})
        self.key = secrets.token_hex(24).encode()
        self.jwt = secrets.token_hex(32)
        self.root = Path(tempfile.mkdtemp(prefix=f"ai-trader-soak-{name}-"))
        self.api_port = free_port()
        self.processes = processes
        self.extra_env = extra_env or {}
        self.services: dict[str, Service] = {}
        self.crash_restarts: dict[str, int] = {}
        self.producer: BusProducer | None = None
        self.bars_sent = 0
        self.bar_index: dict[str, int] = {}
        # Bars start ten minutes ago and then run ahead of the wall clock (a bar per
        # round): the broker's orders must not expire (expires_at = idea time + 2 min).
        self.start_time = start_time or (
            datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10))
        self.token = ""

    @staticmethod
    def _secret(value: str) -> Any:
        from pydantic import SecretStr

        return SecretStr(value)

    # ---- life cycle

    def __enter__(self) -> Stack:
        ensure_topics(self.settings, self.catalog)
        self._create_database()
        migrate(self.db)
        self._user()
        self.producer = BusProducer(self.settings, self.catalog, **QUIET)
        for name in self.processes:
            self.services[name] = self._service(name)
            self.services[name].start()
        return self

    def __exit__(self, *exc: object) -> None:
        for svc in self.services.values():
            svc.stop(20)
        if self.producer is not None:
            try:
                self.producer.flush(10)
            except Exception:  # noqa: BLE001, S110 - the bus may be down at the end of a failure
                pass
        if self.keep:
            print(f"  kept: topics {self.catalog.prefix}*, database {self.db_name}, "
                  f"logs {self.root}")
            return
        # A failed scenario or a process that died by itself: its logs are the evidence.
        keep_logs = exc[0] is not None or bool(self.crash_restarts)
        if keep_logs:
            print(f"  logs kept in {self.root}")
        try:
            admin = admin_client(self.settings)
            for fut in admin.delete_topics(list(self.catalog.physical_topics()),
                                           operation_timeout=30).values():
                try:
                    fut.result()
                except Exception:  # noqa: BLE001, S110 - already gone
                    pass
            self._delete_changelogs(admin)
            del admin
        finally:
            self._drop_database()
            if not keep_logs:
                shutil.rmtree(self.root, ignore_errors=True)

    def _delete_changelogs(self, admin: Any) -> None:
        names = [t for t in admin.list_topics(timeout=10).topics
                 if t.startswith(self.catalog.prefix)]
        if names:
            for fut in admin.delete_topics(names, operation_timeout=30).values():
                try:
                    fut.result()
                except Exception:  # noqa: BLE001, S110
                    pass

    def _admin_dsn(self) -> str:
        return self.settings.database_dsn().rsplit("/", 1)[0] + "/postgres"

    def _create_database(self) -> None:
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))

    def _drop_database(self) -> None:
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                sql.Identifier(self.db_name)))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(self.db_name)))

    def _user(self) -> None:
        from api.auth import hash_password

        user_id, email = str(uuid.uuid4()), f"soak-{uuid.uuid4().hex[:6]}@example.com"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            queries.insert_user(conn, user_id, email, hash_password(secrets.token_hex(8)))
        self.token, _ = issue_token(self.jwt.encode(), user_id, email, timedelta(hours=6))

    def _service(self, name: str) -> Service:
        workdir = self.root / name
        env = service_env(self.settings, self.catalog, ACCOUNT, self.key, workdir, self.dsn,
                          JWT_SECRET=self.jwt, AI_TRADER_COOKIE_SECURE="false",
                          MARKET_TIMEFRAMES="M1", PAPER_INITIAL_BALANCE="100000000",
                          ACCOUNT_SNAPSHOT_INTERVAL_SECONDS="2", LOG_LEVEL="INFO",
                          **self.extra_env)
        args = {"worker": ["worker"], "sinks": ["sinks", "--metrics-port", "0"],
                "broker": ["broker"],
                "api": ["api", "--host", "127.0.0.1", "--port", str(self.api_port)]}[name]
        return Service(name, args, env, workdir)

    def supervise(self) -> None:
        """Restart a process that died by itself (what `ai-trader run` does)."""
        for name, svc in self.services.items():
            if not svc.alive():
                self.crash_restarts[name] = self.crash_restarts.get(name, 0) + 1
                svc.start()

    # ---- commands and input

    def command(self, kind: str, **kw: Any) -> dict[str, Any]:
        assert self.producer is not None
        cmd = new_command(kind, ACCOUNT, ISSUER, self.key, **kw)
        self.producer.send("gate.inbox.v1", ACCOUNT, {"account": ACCOUNT, "idea": None,
                                                      "bundle": None, "command": cmd})
        self.producer.flush()
        return cmd

    def reply(self, command_id: str, timeout: float = 120.0) -> dict[str, Any]:
        with BusConsumer(self.settings, self.catalog, ["control.replies.v1"],
                         group_id=f"{self.catalog.prefix}reply-{uuid.uuid4().hex}",
                         **QUIET) as c:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for r in c.poll(500, 0.5):
                    if r.value["command_id"] == command_id:
                        return r.value
                self.supervise()
        raise AssertionError(f"no reply to {command_id} within {timeout:.0f} s")

    def configure(self, risk: dict[str, Any] | None = None,
                  strategy: dict[str, Any] | None = None) -> None:
        """The soak strategy and risk config, applied by the gate (waits for the replies)."""
        for cmd in (self.command("put_strategy", strategy_id=(strategy or SOAK_STRATEGY)["id"],
                                 payload={"definition": strategy or SOAK_STRATEGY}),
                    self.command("set_risk_config", payload=risk or SOAK_RISK)):
            reply = self.reply(cmd["command_id"])
            if reply["status"] != "accepted":
                raise AssertionError(f"{cmd['kind']} refused: {reply['reason']}")

    def bar(self, symbol: str, timeframe: str = "M1") -> dict[str, Any]:
        """The next bar of a symbol: a seeded walk with a slow cycle (RSI moves)."""
        key = f"{symbol}|{timeframe}"
        i = self.bar_index.get(key, 0)
        self.bar_index[key] = i + 1
        step = {"M1": 1, "M5": 5, "M15": 15, "H1": 60}[timeframe]
        base = BASE_PRICE.get(symbol, 100.0 + (hash(symbol) % 900))
        wave = ((i * 7919) % 97) / 97 - 0.5
        price = base * (1 + 0.002 * wave + 0.0005 * ((i // 40) % 5))
        spread = base * 0.0001
        return {"symbol": symbol, "timeframe": timeframe,
                "open_time": self.start_time + timedelta(minutes=i * step),
                "open": price, "high": price * 1.0008, "low": price * 0.9992,
                "close": price * (1.0003 if i % 3 else 0.9997), "volume": 100 + i % 50,
                "source": "soak", "spread": spread, "closed": True}

    def send_bars(self, n: int, symbols: tuple[str, ...] = SYMBOLS,
                  timeframes: tuple[str, ...] = ("M1",)) -> None:
        assert self.producer is not None
        for _ in range(n):
            for symbol in symbols:
                for tf in timeframes:
                    self.producer.send("market.candles.v1", symbol, self.bar(symbol, tf))
                    self.bars_sent += 1
        self.producer.flush(60)

    def replay(self, rate: float, seconds: float, symbols: tuple[str, ...],
               timeframes: tuple[str, ...], stop: threading.Event) -> None:
        """`rate` rounds of bars per second (one bar per symbol and timeframe per round)
        for `seconds`, or until `stop` is set."""
        started = time.monotonic()
        rounds = 0
        while not stop.is_set() and time.monotonic() - started < seconds:
            try:
                self.send_bars(1, symbols, timeframes)
            except Exception:  # noqa: BLE001 - the bus may be down: try again
                time.sleep(0.5)
                continue
            rounds += 1
            due = started + rounds / rate
            delay = due - time.monotonic()
            if delay > 0:
                stop.wait(delay)

    # ---- measuring

    def lags(self, periodic: bool = True) -> dict[str, int]:
        """Records behind per consumer group: the worker (faust), the sinks, the broker.

        `periodic=False` leaves out the topics the broker writes every few seconds
        whatever happens (account states, feed health): what "caught up" waits for."""
        groups = {"worker": f"{self.catalog.prefix}ai-trader-streams",
                  "sinks": f"{self.catalog.prefix}ai-trader-sinks",
                  "broker": f"broker-{ACCOUNT}"}
        topics = {"worker": ("market.candles.v1", "gate.inbox.v1", "account.state.v1",
                             "orders.results.v1"),
                  "sinks": tuple(spec.name for spec in self.catalog),
                  "broker": ("orders.requests.v1", "broker.commands.v1", "decisions.log.v1")}
        if not periodic:
            topics = {who: tuple(t for t in names if t not in PERIODIC)
                      for who, names in topics.items()}
        out = {}
        admin = admin_client(self.settings)
        metadata = admin.list_topics(timeout=5).topics
        for who, group in groups.items():
            if who not in self.services:
                continue
            parts = [TopicPartition(self.catalog.name(t), p) for t in topics[who]
                     for p in metadata[self.catalog.name(t)].partitions]
            consumer = Consumer(consumer_config(self.settings, group, **QUIET))
            try:
                committed = consumer.committed(parts, timeout=5)
            finally:
                consumer.close()
            highs = admin.list_offsets({tp: OffsetSpec.latest() for tp in parts},
                                       request_timeout=5)
            high = {(tp.topic, tp.partition): f.result().offset for tp, f in highs.items()}
            out[who] = sum(max(0, high[(tp.topic, tp.partition)] - max(tp.offset, 0))
                           for tp in committed)
        return out

    def http(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=timeout,
                            headers={"Cookie": f"auth_token={self.token}"})


@contextmanager
def background(target: Any, *args: Any) -> Iterator[threading.Event]:
    """Run `target(*args, stop)` in a thread; stop and join it on exit."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(*args, stop), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(120)


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)


def money(value: str) -> Decimal:
    return Decimal(value)
