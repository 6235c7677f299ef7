"""`ai-trader explainer`: a plain consumer process, off the execution path.

It consumes `snapshots.bundles.v1` (kept in a small cache: the market context of
ideas), `ideas.status.v1` (the first status of an idea carries the idea) and
`decisions.log.v1`, and publishes one `explanations.v1` record per idea and per
decision. The gate never waits for it and never imports it: it is a separate
process in its own consumer group (`<prefix>ai-trader-explainer`).

Delivery is at-least-once: a batch is explained, the explanations are flushed, then
the offsets are committed. Explanation ids are deterministic from (subject kind,
subject id), so a redelivered record yields the same id and sinks upsert it.
Within a batch, bundles are read first, so an idea polled together with its bundle
gets the indicator values and upcoming events; an idea whose bundle has not been
seen is explained from the idea alone (its bullets and confidence components).

Records older than `MAX_AGE` (by event time) are not explained: a new consumer
group reading the topics from the start does not spend the day's budget on
history. A record that cannot be turned into a subject goes to the input topic's
dead-letter topic with `__connect.errors.*` headers and the loop carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import InvalidOperation
from pathlib import Path
from typing import Any

from streams.explainer.agent import Explainer
from streams.explainer.budget import Clock, DailyBudget
from streams.explainer.client import ClientConfig, Interrupted, LlmClient
from streams.explainer.facts import Subject, decision_subject, explanation_id, idea_subject
from streams.explainer.metrics import ExplainerMetrics
from topics.bus import (
    BusConsumer,
    BusProducer,
    Received,
    error_headers,
)
from topics.catalog import Catalog, encode_key
from topics.settings import Settings
from topics.signals import stop_on_signals

log = logging.getLogger(__name__)

BUNDLES = "snapshots.bundles.v1"
IDEAS = "ideas.status.v1"
DECISIONS = "decisions.log.v1"
OUTPUT = "explanations.v1"
INPUTS = (BUNDLES, IDEAS, DECISIONS)
GROUP = "ai-trader-explainer"
MAX_AGE = timedelta(hours=24)
BATCH = 8
_CACHE = 512
_PROCESS_ERRORS = (KeyError, TypeError, ValueError, ArithmeticError, InvalidOperation)


def utc_now() -> datetime:
    """The wall clock (the explainer's only use of it: budget day, created_at, max age)."""
    return datetime.now(UTC)


def budget_path(settings: Settings) -> Path:
    """Where the daily budget is counted."""
    return settings.state_dir / "explainer" / "llm-budget.json"


class _Lru(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class ExplainerLoop:
    """Poll, explain, publish, flush, commit."""

    def __init__(self, explainer: Explainer, consumer: BusConsumer, producer: BusProducer,
                 clock: Clock = utc_now, max_age: timedelta = MAX_AGE,
                 batch: int = BATCH) -> None:
        self.explainer = explainer
        self.consumer = consumer
        self.producer = producer
        self.catalog = producer.catalog
        self.clock = clock
        self.max_age = max_age
        self.batch = batch
        self.metrics = explainer.metrics
        self._bundles: _Lru = _Lru(_CACHE)
        self._done: _Lru = _Lru(4 * _CACHE)
        self.published = 0

    def step(self, timeout: float = 1.0) -> int:
        """One batch; returns the number of explanations published."""
        records = self.consumer.poll(self.batch, timeout)
        if not records:
            return 0
        records.sort(key=lambda r: r.topic != BUNDLES)  # stable: bundles first
        published = 0
        for record in records:
            try:
                published += self._handle(record)
            except _PROCESS_ERRORS as exc:
                self._dead_letter(record, exc)
        self.producer.flush()
        self.consumer.commit()
        self.published += published
        return published

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; a retry wait cut short by `stop` leaves its batch uncommitted."""
        while not stop.is_set():
            try:
                self.step()
            except Interrupted:
                log.info("stopping during a retry wait: the batch will be redelivered")
                break

    def _handle(self, record: Received) -> int:
        if record.topic == BUNDLES:
            self._bundles.put(record.value["snapshot_id"], record.value)
            return 0
        subject = self._subject(record)
        if subject is None:
            return 0
        if self.clock() - subject.event_time > self.max_age:
            self.metrics.skipped.labels("stale").inc()
            return 0
        if subject.explanation_id in self._done:
            self.metrics.skipped.labels("duplicate").inc()
            return 0
        explanation = self.explainer.explain(subject)
        self.producer.send(OUTPUT, subject.account, explanation)
        self._done.put(subject.explanation_id, True)
        return 1

    def _subject(self, record: Received) -> Subject | None:
        if record.topic == DECISIONS:
            return decision_subject(record.value)
        if record.topic == IDEAS:
            idea = record.value.get("idea")
            if not idea:
                self.metrics.skipped.labels("later_status").inc()
                return None
            return idea_subject(record.value, self._bundles.get(idea["snapshot_id"]))
        return None

    def _dead_letter(self, record: Received, error: Exception) -> None:
        headers = error_headers(self.catalog.name(record.topic), record.partition,
                                record.offset, error, "process", self.consumer.name,
                                record.headers)
        value = self.catalog.codec(record.topic).encode(record.value)
        key = None if record.key is None else encode_key(record.key)
        self.producer.send_raw(self.catalog.dlq(record.topic), key, value, headers)
        self.metrics.skipped.labels("dead_letter").inc()
        log.warning("dead-lettered %s[%s]@%s: %s: %s", record.topic, record.partition,
                    record.offset, type(error).__name__, error)


def max_poll_interval_ms(config: ClientConfig, batch: int) -> int:
    """Long enough for a batch whose every call times out and waits the longest retry."""
    worst = (config.max_retries + 1) * (config.timeout + config.retry_after_cap)
    return max(300_000, int(batch * worst * 1000 * 1.5))


def build_loop(settings: Settings, catalog: Catalog, clock: Clock = utc_now,
               metrics: ExplainerMetrics | None = None,
               sleep: Callable[[float], object] | None = None,
               **client_overrides: Any) -> ExplainerLoop:
    """The loop wired to the bus and the model (used by `run_explainer` and the tests)."""
    metrics = metrics or ExplainerMetrics()
    config = ClientConfig.from_settings(settings, **client_overrides)
    budget = DailyBudget(budget_path(settings), settings.llm_daily_call_budget,
                         settings.llm_daily_token_budget, clock)
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    client = LlmClient(config, key or None, budget, metrics, clock, sleep=sleep or time.sleep)
    metrics.budget(budget.usage())
    consumer = BusConsumer(
        settings, catalog, INPUTS, group_id=f"{catalog.prefix}{GROUP}", name="explainer",
        **{"max.poll.interval.ms": max_poll_interval_ms(config, BATCH)},
    )
    producer = BusProducer(settings, catalog)
    return ExplainerLoop(Explainer(client, metrics, clock), consumer, producer, clock)


def _serve_metrics(settings: Settings, metrics: ExplainerMetrics) -> None:
    if not settings.explainer_metrics_port:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(settings.explainer_metrics_port, addr=settings.api_host,
                          registry=metrics.registry)
    except OSError as exc:
        log.error("metrics not served on port %s: %s", settings.explainer_metrics_port, exc)
        return
    log.info("metrics on http://%s:%s/metrics", settings.api_host,
             settings.explainer_metrics_port)


def run_explainer(settings: Settings, stop: threading.Event | None = None) -> int:
    """The explainer process: until SIGTERM/SIGINT (or `stop`)."""
    stop = stop or threading.Event()
    metrics = ExplainerMetrics()
    loop = build_loop(settings, Catalog(settings.topic_prefix), metrics=metrics, sleep=stop.wait)
    client = loop.explainer.client
    _serve_metrics(settings, metrics)
    if not client.configured:
        log.warning("OPENAI_API_KEY is not set: every explanation is the fallback rationale "
                    "(OPENAI_UNAVAILABLE)")
    usage = client.budget.usage()
    log.info("explainer started: model %s, budget %d calls / %d tokens per day, %d / %d used",
             client.config.model, usage.call_limit, usage.token_limit, usage.calls, usage.tokens,
             extra={"llm_budget": usage.to_dict()})
    with stop_on_signals(stop):
        try:
            loop.run(stop)
        finally:
            loop.producer.flush()
            loop.consumer.close()
            client.close()
    log.info("explainer stopped", extra={"explanations": loop.published})
    return 0


__all__ = ["ExplainerLoop", "build_loop", "explanation_id", "run_explainer"]
