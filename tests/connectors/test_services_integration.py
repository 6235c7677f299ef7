"""`run_feeds` and `run_broker` as processes: they publish, and stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from tests.connectors.bus import read
from tests.connectors.factories import order_request
from topics.bus import BusProducer, consumer_config
from topics.catalog import Catalog
from topics.settings import REPO_ROOT, Settings

SCRIPT = "import sys; from connectors.service import {fn}; from topics.settings import Settings; " \
         "sys.exit({fn}(Settings(){args}))"


def _start(fn: str, args: str, catalog: Catalog, tmp_path: Path,
           **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "AI_TRADER_TOPIC_PREFIX": catalog.prefix,
               "AI_TRADER_STATE_DIR": str(tmp_path), "SYNTHETIC_WARMUP_BARS": "30",
               "SYNTHETIC_SPEED": "600", "ACCOUNT_SNAPSHOT_INTERVAL_SECONDS": "1", **env}
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(fn=fn, args=args)],
                            cwd=REPO_ROOT, env=environ, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_feeds_demo_publishes_and_exits_zero_on_sigterm(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    proc = _start("run_feeds", ", demo=True", catalog, tmp_path)
    try:
        candles = read(bus, catalog, "market.candles.v1", 90, timeout=60)
        health = read(bus, catalog, "feeds.health.v1", 1, timeout=30)
    finally:
        code = _stop(proc)

    assert code == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    assert len(candles) >= 90
    assert {h.key for h in health} & {"synthetic", "demo-calendar", "demo-news"}


def _ends(bus: Settings, catalog: Catalog, topic: str) -> dict[int, int]:
    consumer = Consumer(consumer_config(bus, f"{catalog.prefix}ends"))
    try:
        name = catalog.name(topic)
        meta = consumer.list_topics(name, timeout=10).topics[name]
        return {p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                for p in meta.partitions}
    finally:
        consumer.close()


def test_run_feeds_demo_restarted_goes_on_after_the_bars_it_had_published(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    """The worker ignores a bar older than its last: a restarted demo that began again
    from the wall clock would publish nothing it uses until it caught up with the
    first run's event time (which runs SYNTHETIC_SPEED times faster than the clock)."""
    first = _start("run_feeds", ", demo=True", catalog, tmp_path)
    try:
        read(bus, catalog, "feeds.health.v1", 1, timeout=60)
        time.sleep(3.0)  # caught up, then paced bars: ahead of the wall clock
    finally:
        assert _stop(first) == 0
    ends = _ends(bus, catalog, "market.candles.v1")
    second = _start("run_feeds", ", demo=True", catalog, tmp_path)
    try:
        records = read(bus, catalog, "market.candles.v1", sum(ends.values()) + 60, timeout=60)
    finally:
        assert _stop(second) == 0

    before = [r.value for r in records if r.offset < ends[r.partition]]
    after = [r.value for r in records if r.offset >= ends[r.partition]]
    newest: dict[tuple[str, str], datetime] = {}
    for bar in before:
        key = (bar["symbol"], bar["timeframe"])
        newest[key] = max(newest.get(key, bar["open_time"]), bar["open_time"])
    assert before
    assert after
    assert not [bar for bar in after  # every bar the second run published is used
                if bar["open_time"] <= newest[bar["symbol"], bar["timeframe"]]]
    last_close = {b["symbol"]: b["close"] for b in sorted(
        (b for b in before if b["timeframe"] == "M1"), key=lambda b: b["open_time"])}
    first_open = {b["symbol"]: b["open"] for b in sorted(
        (b for b in after if b["timeframe"] == "M1"), key=lambda b: b["open_time"],
        reverse=True)}
    assert first_open == last_close  # prices go on, no jump


def test_run_broker_paper_fills_a_request_and_exits_zero_on_sigterm(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    feeds = _start("run_feeds", ", demo=True", catalog, tmp_path / "feeds")
    broker = _start("run_broker", "", catalog, tmp_path)
    try:
        read(bus, catalog, "account.state.v1", 1, timeout=60)
        time.sleep(2.0)  # prices flow to the paper broker
        now = time.time()
        request = order_request(symbol="EURUSD", stop_loss=0.5, take_profit=[2.0],
                                lot_size=order_request()["lot_size"])
        request["requested_at"] = datetime.fromtimestamp(now, UTC)
        request["expires_at"] = datetime.fromtimestamp(now, UTC) + timedelta(minutes=5)
        producer = BusProducer(bus, catalog)
        producer.send("orders.requests.v1", "paper-1", request)
        producer.flush()
        results = read(bus, catalog, "orders.results.v1", 1, timeout=60)
    finally:
        codes = (_stop(broker), _stop(feeds))

    assert codes == (0, 0)
    assert results[0].value["request_id"] == request["request_id"]
    assert results[0].value["status"] == "filled", results[0].value
    assert (tmp_path / "orders-paper-1.sqlite").exists()
    assert (tmp_path / "paper-paper-1.json").exists()
