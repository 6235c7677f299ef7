"""The throughput reference of `bench_pipeline.py`: the streams worker with its market
agent replaced by one that forwards each candle's bytes to market.indicators and does
nothing else (no decoding, no indicator engine, no strategies, no table write, no waiting
for the broker's acknowledgement).

Everything else is the worker's: the faust app and its settings, the consumer (fetch
sizes and waits, hand-over), the librdkafka output producer, the gate agent and the
context task. What it reaches is the ceiling of one worker process on this machine
before any of the pipeline's own work: faust's per-record cost and the clients'.

    python tests/bench/faust_floor.py      # with the worker's environment
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streams.app import Worker, run_worker  # noqa: E402
from topics.settings import Settings  # noqa: E402


async def forward(self: Worker, stream: Any) -> None:
    """Each candle's key and value, unchanged, to the indicators topic."""
    topic = self.catalog.name("market.indicators.v1")
    deliveries = self.outputs.deliveries()
    async for event in stream.events():
        await self.outputs.send(deliveries, topic, event.message.key, event.message.value)


if __name__ == "__main__":
    Worker._market_agent = forward  # type: ignore[assignment,method-assign]
    sys.exit(run_worker(Settings()))
