"""streams/app.py `WorkerApp`: faust's app without the Monitor's per-event bookkeeping."""

from __future__ import annotations

import faust

from streams.app import WorkerApp


async def test_the_worker_app_starts_without_faust_s_monitor_among_its_sensors() -> None:
    plain = faust.App("plain-app-test", broker="kafka://127.0.0.1:1", web_enabled=False,
                      store="memory://")
    worker = WorkerApp("worker-app-test", broker="kafka://127.0.0.1:1", web_enabled=False,
                       store="memory://")

    plain_services = list(plain.on_init_dependencies())
    worker_services = list(worker.on_init_dependencies())

    # faust still adds its monitor here (an upgrade that moves it must be looked at again)
    assert list(plain.sensors) == [plain.monitor]
    assert list(worker.sensors) == []
    # the same services, but for the monitor's own (its once-a-second sampler); the
    # monitor faust's consumer reports offsets to stays
    assert [type(s) for s in worker_services] == [
        type(s) for s in plain_services if s is not plain.monitor]
    assert len(worker_services) == len(plain_services) - 1
    assert worker.monitor is not None
