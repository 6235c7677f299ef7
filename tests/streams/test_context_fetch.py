"""The worker's context consumer waits long at the broker when idle, and that wait
delays nothing: a context record ends the waiting fetch (streams/app.py, `_context_task`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from streams.app import Worker
from tests import factories
from tests.streams.harness import Bus
from topics.catalog import Catalog
from topics.settings import Settings

#: Far longer than a record may take to reach the context: a fetch that kept waiting
#: would make a record wait for a uniformly random part of it.
WAIT_MS = 10_000
ARRIVAL_BOUND = 1.0  # s; three records all under it by luck: (1 / 10) ** 3


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30.0
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_a_context_record_ends_the_long_idle_fetch(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS=bus.kafka_bootstrap_servers,
                        AI_TRADER_TOPIC_PREFIX=catalog.prefix, AI_TRADER_STATE_DIR=tmp_path,
                        KAFKA_IDLE_FETCH_WAIT_MS=WAIT_MS)
    worker = Worker(settings)
    io = Bus(bus, catalog)
    task = asyncio.create_task(worker._context_task())
    try:
        await _until(worker.context.caught_up.is_set, "the context to catch up")
        consumer = worker._offsets_consumer
        assert consumer is not None
        assert consumer._fetcher._fetch_max_wait_ms == WAIT_MS
        arrivals = []
        for k in range(3):
            await asyncio.sleep(0.3 + 0.2 * k)  # somewhere inside a waiting fetch
            item = factories.news_item(item_id=f"n{k}")
            sent = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(
                None, io.send, "news.items.v1", item["item_id"], item)
            await _until(lambda k=k: f"n{k}" in worker.context.news, f"news n{k}")
            arrivals.append(time.monotonic() - sent)
        assert max(arrivals) < ARRIVAL_BOUND, (
            f"a record waited for the fetch: {[round(a, 3) for a in arrivals]} s")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        io.close()
