"""Prometheus metrics of the streams worker (scraped at AI_TRADER_METRICS_PORT)."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("ai_trader.streams.metrics")

EVENTS_IN = Counter("streams_events_in_total", "Records consumed", ["topic"])
EVENTS_OUT = Counter("streams_events_out_total", "Records produced", ["topic"])
DEAD_LETTERS = Counter("streams_dead_letters_total", "Records sent to a dead-letter topic",
                       ["topic", "stage"])
PROCESSING = Histogram(
    "streams_processing_seconds", "Time to process one record", ["agent"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
CANDLES_SKIPPED = Counter("streams_candles_skipped_total", "Candles ignored or rejected",
                          ["status"])
IDEAS = Counter("streams_ideas_total", "Ideas proposed", ["strategy"])
DECISIONS = Counter("gate_decisions_total", "Decision events", ["action", "outcome"])
FAILED_CHECKS = Counter("gate_failed_checks_total", "Failed gate checks", ["check"])
LAG = Gauge("streams_consumer_lag_records",
            "Records on the worker's assigned partitions not yet committed", ["topic"])
REFUSALS = Counter("gate_command_refusals_total", "Refused control commands", ["code"])
GC_PAUSE = Histogram(
    "streams_gc_pause_seconds", "Garbage collector passes (every agent waits)", ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


def events_in(topic: str) -> Any:
    """The records-consumed counter of a topic (the child is looked up once: `labels()`
    costs a lock and a tuple per call, and it ran for every candle)."""
    return _child(EVENTS_IN, topic)


def events_out(topic: str) -> Any:
    """The records-produced counter of a topic (see `events_in`)."""
    return _child(EVENTS_OUT, topic)


_CHILDREN: dict[tuple[int, str], Any] = {}


def _child(counter: Counter, topic: str) -> Any:
    key = (id(counter), topic)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = counter.labels(topic=topic)
    return child


class GcPauses:
    """Times every collection into GC_PAUSE (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            GC_PAUSE.labels(generation=str(info["generation"])).observe(
                time.perf_counter() - self._started)


def watch_gc() -> None:
    """Record the collector's pauses (once per process)."""
    if not any(isinstance(cb, GcPauses) for cb in gc.callbacks):
        gc.callbacks.append(GcPauses())


def serve(port: int) -> None:
    """Expose /metrics on `port` (0 = not exposed)."""
    if port <= 0:
        return
    try:
        start_http_server(port, addr="127.0.0.1")
    except OSError as exc:
        log.warning("metrics not exposed on port %d: %s", port, exc)
