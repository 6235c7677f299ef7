"""The two long-running connector services: `run_broker` and `run_feeds`.

Both run until SIGTERM or SIGINT, then finish the round they are in, flush what
they produced and close their clients; they return a process exit code. The CLI
(`ai-trader broker`, `ai-trader feeds [--demo]`) calls them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from connectors.brokers.base import Broker
from connectors.core.backoff import Backoff
from connectors.core.clock import Clock, utc_now
from connectors.core.feed import FeedRunner
from connectors.factories import (
    build_broker,
    build_feeds,
    executor_config,
    ledger_path,
)
from connectors.orders.executor import Hook, OrderExecutor
from connectors.orders.ledger import Ledger
from connectors.orders.service import CANDLES, INPUT_TOPICS, BrokerLoop, LoopConfig
from topics.bus import BusConsumer, BusProducer, read_to_end
from topics.catalog import Catalog
from topics.settings import Settings
from topics.signals import stop_on_signals

log = logging.getLogger(__name__)
#: Candles read back from the end of each partition for a demo to resume after: a
#: symbol's finest bars come every few records, whatever shares its partition.
RESUME_TAIL = 1000


def broker_loop(settings: Settings, catalog: Catalog, broker: Broker, clock: Clock = utc_now,
                hook: Hook | None = None) -> BrokerLoop:
    """A broker loop wired to the bus (used by `run_broker` and the integration tests)."""
    executor = OrderExecutor(broker, Ledger(ledger_path(settings)), executor_config(settings),
                             clock, hook=hook)
    group = f"broker-{settings.account}"
    consumer = BusConsumer(settings, catalog, INPUT_TOPICS, group_id=group, name=group)
    prices = None
    if hasattr(broker, "on_candle"):
        prices = BusConsumer(settings, catalog, [CANDLES], group_id=f"{group}-prices",
                             name=f"{group}-prices")
    producer = BusProducer(settings, catalog)
    config = LoopConfig(account=settings.account,
                        account_interval=settings.account_snapshot_interval_seconds)
    return BrokerLoop(executor, broker, producer, consumer, config, clock, prices, hook)


def run_broker(settings: Settings, stop: threading.Event | None = None) -> int:
    """The broker service: order requests -> broker -> results and account states."""
    stop = stop or threading.Event()
    try:
        broker = build_broker(settings)
    except ImportError as exc:  # MT5 chosen without the package or the mt5linux bridge
        log.error("cannot load the MetaTrader5 module: %s (install MetaTrader5 on Windows, or "
                  "set MT5_BRIDGE_HOST for mt5linux)", exc)
        return 1
    loop = broker_loop(settings, Catalog(settings.topic_prefix), broker)
    log.info("broker service started", extra={"broker": broker.name,
                                              "account": settings.account})
    with stop_on_signals(stop):
        try:
            loop.run(stop)
        finally:
            loop.producer.flush()
            loop.consumer.close()
            if loop.prices is not None:
                loop.prices.close()
            loop.executor.ledger.close()
    log.info("broker service stopped")
    return 0


def run_feeds(settings: Settings, demo: bool, stop: threading.Event | None = None) -> int:
    """Every configured feed in its own thread (demo: synthetic market, calendar, news)."""
    stop = stop or threading.Event()
    catalog = Catalog(settings.topic_prefix)
    producer = BusProducer(settings, catalog)

    def published() -> Iterable[dict[str, Any] | None]:
        # the newest candles of every partition: a demo resumes after them
        return list(read_to_end(settings, catalog, CANDLES, missing_ok=True,
                                last=RESUME_TAIL))

    specs = build_feeds(settings, demo, published=published)
    if not specs:
        log.error("no feed configured (MARKET_FEED, CALENDAR_URL, NEWS_URLS, or --demo)")
        return 1
    runners = [
        FeedRunner(spec.feed, producer, utc_now, spec.interval,
                   Backoff(base=1.0, cap=settings.feed_backoff_max_seconds, seed=index),
                   world=spec.world)
        for index, spec in enumerate(specs)
    ]
    threads = [threading.Thread(target=r.run, args=(stop,), name=f"feed-{r.feed.name}",
                                daemon=True) for r in runners]
    with stop_on_signals(stop):
        for thread in threads:
            thread.start()
        # a finished replay stays "up" until told to stop, so a supervisor does not rerun it
        while not stop.is_set():
            stop.wait(0.5)
        for thread in threads:
            thread.join(timeout=30)
    producer.flush()
    log.info("feeds stopped", extra={"feeds": [r.feed.name for r in runners]})
    return 0
