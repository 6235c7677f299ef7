"""The explainer loop on the real bus, pointed at the local OpenAI-compatible server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from streams.explainer.metrics import ExplainerMetrics
from streams.explainer.service import ExplainerLoop, build_loop
from tests.explainer.factories import NOW
from tests.fakes.openai_server import FakeOpenAI
from topics.bus import BusConsumer, BusProducer, Received
from topics.catalog import Catalog
from topics.settings import Settings

KEEP = object()


@dataclass
class Harness:
    """A loop, the fake server it calls, what it waited, and a producer for inputs."""

    loop: ExplainerLoop
    server: FakeOpenAI
    catalog: Catalog
    settings: Settings
    producer: BusProducer
    metrics: ExplainerMetrics
    waits: list[float] = field(default_factory=list)

    def publish(self, topic: str, key: str, *records: dict[str, Any]) -> None:
        """Produce input records (as the gate would) and wait for their delivery."""
        for record in records:
            self.producer.send(topic, key, record)
        self.producer.flush()

    def run(self, until: int, timeout: float = 60.0) -> int:
        """Step the loop until it has published `until` explanations in total."""
        deadline = time.monotonic() + timeout
        while self.loop.published < until and time.monotonic() < deadline:
            self.loop.step(timeout=0.3)
        return self.loop.published

    def settle(self, seconds: float = 2.0) -> None:
        """Keep stepping a while (to show that nothing more comes)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.loop.step(timeout=0.3)

    def explanations(self, want: int, settle: float = 0.5) -> list[Received]:
        """What is on `explanations.v1` (read back from the broker)."""
        group = f"{self.catalog.prefix}read-{uuid.uuid4().hex[:6]}"
        out: list[Received] = []
        with BusConsumer(self.settings, self.catalog, ["explanations.v1"], group_id=group,
                         name="test-reader") as consumer:
            deadline = time.monotonic() + 30
            while len(out) < want and time.monotonic() < deadline:
                out.extend(consumer.poll(100, 0.3))
            end = time.monotonic() + settle
            while time.monotonic() < end:
                out.extend(consumer.poll(100, 0.3))
        return out

    def metric(self, name: str, **labels: str) -> float:
        """A metric's value."""
        return self.metrics.value(name, **labels)


def explainer_settings(bus: Settings, server: FakeOpenAI, state: Path,
                       key: Any = KEEP, **env: Any) -> Settings:
    """Bus settings plus the explainer's, pointing at `server`."""
    values: dict[str, Any] = {
        "openai_api_key": SecretStr(server.api_key) if key is KEEP else (
            None if key is None else SecretStr(key)),
        "openai_base_url": server.url,
        "openai_timeout_seconds": 5.0,
        "openai_max_retries": 2,
        "state_dir": state,
        "explainer_metrics_port": 0,
    }
    values.update(env)
    return bus.model_copy(update=values)


@contextmanager
def harness(bus: Settings, catalog: Catalog, server: FakeOpenAI, state: Path,
            key: Any = KEEP, **env: Any) -> Iterator[Harness]:
    """A running-ready loop (clock at `NOW`, waits recorded instead of slept)."""
    settings = explainer_settings(bus, server, state, key, **env)
    metrics = ExplainerMetrics()
    waits: list[float] = []
    loop = build_loop(settings, catalog, clock=lambda: NOW, metrics=metrics, sleep=waits.append)
    producer = BusProducer(settings, catalog)
    try:
        yield Harness(loop, server, catalog, settings, producer, metrics, waits)
    finally:
        loop.producer.flush()
        loop.consumer.close()
        loop.explainer.client.close()
        producer.flush()
