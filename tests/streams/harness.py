"""A real streams worker (`ai-trader worker` subprocess) on a test's own topics.

The worker runs exactly as in production, under the test catalog's prefix, with a
known command key; the test talks to it only through the bus.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests import factories
from topics.bus import BusConsumer, BusProducer, Received
from topics.catalog import Catalog
from topics.commands import new_command
from topics.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KEY = b"test-command-key-0123456789abcdef"
ACCOUNT = "acct-test"

#: Matches every closed M1 XAUUSD candle once RSI and ATR are warm (15 candles).
ANY_BAR_BUY: dict[str, Any] = {
    "id": "0b5c1f4e-5f0c-4d1a-9a51-1b7a3c1e9d01",
    "name": "Test any bar buy",
    "version": 1,
    "is_active": True,
    "allowed_symbols": ["XAUUSD"],
    "timeframes": ["M1"],
    "session_windows": [
        {"name": "am", "start": "00:00Z", "end": "12:00Z",
         "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
        {"name": "pm", "start": "12:00Z", "end": "00:00Z",
         "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]},
    ],
    "entry_conditions": {"direction": "buy", "rsi_above": 1},
    "exit_rules": {"stop_loss": {"type": "atr", "multiple": 1.5}, "take_profit_rr": [2],
                   "time_limit_minutes": 30},
    "forbidden_conditions": {"block_high_impact_news_minutes": 15,
                             "blocked_symbols_during_news": ["USD"]},
    "risk_caps": {"max_lot_size": 1.0, "max_concurrent_positions": 5, "lot_size": 0.1},
    "rr_expectation": 2.0,
    "approval_ttl_minutes": 120,
}


def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def candles(
    start: datetime, n: int, symbol: str = "XAUUSD", first: int = 0
) -> list[dict[str, Any]]:
    """n closed M1 candles from `start`, a gently rising path (RSI stays above 1)."""
    out = []
    for i in range(first, first + n):
        base = 2400.0 + i * 0.4 + (i % 3) * 0.2
        out.append(factories.candle(
            i, symbol, open_time=start + timedelta(minutes=i), open=base, high=base + 1.0,
            low=base - 0.8, close=base + 0.3, spread=0.2, closed=True))
    return out


@dataclass
class Bus:
    """Publish to and read from a test catalog."""

    settings: Settings
    catalog: Catalog
    producer: BusProducer = field(init=False)
    seen: list[Received] = field(default_factory=list)
    _consumer: BusConsumer | None = None

    def __post_init__(self) -> None:
        self.producer = BusProducer(self.settings, self.catalog)

    def send(self, logical: str, key: str, record: dict[str, Any]) -> None:
        self.producer.send(logical, key, record)
        self.producer.flush()

    def command(self, kind: str, *, key: bytes = KEY, account: str = ACCOUNT,
                **kw: Any) -> dict[str, Any]:
        cmd = new_command(kind, account, "tester@example.com", key, **kw)
        self.send("gate.inbox.v1", account, {"account": account, "idea": None,
                                             "bundle": None, "command": cmd})
        return cmd

    def follow(self, topics: Iterable[str]) -> None:
        self._consumer = BusConsumer(self.settings, self.catalog, list(topics),
                                     group_id=f"{self.catalog.prefix}reader-{uuid.uuid4().hex}")

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 60.0,
             what: str = "records") -> list[Received]:
        """Poll until `predicate(all records seen)` holds; fail with what was seen."""
        assert self._consumer is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.seen.extend(self._consumer.poll(1000, 0.2))
            if predicate(self.seen):
                return self.seen
        summary = [(r.topic, r.value.get("action") or r.value.get("status"),
                    r.value.get("risk_check_result") or r.value.get("reason"))
                   for r in self.seen if r.topic not in ("market.indicators.v1",
                                                         "snapshots.bundles.v1")]
        counts = Counter(r.topic for r in self.seen)
        raise AssertionError(f"timed out waiting for {what}; seen {dict(counts)}, "
                             f"latest: {summary[-30:]}")

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [r.value for r in self.seen if r.topic == topic]

    def reply(self, command_id: str, timeout: float = 60.0) -> dict[str, Any]:
        self.wait(lambda rs: any(r.topic == "control.replies.v1"
                                 and r.value["command_id"] == command_id for r in rs),
                  timeout, f"reply to {command_id}")
        return next(v for v in self.of("control.replies.v1") if v["command_id"] == command_id)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self.producer.flush()


class WorkerProcess:
    """`ai-trader worker` on the test's topics."""

    def __init__(self, settings: Settings, catalog: Catalog, state_dir: Path,
                 argv: tuple[str, ...] = ("-m", "api.cli", "worker")) -> None:
        self.argv = argv
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "AI_TRADER_TOPIC_PREFIX": catalog.prefix,
            "AI_TRADER_ACCOUNT": ACCOUNT,
            "AI_TRADER_METRICS_PORT": "0",
            "AI_TRADER_STATE_DIR": str(state_dir),
            "COMMAND_HMAC_KEY": KEY.decode(),
            "AI_TRADER_ENV": "test",
            # a worker hung after a restart stops itself after 20 s (streams/watchdog.py)
            "AI_TRADER_WORKER_STALL_SECONDS": "20",
        }
        self.log = state_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = self.log.with_name(f"worker-{uuid.uuid4().hex[:6]}.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, *self.argv], cwd=REPO, env=self.env,
                stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the worker is not running"
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_supervised(self, io: Bus, predicate: Callable[[list[Received]], bool],
                        timeout: float, what: str) -> int:
        """`io.wait`, restarting the worker when its watchdog stopped it (the supervisor's
        job, as `ai-trader run` does); returns the restarts. A worker that died any other
        way fails the test."""
        deadline = time.monotonic() + timeout
        restarts = 0
        while True:
            try:
                io.wait(predicate, 5, what)
                return restarts
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            if self.proc is not None and self.proc.poll() is not None:
                assert "agent watchdog failed: WorkerStalled" in self.output(), (
                    f"the worker died without a watchdog stop:\n{self.output()[-3000:]}")
                self.start()
                restarts += 1


@contextmanager
def running_worker(settings: Settings, catalog: Catalog, tmp: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(settings, catalog, tmp)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def fresh_context(bus: Bus, at: datetime, **account: Any) -> None:
    """An account state and a calendar feed that succeeded at `at` (the gate's freshness
    checks need both)."""
    bus.send("account.state.v1", ACCOUNT, factories.account_state(
        account=ACCOUNT, captured_at=at, reconciled=True, positions=[],
        **{"open_pl": Decimal("0.00"), "equity": Decimal("12000.00"), **account}))
    bus.send("feeds.health.v1", "calendar", {
        "feed": "calendar", "status": "ok", "last_success": at, "last_error": None,
        "last_error_at": None, "items_total": 1, "dead_letters_total": 0, "reported_at": at})


def lots(value: str) -> Decimal:
    return Decimal(value)


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


def now() -> datetime:
    return datetime.now(UTC)


def statuses(io: Bus, status: str) -> list[dict[str, Any]]:
    return [s for s in io.of("ideas.status.v1") if s["status"] == status]


WARM_UP = 14  # candles before RSI 14 / ATR 14 exist: no idea can come from them


def feed(io: Bus, n: int, first: int = 0, start: datetime | None = None) -> list[dict[str, Any]]:
    """Publish n candles. From a cold start, the warm-up candles go first and the test
    waits for their indicators: strategy changes reach the market agent through a
    topic, so they apply from when the worker has read them, not from when published."""
    start = start or minute_floor(now()) - timedelta(minutes=n + 1)
    batch = candles(start, n, first=first)
    head = batch[:WARM_UP] if first == 0 else []
    before = len(io.of("market.indicators.v1"))
    for c in head:
        io.producer.send("market.candles.v1", c["symbol"], c)
    io.producer.flush()
    if head:
        io.wait(lambda rs: len(io.of("market.indicators.v1")) >= before + len(head), 60,
                "the warm-up indicators")
    for c in batch[len(head):]:
        io.producer.send("market.candles.v1", c["symbol"], c)
    io.producer.flush()
    return batch


