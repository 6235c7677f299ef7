"""What an idle streams worker costs: CPU of the worker and of the broker while nothing
arrives.

    .venv/bin/python tests/bench/bench_idle.py [--seconds 20]

Candles arrive once a minute per symbol and timeframe: most of a live worker's life is
spent waiting. Its consumers still ask the broker for records every fetch wait
(`KAFKA_CONSUMER_FETCH_WAIT_MS` while records are buffered, `KAFKA_IDLE_FETCH_WAIT_MS`
otherwise: streams/fetching.py), and every answer is work for both. The reference is
the broker's own idle CPU, measured in the same run before the worker starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.bench_pipeline import CpuMeter, _broker_pid, _process_cpu  # noqa: E402
from tests.streams.harness import Bus, WorkerProcess  # noqa: E402
from topics.bus import admin_client, ensure_topics, wait_for_bus  # noqa: E402
from topics.catalog import Catalog  # noqa: E402
from topics.settings import Settings  # noqa: E402


def cpu_share(pid: int | None, seconds: float) -> float:
    """Share of one core `pid` used over the next `seconds`."""
    before = _process_cpu(pid)
    time.sleep(seconds)
    return (_process_cpu(pid) - before) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = Settings(AI_TRADER_ENV="test")  # type: ignore[call-arg]
    wait_for_bus(settings, timeout=30)
    broker = _broker_pid()
    assert CpuMeter.TICK > 0
    print(f"cores: {os.cpu_count()}  fetch waits: {settings.consumer_fetch_wait_ms} ms busy, "
          f"{settings.idle_fetch_wait_ms} ms idle")
    alone = cpu_share(broker, args.seconds / 2) if broker else float("nan")
    catalog = Catalog(prefix=f"bench{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings, catalog)
    with tempfile.TemporaryDirectory() as tmp:
        worker = WorkerProcess(settings, catalog, Path(tmp))
        io = Bus(settings, catalog)
        try:
            worker.start()
            io.follow(["control.replies.v1"])
            io.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 120,
                    "seed replies")
            io.close()
            time.sleep(5)  # past the start-up
            before = _process_cpu(worker.pid), _process_cpu(broker)
            time.sleep(args.seconds)
            used_worker = (_process_cpu(worker.pid) - before[0]) / args.seconds
            used_broker = (_process_cpu(broker) - before[1]) / args.seconds
        finally:
            worker.stop()
            admin = admin_client(settings)
            mine = [t for t in admin.list_topics(timeout=30).topics
                    if t.startswith(catalog.prefix)]
            if mine:
                admin.delete_topics(mine, operation_timeout=30)
    print(f"idle worker over {args.seconds:.0f} s: worker {used_worker * 100:.1f} % of a core, "
          f"broker {used_broker * 100:.1f} % (broker without the worker: "
          f"{alone * 100:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
