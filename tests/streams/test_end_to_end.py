"""Worker, broker service and the control client together on the real bus.

The approval path of blueprint §6.4 from end to end: an idea waits, a human approves it
through the same client the API and the CLI use, the gate re-validates and sends the
order, the paper broker fills it, and the gate marks the idea executed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.streams.harness import (
    ACCOUNT,
    KEY,
    REPO,
    Bus,
    WorkerProcess,
    feed,
    fresh_context,
    minute_floor,
    now,
    statuses,
)
from topics.catalog import Catalog
from topics.control_client import ControlClient
from topics.settings import Settings


@pytest.fixture
def broker(bus: Settings, catalog: Catalog, tmp_path: Path,
           worker: WorkerProcess) -> Iterator[subprocess.Popen[bytes]]:
    env = {**worker.env, "ACCOUNT_SNAPSHOT_INTERVAL_SECONDS": "1",
           "AI_TRADER_BROKER": "paper"}
    log = open(tmp_path / "broker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "broker"],  # noqa: S603
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield proc
    proc.terminate()
    proc.wait(30)
    log.close()


def test_a_human_approval_is_executed_once_by_the_paper_broker(
    io: Bus, broker: subprocess.Popen[bytes], bus: Settings, catalog: Catalog
) -> None:
    # The broker service is up (its price consumer too) once it publishes the account.
    probe = Bus(bus, catalog)
    probe.follow(["account.state.v1"])
    probe.wait(lambda rs: any(r.value["broker"] == "paper" for r in rs), 60,
               "the paper broker's first account state")
    probe.close()
    start = minute_floor(now()) - timedelta(minutes=21)
    fresh_context(io, start + timedelta(minutes=20))
    feed(io, 20, start=start)
    io.wait(lambda rs: len(statuses(io, "pending_approval")) >= 2, 60, "pending ideas")
    idea_id = statuses(io, "pending_approval")[-1]["idea_id"]

    client_settings = Settings(KAFKA_BOOTSTRAP_SERVERS=bus.kafka_bootstrap_servers,
                               AI_TRADER_ACCOUNT=ACCOUNT, AI_TRADER_ENV="test")  # type: ignore[call-arg]
    with ControlClient(client_settings, catalog, key=KEY).start() as client:
        outcome = client.approve(idea_id, "trader@example.com", lot_size=Decimal("0.10"),
                                 timeout=30, order_timeout=60)
        assert outcome.status == "executed", outcome
        assert isinstance(outcome.mt5_order_id, int)
        assert outcome.mt5_order_id > 0
        again = client.approve(idea_id, "trader@example.com", timeout=30)
        assert again.status == "blocked"
        assert str(again.reason).startswith("already_decided")

    io.follow(["ideas.status.v1", "orders.requests.v1", "orders.results.v1"])
    io.seen.clear()
    io.wait(lambda rs: any(r.topic == "ideas.status.v1" and r.value["idea_id"] == idea_id
                           and r.value["status"] == "executed" for r in rs), 60,
            "the idea marked executed")
    assert [o["request_id"] for o in io.of("orders.requests.v1")] == [idea_id]
    results = [r for r in io.of("orders.results.v1") if r["request_id"] == idea_id]
    assert {r["status"] for r in results} == {"filled"}
    assert os.environ.get("COMMAND_HMAC_KEY") != KEY.decode()  # the key came from the test
