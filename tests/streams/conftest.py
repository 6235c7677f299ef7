"""Fixtures of the streams tests: a real worker on the test's topics, and its bus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streams.harness import ANY_BAR_BUY, Bus, WorkerProcess
from topics.catalog import Catalog
from topics.settings import Settings

OUT_TOPICS = ("decisions.log.v1", "ideas.status.v1", "orders.requests.v1",
              "control.replies.v1", "state.risk_config.v1", "state.strategies.v1",
              "market.indicators.v1", "snapshots.bundles.v1")


@pytest.fixture
def worker(bus: Settings, catalog: Catalog, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(bus, catalog, tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def io(bus: Settings, catalog: Catalog, worker: WorkerProcess) -> Iterator[Bus]:
    b = Bus(bus, catalog)
    b.follow(OUT_TOPICS)
    # The worker seeds the default risk config and the shipped strategies on first start.
    b.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 90,
           "the seed commands' replies")
    reply = b.reply(b.command("put_strategy", strategy_id=ANY_BAR_BUY["id"],
                              payload={"definition": ANY_BAR_BUY})["command_id"])
    assert reply["status"] == "accepted", reply
    yield b
    b.close()
