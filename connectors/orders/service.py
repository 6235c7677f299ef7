"""The broker service loop: requests in, results and account states out, offsets last.

One thread owns the broker (MT5 sessions are not thread-safe), so prices (paper),
order requests, broker commands and halt/resume decisions are all handled here,
in the order they arrive:

- `orders.requests.v1`: the executor's result is published to `orders.results.v1`
  and **flushed before the consumer offsets are committed**. A crash in between
  republishes the same result (same outcome, from the ledger): downstream may see
  a result twice and must dedupe by `request_id`.
- `broker.commands.v1`: `refresh_account` publishes the account at once. It reads
  only, so its signature is left to the gate that issues it.
- `decisions.log.v1`: ai_halted / ai_resumed of our account.
- `market.candles.v1` (paper only, own consumer group): prices, SL/TP, pending orders.

The account is published on start (`reconciled=false`), after reconciliation,
on an interval, after each fill and on demand; broker health goes to
`feeds.health.v1` under `broker.<name>`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.brokers.base import Broker, BrokerError, BrokerUnavailable
from connectors.core.backoff import Backoff
from connectors.core.clock import Clock, utc_now
from connectors.core.health import Health
from connectors.core.publish import Producer
from connectors.orders.account import account_record
from connectors.orders.executor import Hook, OrderExecutor, RetryLater
from topics.bus import Received

log = logging.getLogger(__name__)

REQUESTS, RESULTS = "orders.requests.v1", "orders.results.v1"
COMMANDS, DECISIONS = "broker.commands.v1", "decisions.log.v1"
ACCOUNT, HEALTH, CANDLES = "account.state.v1", "feeds.health.v1", "market.candles.v1"
INPUT_TOPICS = (REQUESTS, COMMANDS, DECISIONS)


class Consumer(Protocol):
    """What the loop needs of `topics.bus.BusConsumer`."""

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Received]: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class PriceSink(Protocol):
    """A broker that learns prices from candles (the paper broker)."""

    def on_candle(self, candle: dict[str, Any]) -> list[Any]: ...


@dataclass(frozen=True)
class LoopConfig:
    """Timing of the loop."""

    account: str
    account_interval: float = 30.0
    poll_timeout: float = 0.2
    health_interval: float = 10.0


class BrokerLoop:
    """Runs the executor against the bus (see the module doc)."""

    def __init__(self, executor: OrderExecutor, broker: Broker, producer: Producer,
                 consumer: Consumer, config: LoopConfig, clock: Clock = utc_now,
                 prices: Consumer | None = None, hook: Hook | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.executor = executor
        self.broker = broker
        self.producer = producer
        self.consumer = consumer
        self.prices = prices
        self.config = config
        self.clock = clock
        self.hook = hook or (lambda point, rid: None)
        self.monotonic = monotonic
        self.health = Health(f"broker.{broker.name}", clock)
        self.pending: deque[Received] = deque()
        self.backoff = Backoff(base=0.5, cap=30.0, seed=7)
        self._retry_at = 0.0
        self._account_at = 0.0
        self._health_at = 0.0
        self.results_published = 0

    # --- account and health ------------------------------------------------------------------
    def publish_account(self) -> bool:
        """Read the account and publish it; False (and health error) if the broker is away."""
        try:
            info = self.broker.account()
        except (BrokerUnavailable, BrokerError) as exc:
            self.health.failure(exc)
            self._publish_health()
            return False
        record = account_record(info, self.executor.reconciled, self.clock(),
                                self.executor.ledger)
        self.producer.send(ACCOUNT, self.config.account, record)
        self.producer.flush()
        self._account_at = self.monotonic() + self.config.account_interval
        return True

    def _publish_health(self) -> None:
        self.health.note = None if self.executor.reconciled else "reduce-only: not reconciled"
        self.producer.send(HEALTH, self.health.feed, self.health.record())
        self.producer.flush()
        self._health_at = self.monotonic() + self.config.health_interval

    # --- start -------------------------------------------------------------------------------
    def start(self) -> None:
        """Announce `reconciled=false`, then try to reconcile."""
        self.publish_account()
        self.reconcile()

    def reconcile(self) -> bool:
        """One reconciliation attempt; retried with backoff by `step` until it passes."""
        try:
            report = self.executor.reconcile()
        except (BrokerUnavailable, BrokerError) as exc:
            self.health.failure(exc)
            self._retry_at = self.monotonic() + self.backoff.next_delay()
            log.warning("reconciliation failed, reduce-only until it passes: %s", exc)
            self._publish_health()
            return False
        self.backoff.reset()
        self.health.success()
        differences = report.differences()
        if differences:
            self.health.failure(f"reconciliation: {differences}")
            self.health.consecutive_errors = 0  # reported, not failing
        self.publish_account()
        self._publish_health()
        return True

    # --- the loop ----------------------------------------------------------------------------
    def step(self) -> None:
        """One round: reconcile if due, prices, requests, commit, periodic account."""
        now = self.monotonic()
        if not self.executor.reconciled and now >= self._retry_at:
            self.reconcile()
        fills = self._prices()
        if not self.pending and now >= self._retry_at:
            self.pending.extend(self.consumer.poll(200, self.config.poll_timeout))
        account_due = self._drain() or fills
        if account_due or self.monotonic() >= self._account_at:
            self.publish_account()
        if self.monotonic() >= self._health_at:
            self._publish_health()

    def _prices(self) -> bool:
        if self.prices is None or not hasattr(self.broker, "on_candle"):
            return False
        fills = False
        received = self.prices.poll(1000, 0)
        for msg in received:
            fills = bool(self.broker.on_candle(msg.value)) or fills
        if received:
            self.prices.commit()
        return fills

    def _drain(self) -> bool:
        """Handle pending messages in order; publish, flush, then commit. True if a fill."""
        done: list[str] = []
        account_due = False
        while self.pending and self.monotonic() >= self._retry_at:
            msg = self.pending[0]
            try:
                outcome = self._handle(msg)
            except RetryLater as exc:
                self.health.failure(exc)
                self._retry_at = self.monotonic() + self.backoff.next_delay()
                log.warning("broker unavailable, retrying: %s", exc)
                break
            self.pending.popleft()
            if outcome is not None:
                done.append(outcome[0])
                account_due = account_due or outcome[1]
        if done:
            self.producer.flush()
            self.results_published += len(done)
            for rid in done:
                self.hook("after_publish", rid)
        if not self.pending:
            self.consumer.commit()
            if done:
                self.backoff.reset()
                self.health.success(len(done))
        return account_due

    def _handle(self, msg: Received) -> tuple[str, bool] | None:
        value = msg.value
        if msg.topic == DECISIONS:
            self.executor.on_decision(value)
            return None
        if value.get("account") != self.config.account:
            return None  # another account's broker service handles it
        if msg.topic == COMMANDS:
            if value.get("kind") == "refresh_account":
                self._account_at = 0.0
            return None
        result = self.executor.handle(value)
        self.producer.send(RESULTS, self.config.account, result)
        return value["request_id"], result["status"] in ("filled", "placed")

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set."""
        self.start()
        while not stop.is_set():
            self.step()
            if self.pending and self.monotonic() < self._retry_at:
                stop.wait(min(1.0, self._retry_at - self.monotonic()))
