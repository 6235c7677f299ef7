"""The worker keeps the garbage collector's full passes short (streams/app.py,
`Worker._freeze_startup_heap`) and reports every pass's pause (streams/metrics.py)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from streams import metrics
from streams.app import Worker
from topics.settings import Settings


def _pauses(generation: str) -> float:
    """How many passes of `generation` GC_PAUSE has recorded."""
    return sum(s.value for m in metrics.GC_PAUSE.collect() for s in m.samples
               if s.name.endswith("_count") and s.labels.get("generation") == generation)


async def test_the_start_up_heap_is_frozen_once_the_context_has_caught_up(
        tmp_path: Path) -> None:
    worker = Worker(Settings(AI_TRADER_STATE_DIR=tmp_path))
    before = gc.get_freeze_count()
    freezing = asyncio.create_task(worker._freeze_startup_heap())
    try:
        await asyncio.sleep(0.05)
        assert not freezing.done(), "froze before the context had caught up"
        assert gc.get_freeze_count() == before
        worker.context.caught_up.set()
        await asyncio.wait_for(freezing, 30)
        # the worker, its app and everything imported are out of full collections now
        assert gc.get_freeze_count() > before + 10_000
    finally:
        freezing.cancel()
        gc.unfreeze()


def test_every_collection_pause_is_recorded() -> None:
    metrics.watch_gc()
    metrics.watch_gc()  # once per process, however often called
    assert sum(isinstance(cb, metrics.GcPauses) for cb in gc.callbacks) == 1
    before = _pauses("2")
    gc.collect()
    assert _pauses("2") == before + 1
