"""streams/metrics.py: the cached per-topic counters count on the exported series."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from streams import metrics


def _value(name: str, topic: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"topic": topic})


def test_events_in_and_out_count_on_their_own_series() -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.v1"
    metrics.events_in(topic).inc()
    metrics.events_in(topic).inc(2)
    metrics.events_out(topic).inc()
    assert _value("streams_events_in_total", topic) == 3
    assert _value("streams_events_out_total", topic) == 1
    assert metrics.events_in(topic) is metrics.EVENTS_IN.labels(topic=topic)
    assert metrics.events_out(topic) is not metrics.events_in(topic)
