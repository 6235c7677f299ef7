"""A worker that failed exits even when faust's stop hangs: its supervisor only restarts
processes that are gone.

The failure here: the tables' changelog topics disappear under a running worker. The
gate's table check fails (a broken environment, not bad input), the worker stops, and
faust's stop then waits on a producer that retries records for the deleted topics —
without the exit deadline the process stayed up for good (seen 2026-12-02).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from streams.app import CRASH_EXIT_CODE
from tests.streams.conftest import OUT_TOPICS
from tests.streams.harness import Bus, WorkerProcess, feed, fresh_context, minute_floor, now
from topics.bus import admin_client
from topics.catalog import Catalog
from topics.settings import Settings

EXIT_AFTER = 5.0


@pytest.fixture
def worker(bus: Settings, catalog: Catalog, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(bus, catalog, tmp_path)
    proc.env["AI_TRADER_WORKER_CRASH_EXIT_SECONDS"] = str(EXIT_AFTER)
    proc.start()
    yield proc
    proc.stop()


def test_a_failed_worker_whose_stop_hangs_exits_with_its_own_code(
        bus: Settings, catalog: Catalog, worker: WorkerProcess) -> None:
    io = Bus(bus, catalog)
    io.follow(OUT_TOPICS)
    io.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 90, "the seed")
    start = minute_floor(now()) - timedelta(minutes=41)
    fresh_context(io, start + timedelta(minutes=40))
    feed(io, 20, start=start)
    io.wait(lambda rs: len(io.of("market.indicators.v1")) >= 20, 60, "the first candles")

    admin = admin_client(bus)
    changelogs = [t for t in admin.list_topics(timeout=10).topics
                  if t.startswith(catalog.prefix) and t.endswith("-changelog")]
    assert len(changelogs) == 5, changelogs
    for future in admin.delete_topics(changelogs, operation_timeout=30).values():
        future.result()
    del admin
    # Candles after the first ones (no warm-up wait): with its changelogs gone the worker
    # may stop making indicators at any batch, which is not what this test is about.
    feed(io, 20, first=20, start=start)

    assert worker.proc is not None
    deadline = time.monotonic() + 90
    while worker.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    output = worker.output()
    assert worker.proc.poll() is not None, f"the worker is still up:\n{output[-4000:]}"
    assert "stopping the worker" in output
    if worker.proc.returncode == CRASH_EXIT_CODE:  # the stop hung: the deadline ended it
        assert "is still stopping after 5 s: exiting now" in output
    else:  # the stop finished by itself, as a failure
        assert worker.proc.returncode not in (0, None), output[-4000:]
    io.close()
