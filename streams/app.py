"""The streams worker: Faust agents that wire the decision core to the bus.

Agents
- `market` (market.candles, 6 partitions by symbol): indicator engine per (symbol,
  timeframe) in the `engines` table (changelog, restored on restart) -> market.indicators;
  on a closed candle, every active strategy allowing the symbol is evaluated against
  the context; a match freezes a snapshot bundle and publishes the idea to gate.inbox.
- `gate` (gate.inbox + account.state + orders.results, all keyed by account, so
  co-partitioned): one `Book` per account in the `books` table. Ideas, commands, account
  states and order results of an account are applied in their order on the partition.
- `context` (a task, not a group member): reads calendar, news, account states, risk
  config and strategies from every partition into memory, so every worker instance
  sees all of them whatever partitions it is assigned.

Delivery: at-least-once. Every output is derived deterministically from its input
(ids are uuid5 of their subject), so a redelivered event produces the same records
and the consumers (sinks, executor, gate) drop the repeats. The gate awaits the
broker's acknowledgement of its outputs before it writes its table: a crash in between
replays the event and re-publishes the same records, never loses them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.streams import _current_event  # pinned faust 0.15: see _market_agent

from streams import changelog, metrics, records, redelivery
from streams.batching import Batcher
from streams.changelog import Changelog, ChangelogFailed, LibrdkafkaChangelogMixin
from streams.core.indicators import IndicatorEngine, UpdateStatus
from streams.core.model import RiskConfig
from streams.core.strategy import Strategy, StrategyError, parse_strategy, parse_strategy_json
from streams.defaults import default_risk_config
from streams.fast_drain import FastDrainConsumer
from streams.fetching import FairFetchConsumer
from streams.gate_journal import MISSING, Journal, compact
from streams.gatekeeper import Book, InvalidInboxMessage, Outputs
from streams.outputs import Deliveries, OutputProducer, ReportPump
from streams.proposals import BundleMismatch, Derivations, MarketContext, Proposal, propose
from streams.watchdog import lag_of, stalls
from topics.bus import Headers, error_headers
from topics.catalog import Catalog
from topics.codec import CodecError, Encoded
from topics.commands import command_key, new_command
from topics.settings import Settings

log = logging.getLogger("ai_trader.streams")
#: Kafka's record timestamp type of a topic with message.timestamp.type=LogAppendTime.
LOG_APPEND_TIME = 1
NEWS_KEEP = 500
#: Most candles in one batch (a batch closes earlier when no candle is waiting), and
#: most batches whose outputs may be awaiting the broker's acknowledgement at once.
#: A batch writes each engine it moved to the changelog once; when faust's producer
#: (Python on the worker's loop) still wrote it, 500 made that a seventh of the loop's
#: time in a burst at 100 symbols; 2,000 (bench_pipeline.py, alternated runs,
#: 2026-12-02) took 2,582-2,947 candles/s to 3,387-4,902 (100 symbols), 2,012-2,339 to
#: 2,478-2,672 (10). Only the commit waits for it: each candle's outputs are sent as it
#: is processed.
MARKET_BATCH = 2000
MARKET_INFLIGHT = 4
#: Outputs no decision waits for, produced with KAFKA_BULK_LINGER_MS (see `_send`).
BULK_TOPICS = frozenset({"market.indicators.v1", "snapshots.bundles.v1"})
GATE_BATCH = 100
#: An idle agent's open batch is sealed this long after its last event (streams/batching.py).
SEAL_AFTER = 0.005
LAG_INTERVAL = 5.0
REPO_STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
T = TypeVar("T", bound="ChangelogTable")


class Context:
    """The latest of everything the strategies are evaluated against (one per process)."""

    def __init__(self, account_id: str, code_version: str) -> None:
        self.account_id = account_id
        self.code_version = code_version
        self.calendar: dict[str, dict[str, Any]] = {}
        self.calendar_last_success: datetime | None = None
        self.news: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.accounts: dict[str, dict[str, Any]] = {}
        self.strategies: dict[str, Strategy] = {}
        #: (symbol, timeframe) -> the active strategies for it; emptied on any change
        self._strategies_for: dict[tuple[str, str], list[Strategy]] = {}
        self.risk_config: dict[str, dict[str, Any]] = {}
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.positions: dict[str, tuple[int, int]] = {}
        self.caught_up = asyncio.Event()

    def apply(self, topic: str, partition: int, offset: int, value: dict[str, Any]) -> None:
        """Fold one context record in."""
        self.positions[topic] = (partition, offset)
        _FOLDERS[topic](self, value)

    def _calendar_event(self, value: dict[str, Any]) -> None:
        self.calendar[value["event_id"]] = value
        self._calendar_success(value["captured_at"])

    def _calendar_success(self, at: datetime | None) -> None:
        if at is not None and (self.calendar_last_success is None
                               or at > self.calendar_last_success):
            self.calendar_last_success = at

    def _news_item(self, value: dict[str, Any]) -> None:
        self.news[value["item_id"]] = value
        while len(self.news) > NEWS_KEEP:
            self.news.popitem(last=False)

    def _account(self, value: dict[str, Any]) -> None:
        self.accounts[value["account"]] = value

    def _strategy(self, value: dict[str, Any]) -> None:
        try:
            self.strategies[value["strategy_id"]] = parse_strategy_json(value["definition_json"])
            self._strategies_for.clear()
        except StrategyError as exc:
            log.error("strategy %s on the state topic is invalid: %s", value["strategy_id"], exc)

    def _risk_config(self, value: dict[str, Any]) -> None:
        self.risk_config[value["account"]] = value

    def _feed_health(self, value: dict[str, Any]) -> None:
        if "calendar" in str(value.get("feed")):  # calendar, demo-calendar, ...
            self._calendar_success(value.get("last_success"))

    def market(self, candle_input: tuple[str, int, int]) -> MarketContext:
        """A frozen view for one evaluation; `candle_input` is (topic, partition, offset)
        of the candle being evaluated."""
        topic, partition, offset = candle_input
        return MarketContext(
            account_id=self.account_id, code_version=self.code_version,
            calendar=tuple(self.calendar.values()),
            calendar_last_success=self.calendar_last_success,
            news=tuple(self.news.values()), account=self.accounts.get(self.account_id),
            latest=self.latest,
            positions_of_inputs={**self.positions, topic: (partition, offset)},
        )

    def strategies_for(self, symbol: str, timeframe: str) -> list[Strategy]:
        """Active strategies that trade this symbol on this timeframe, in id order
        (asked for every candle; the answer changes only with a strategy record)."""
        found = self._strategies_for.get((symbol, timeframe))
        if found is None:
            found = [s for _, s in sorted(self.strategies.items())
                     if s.is_active and s.allows_symbol(symbol)
                     and (not s.timeframes or timeframe in s.timeframes)]
            self._strategies_for[(symbol, timeframe)] = found
        return found


_FOLDERS = {
    "calendar.events.v1": Context._calendar_event,
    "news.items.v1": Context._news_item,
    "account.state.v1": Context._account,
    "state.strategies.v1": Context._strategy,
    "state.risk_config.v1": Context._risk_config,
    "feeds.health.v1": Context._feed_health,
}
CONTEXT_TOPICS = tuple(_FOLDERS)


def _broker_url(settings: Settings) -> list[str]:
    return [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")]


class WorkerConsumer(FastDrainConsumer, FairFetchConsumer):
    """The worker's faust consumer: records handed over stay handed over
    (streams/redelivery.py), cheaply (streams/fast_drain.py), a few hundred per partition
    at a time (streams/fetching.py)."""


class WorkerApp(faust.App):
    """faust's app without its `Monitor` among the sensors.

    faust calls every sensor for every record it hands over and every event a stream
    takes and finishes; its one sensor by default, the `Monitor`, keeps statistics for
    faust's web views, which the worker turns off (`web_enabled=False`: the worker's
    metrics are its own, streams/metrics.py). In `bench_pipeline.py` bursts (py-spy
    with `--gil`, 2026-12-04) those calls were 3-4 % of the worker's GIL time. The
    monitor object stays: faust's consumer still reports end and committed offsets to it
    directly, and nothing reads them.
    """

    def on_init_dependencies(self) -> Any:
        dependencies = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        return dependencies


class WorkerStalled(RuntimeError):
    """An agent stopped making progress with records waiting (see streams/watchdog.py)."""


class WorkerStopping(RuntimeError):
    """A batch met a worker that already failed: it is left uncommitted."""


def _headers(event: Any, exc: Exception, stage: str, agent: str) -> Headers:
    msg = event.message
    return error_headers(msg.topic, msg.partition, msg.offset, exc, stage, agent,
                         msg.headers or ())


class Worker:
    """Builds the Faust app for one deployment (catalog prefix) and its agents."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog(prefix=settings.topic_prefix)
        self.key = command_key(settings)
        self.context = Context(settings.account, settings.code_version)
        datadir = settings.state_dir / "faust"
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = WorkerApp(
            f"{self.catalog.prefix}ai-trader-streams",
            broker=_broker_url(settings),
            store="memory://",
            # faust makes this directory even for memory tables: under the state dir,
            # not in whatever directory the worker was started from
            datadir=str(datadir / "{conf.id}"),
            value_serializer="raw",
            key_serializer="raw",
            topic_replication_factor=settings.topic_replication_factor,
            topic_allow_declare=True,
            producer_linger=settings.producer_linger_ms / 1000.0,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            broker_commit_every=1000,
            broker_commit_interval=1.0,
            web_enabled=False,
            # A worker killed outright holds its partitions until its session expires:
            # 10 s instead of faust's 60 s, so a restarted worker takes over quickly.
            broker_session_timeout=10.0,
            broker_heartbeat_interval=3.0,
            table_cleanup_interval=3600.0,
        )
        # records faust handed over stay handed over; each hand-over without a task race;
        # a few hundred records per partition per hand-over batch; fetches held by the
        # broker KAFKA_CONSUMER_FETCH_WAIT_MS at most, not 1.5 s, or
        # KAFKA_IDLE_FETCH_WAIT_MS when idle (streams/fetching.py)
        redelivery.install(self.app, type("WorkerConsumer", (WorkerConsumer,), {
            "fetch_max_wait_ms": max(settings.consumer_fetch_wait_ms, 1),
            "idle_fetch_wait_ms": settings.idle_fetch_wait_ms}))
        self._outputs: OutputProducer | None = None
        self._bulk: OutputProducer | None = None
        #: serves the delivery reports of the worker's librdkafka producers on its event
        #: loop (streams/outputs.py)
        self.pump = ReportPump()
        # the tables' changelog records go through librdkafka too (streams/changelog.py),
        # batched like the bulk outputs: nothing waits for them but the next commit
        self.changelog = Changelog(settings, settings.bulk_linger_ms,
                                   on_failure=self._changelog_failed, pump=self.pump)
        changelog.install(self.app, self.changelog)
        self.app.on_before_shutdown.connect(self._close_outputs)
        t = self.catalog.name
        self.candles = self.app.topic(t("market.candles.v1"), key_type=bytes, value_type=bytes)
        self.gate_topics = self.app.topic(
            t("gate.inbox.v1"), t("account.state.v1"), t("orders.results.v1"),
            key_type=bytes, value_type=bytes)
        # Table values are JSON bytes encoded here: explicit, and independent of faust's codecs.
        self.engines = self._table(ChangelogTable, "engines",
                                   self._partitions("market.candles.v1"))
        gate_parts = self._partitions("gate.inbox.v1")
        # The book record is the gate's commit point (see streams.gate_journal); the keyed
        # stores, "account|id" -> JSON, are written from its journal once it has landed.
        self.books = self._acked_table("books", gate_parts)
        self.gate_stores = {name: self._acked_table(f"gate-{name}", gate_parts)
                            for name in ("pending", "decided", "commands")}
        self._books: dict[str, tuple[bytes, Book, dict[str, TableView]]] = {}
        self._journals: dict[str, tuple[bytes | None, Journal]] = {}
        self.app.agent(self.candles, name="market")(self._market_agent)
        self.app.agent(self.gate_topics, name="gate")(self._gate_agent)
        self.app.task(self._context_task)
        self.app.task(self._seed_task)
        self.app.task(self._freeze_startup_heap)
        self.app.timer(LAG_INTERVAL)(self._measure_lag)
        self._engine_cache: dict[bytes, tuple[bytes, IndicatorEngine]] = {}
        # engines moved by a sealed batch whose table write is still to come: key -> batches
        self._inflight: dict[bytes, int] = {}
        # the ideas the market agent derived, for the gate reading their inbox records back
        self.derivations = Derivations()
        self._inbox_topic = self.catalog.name("gate.inbox.v1")
        self.failed: Exception | None = None
        #: the context task's consumer, also asked for end offsets by the lag timer
        self._offsets_consumer: AIOKafkaConsumer | None = None
        # when each agent last finished an event, or last had nothing waiting (watchdog)
        self._progress = {"market": time.monotonic(), "gate": time.monotonic()}
        self._agent_topics = {"market": ("market.candles.v1",),
                              "gate": ("gate.inbox.v1", "account.state.v1",
                                       "orders.results.v1")}

    def _partitions(self, logical: str) -> int:
        return self.catalog.spec(logical).partitions

    def _acked_table(self, name: str, partitions: int) -> AckedTable:
        return self._table(AckedTable, name, partitions)

    def _table(self, kind: type[T], name: str, partitions: int) -> T:
        table = kind(self.app, name=name, beacon=self.app.tables.beacon,
                     partitions=partitions, key_type=bytes, value_type=bytes)
        table.changelog = self.changelog
        self.app.tables.add(table)
        return table

    def _changelog_failed(self, failure: ChangelogFailed) -> None:
        """A table write was refused: stop the worker (its offsets stay uncommitted)."""
        asyncio.ensure_future(self._crash("changelog", failure))

    # ---------------------------------------------------------------- publishing

    @property
    def outputs(self) -> OutputProducer:
        """The producer of every output record (made on first use, inside the worker)."""
        if self._outputs is None:
            self._outputs = OutputProducer(self.settings, pump=self.pump)
        return self._outputs

    @property
    def bulk(self) -> OutputProducer:
        """The producer of the outputs off the decision path (made on first use)."""
        if self._bulk is None:
            self._bulk = OutputProducer(self.settings, name="outputs-bulk", pump=self.pump,
                                        **{"linger.ms": self.settings.bulk_linger_ms})
        return self._bulk

    async def _close_outputs(self, sender: Any, /, *args: Any, signal: Any,
                             **kwargs: Any) -> None:
        """At shutdown: deliver what is queued. The agents may still be finishing a unit
        of work and faust's last flush still waits for the changelog, so the producers
        stay usable and the pump goes on serving their reports."""
        for producer in (self._outputs, self._bulk, self.changelog):
            if producer is not None:
                await asyncio.get_running_loop().run_in_executor(None, producer.close)

    async def _send(self, deliveries: Deliveries, logical: str, key: str,
                    record: Mapping[str, Any],
                    reuse: Mapping[str, Encoded] | None = None) -> bytes:
        """Encode and enqueue one output; acknowledged when `deliveries.wait()` returns.
        Returns the record's bytes."""
        value = self.catalog.codec(logical).encode(record, reuse)
        await self._send_value(deliveries, logical, key, value)
        return value

    async def _send_value(self, deliveries: Deliveries, logical: str, key: str,
                          value: bytes) -> bytes:
        """Enqueue one output's bytes, encoded by the topic's codec."""
        metrics.events_out(logical).inc()
        producer = self.bulk if logical in BULK_TOPICS else self.outputs
        await producer.send(deliveries, self.catalog.name(logical), key.encode(), value)
        return value

    async def _dead_letter(self, event: Any, exc: Exception, stage: str, agent: str) -> None:
        msg = event.message
        logical = self.catalog.logical(msg.topic)
        metrics.DEAD_LETTERS.labels(topic=logical, stage=stage).inc()
        log.warning("dead-lettered %s[%s]@%s (%s): %s: %s", msg.topic, msg.partition,
                    msg.offset, stage, type(exc).__name__, exc)
        deliveries = self.outputs.deliveries()
        await self.outputs.send(deliveries, self.catalog.dlq(logical), msg.key, msg.value,
                                _headers(event, exc, stage, agent))
        await deliveries.wait()

    async def _crash(self, agent: str, exc: Exception) -> None:
        """Not bad input but a broken environment (bus, tables): stop the whole worker,
        with the event's offset uncommitted, and let the supervisor restart it. Faust
        would otherwise restart the agent alone and carry on past the event."""
        log.critical("agent %s failed: %s: %s; stopping the worker", agent,
                     type(exc).__name__, exc, exc_info=exc)
        if self.failed is None:
            # Faust's stop can hang (flushing records to a topic that is gone): a worker
            # that is neither working nor gone is never restarted by its supervisor.
            deadline = threading.Timer(self.settings.worker_crash_exit_seconds,
                                       _exit_stuck, (self.settings.worker_crash_exit_seconds,))
            deadline.daemon = True
            deadline.start()
        self.failed = exc
        await self.app.crash(exc)

    def ensure_internal_topics(self) -> None:
        """Create the tables' changelog topics (compacted, partitioned like their source).

        Faust declares them itself through aiokafka, which does not reliably succeed
        against every broker (it silently did not on Kafka 4.x here), and a missing
        changelog is a table that forgets everything on restart.
        """
        from confluent_kafka.admin import NewTopic

        from topics.bus import admin_client, wait_until_served

        gate_parts = self._partitions("gate.inbox.v1")
        wanted = {
            f"{self.app.conf.id}-engines-changelog": self._partitions("market.candles.v1"),
            f"{self.app.conf.id}-books-changelog": gate_parts,
            **{f"{self.app.conf.id}-gate-{name}-changelog": gate_parts
               for name in self.gate_stores},
        }
        admin = admin_client(self.settings)
        existing = admin.list_topics(timeout=30).topics
        missing = [NewTopic(name, parts, self.settings.topic_replication_factor,
                            config={"cleanup.policy": "compact"})
                   for name, parts in wanted.items() if name not in existing]
        if missing:
            for name, fut in admin.create_topics(missing, operation_timeout=30).items():
                try:
                    fut.result()
                except Exception as exc:  # noqa: BLE001 - a concurrent creator wins
                    if "TOPIC_ALREADY_EXISTS" not in str(exc):
                        raise
                log.info("created changelog topic %s", name)
            wait_until_served(admin, {t.topic: wanted[t.topic] for t in missing}, 30)
        for name, parts in wanted.items():
            have = existing.get(name)
            if have is not None and len(have.partitions) != parts:
                raise RuntimeError(f"{name} has {len(have.partitions)} partitions, "
                                   f"its table's source has {parts}")

    def _decode(self, event: Any) -> tuple[str, dict[str, Any]]:
        logical = self.catalog.logical(event.message.topic)
        return logical, self.catalog.codec(logical).decode(event.value)

    # ---------------------------------------------------------------- market agent

    def _engine(self, key: bytes, symbol: str, timeframe: str) -> IndicatorEngine:
        """The engine for a key: the live object while a batch that moved it is still on
        its way to the table, or while the table holds what this process wrote last (no
        JSON per candle); else rebuilt from the table (after a restart or a rebalance)."""
        cached = self._engine_cache.get(key)
        if cached is not None and key in self._inflight:
            return cached[1]
        stored = self.engines.get(key)
        if cached is not None and stored is not None and cached[0] is stored:
            return cached[1]
        engine = (IndicatorEngine(symbol, timeframe) if stored is None
                  else IndicatorEngine.from_state(orjson.loads(stored)))
        self._engine_cache[key] = (stored or b"", engine)
        return engine

    async def _market_agent(self, stream: Any) -> None:
        """Candles in natural batches, their acknowledgements awaited off the hot path.

        A batch takes the candles that are waiting, up to `MARKET_BATCH`, and closes as
        soon as none is (a lone candle is never held back for company). Its outputs are
        enqueued as it goes; at the close the engines it moved are serialised and the
        batch goes to `_complete_market_batch`, which waits for the broker's
        acknowledgements, then writes the engines to their table, then acks the candles
        (their offsets become committable). The agent meanwhile goes on with the next
        candles, up to `MARKET_INFLIGHT` batches ahead: waiting for acknowledgements no
        longer idles it. The guarantees are those of one batch at a time: a crash before
        the table write replays the candles onto the old state and re-sends the same
        records; state never runs ahead of what was published, and offsets never run
        ahead of state.
        """
        stream = stream.noack()
        batcher: Batcher[_MarketBatch] = Batcher(
            lambda: _MarketBatch(self.outputs.deliveries()),
            lambda batch: self._complete_market_batch(stream, batch),
            max_size=MARKET_BATCH, inflight=MARKET_INFLIGHT, seal_after=SEAL_AFTER,
            on_seal=self._sealed_market_batch)
        await self._run_batches("market", stream, batcher, self._market_batch_event)

    async def _market_batch_event(self, event: Any, batch: _MarketBatch) -> bool:
        """One candle into the open batch; False when the worker is stopping."""
        if not self.context.caught_up.is_set():
            # After a start, strategies and context come back from their topics:
            # evaluating before they are read would silently skip ideas.
            await self.context.caught_up.wait()
        started = time.perf_counter()
        await self._market_event(event, batch.deliveries, batch.touched)
        if self.failed is not None:
            return False  # the event failed: its batch must never be completed
        batch.events.append(event)
        batch.busy += time.perf_counter() - started
        return True

    async def _run_batches(self, agent: str, stream: Any, batcher: Batcher[Any],
                           process: Callable[[Any, Any], Awaitable[bool]]) -> None:
        """Feed an agent's events to `process` in the open batch of `batcher`, whose
        sealed batches a task completes meanwhile; return when the worker is stopping."""
        waiting = stream.channel.queue  # what faust has fetched and not yet handed over
        completing = asyncio.ensure_future(self._completing(agent, batcher))
        try:
            async for event in stream.events():
                await batcher.room()
                if completing.done() or self.failed is not None:
                    return  # the worker is stopping: nothing more is completed
                batcher.busy = True  # the seal timer waits for this event
                try:
                    carry_on = await process(event, batcher.open)
                finally:
                    batcher.busy = False
                    _current_event.set(None)
                if not carry_on:
                    return
                batcher.added(more_waiting=not waiting.empty())
        finally:
            batcher.close()
            completing.cancel()

    async def _completing(self, agent: str, batcher: Batcher[Any]) -> None:
        """Run an agent's batch completions; an error stops the worker (the batch's events
        stay unacked, so the restarted worker processes them again)."""
        try:
            await batcher.run()
        except WorkerStopping:
            pass  # the failure that stops the worker is logged already
        except Exception as exc:
            await self._crash(agent, exc)

    def _sealed_market_batch(self, batch: _MarketBatch) -> None:
        for key in batch.seal():
            self._inflight[key] = self._inflight.get(key, 0) + 1

    async def _complete_market_batch(self, stream: Any, batch: _MarketBatch) -> None:
        """Acknowledgements, then the engines' table writes, then the candles' acks."""
        await batch.deliveries.wait()  # DeliveryFailed: the engines stay behind
        if self.failed is not None:
            raise WorkerStopping("the worker failed: batch left uncommitted")
        try:
            for key, raw, engine, last in batch.states:
                # A table write goes to the changelog partition of "the current event":
                # the last candle of the key in the batch (same partition).
                _current_event.set(weakref.ref(last))
                self.engines[key] = raw
                self._engine_cache[key] = (raw, engine)
                left = self._inflight.pop(key) - 1
                if left:
                    self._inflight[key] = left
        finally:
            _current_event.set(None)
        for event in batch.events:
            await stream.ack(event)
        self._progress["market"] = time.monotonic()
        metrics.PROCESSING.labels(agent="market").observe(
            batch.busy / max(len(batch.events), 1))

    async def _market_event(self, event: Any, deliveries: Deliveries,
                            touched: dict[bytes, tuple[IndicatorEngine, Any]]) -> None:
        try:
            _, candle = self._decode(event)
        except CodecError as exc:
            await self._dead_letter(event, exc, "decode", "market")
            return
        metrics.events_in("market.candles.v1").inc()
        try:
            await self._on_candle(event, candle, deliveries, touched)
        except (BundleMismatch, ValueError, KeyError, TypeError) as exc:
            await self._dead_letter(event, exc, "process", "market")
        except Exception as exc:
            await self._crash("market", exc)

    async def _on_candle(self, event: Any, candle: dict[str, Any],
                         deliveries: Deliveries,
                         touched: dict[bytes, tuple[IndicatorEngine, Any]]) -> None:
        symbol, timeframe = candle["symbol"], candle["timeframe"]
        key = f"{symbol}|{timeframe}".encode()
        engine = touched[key][0] if key in touched else self._engine(key, symbol, timeframe)
        update = engine.update(records.candle(candle))
        if update.status in (UpdateStatus.IGNORED, UpdateStatus.REJECTED):
            metrics.CANDLES_SKIPPED.labels(status=str(update.status)).inc()
            if update.status is UpdateStatus.REJECTED:
                raise ValueError(f"candle rejected: {update.reason}")
            return
        touched[key] = (engine, event)
        values = update.values
        if values is None:
            return
        snapshot = records.indicators_record(values, event.message.partition,
                                             event.message.offset)
        await self._send(deliveries, "market.indicators.v1", symbol, snapshot)
        self.context.latest[(symbol, timeframe)] = snapshot
        if not candle.get("closed", True):
            return
        strategies = self.context.strategies_for(symbol, timeframe)
        if not strategies:
            return
        ctx = self.context.market(
            ("market.candles.v1", event.message.partition, event.message.offset))
        for strategy in strategies:
            proposal = propose(strategy, candle, snapshot, ctx)
            if proposal is None:
                continue
            metrics.IDEAS.labels(strategy=strategy.strategy_id).inc()
            # the bundle is written once: its bytes go to its topic and into the message
            value, bundle = self.catalog.codec("snapshots.bundles.v1").encode_reusable(
                proposal.bundle)
            await self._send_value(deliveries, "snapshots.bundles.v1", ctx.account_id, value)
            message = {"account": ctx.account_id, "idea": proposal.idea_record,
                       "bundle": proposal.bundle, "command": None}
            sent = await self._send(deliveries, "gate.inbox.v1", ctx.account_id, message,
                                    reuse={"bundle": bundle})
            self.derivations.put(sent, message, proposal)

    # ---------------------------------------------------------------- gate agent

    def _book(self, account: str) -> tuple[Book, dict[str, TableView], Journal]:
        """The account's book: the cached object while the table still holds what this
        process wrote last (no JSON parsing per event), else rebuilt from the table."""
        stored = self.books.get(account.encode())
        cached = self._books.get(account)
        kept = self._journals.get(account)
        if kept is not None and kept[0] is stored:
            journal = kept[1]  # this process wrote that record: its acks are known
        else:
            deltas = [] if stored is None else orjson.loads(stored).get("journal", [])
            journal = Journal.from_record(deltas)
            self._journals[account] = (stored, journal)
            if deltas:
                log.info("gate: account %s read back with %d journalled store change(s); "
                         "writing them to the stores again", account, len(deltas))
        if cached is not None and stored is not None and cached[0] is stored:
            return cached[1], cached[2], journal
        views = {name: TableView(table, f"{account}|", name, journal)
                 for name, table in self.gate_stores.items()}
        stores = {"pending": views["pending"], "decided": views["decided"],
                  "commands": views["commands"]}
        if stored is not None:
            return Book.from_state(orjson.loads(stored), **stores), views, journal
        log.info("gate: new book for account %s (default risk config)", account)
        return Book.new(account, default_risk_config(), self.settings.code_version,
                        **stores), views, journal

    async def _gate_agent(self, stream: Any) -> None:
        """Gate events in natural batches (those waiting, up to `GATE_BATCH`).

        Each event is applied in order to its account's book in memory and its outputs
        are enqueued. When the batch is sealed (nothing more waiting, or full),
        `_complete_gate_batch` waits for the broker's acknowledgement of all of them
        once, then writes each touched book record once (the commit point, holding the
        batch's store changes in its journal), then acks the events. The next event
        waits for that (one batch in flight): the books never move while a batch is
        being committed. A crash before the book write replays the whole batch onto the
        last committed book and re-sends the same records, exactly as one event at a
        time did; the acknowledgement wait is paid once per batch instead of once per
        event, and no event waits for company.
        """
        stream = stream.noack()
        batcher: Batcher[_GateBatch] = Batcher(
            lambda: _GateBatch(self.outputs.deliveries()),
            lambda batch: self._complete_gate_batch(stream, batch),
            max_size=GATE_BATCH, inflight=1, seal_after=SEAL_AFTER)
        await self._run_batches("gate", stream, batcher, self._gate_batch_event)

    async def _gate_batch_event(self, event: Any, batch: _GateBatch) -> bool:
        started = time.perf_counter()
        if not await self._gate_event(event, batch):
            return False
        batch.events.append(event)
        metrics.PROCESSING.labels(agent="gate").observe(time.perf_counter() - started)
        return True

    async def _gate_event(self, event: Any, batch: _GateBatch) -> bool:
        """Apply one event to its book and send its outputs; False when the worker is
        being stopped (not bad input but a broken environment)."""
        # Table writes go to the changelog partition of "the current event": this one
        # (an account's events all share one partition).
        _current_event.set(weakref.ref(event))
        derived = (self.derivations.take(event.message.value)
                   if event.message.topic == self._inbox_topic else None)
        if derived is not None:  # an idea this process sent: its bytes say no more
            logical, value = "gate.inbox.v1", derived.message
        else:
            try:
                logical, value = self._decode(event)
            except CodecError as exc:
                await self._dead_letter(event, exc, "decode", "gate")
                return True
        metrics.events_in(logical).inc()
        before: tuple[str, tuple[Any, ...], dict[str, dict[str, Any]]] | None = None
        try:
            account = value["account"]
            if account not in batch.accounts:
                book, views, journal = self._book(account)
                # Store writes whose book record has landed; a refused write stops the worker.
                journal.advance(lambda store, key, value: views[store].write_through(key, value))
                batch.accounts[account] = (book, views, journal)
            batch.last_event[account] = event
            book, views, _ = batch.accounts[account]
            # what to go back to if this event turns out to be bad input half-way
            before = (account, book.checkpoint(),
                      {name: dict(view.staged) for name, view in views.items()})
            out = self._apply_to_book(book, event, logical, value,
                                      None if derived is None else derived.proposal)
            for topic, key, record in out.records(account):
                await self._send(batch.deliveries, topic, key, record)
            _count(out)
            for refusal in out.refusals:
                log.warning("command refused for account %s: %s", account, refusal)
        except (InvalidInboxMessage, ValueError, KeyError, TypeError) as exc:
            if before is not None:
                self._undo(batch, *before)
            await self._dead_letter(event, exc, "process", "gate")
        except Exception as exc:
            self._forget(batch)
            await self._crash("gate", exc)
            return False
        return True

    def _undo(self, batch: _GateBatch, account: str, checkpoint: tuple[Any, ...],
              staged: dict[str, dict[str, Any]]) -> None:
        """The account's book and staged store writes as they were before the event."""
        book, views, _ = batch.accounts[account]
        for name, view in views.items():
            view.staged = staged[name]
        book.restore(checkpoint)

    def _forget(self, batch: _GateBatch) -> None:
        """The batch's books may be half-changed: forget them; the table has the last
        state whose outputs were acknowledged."""
        for account, (_, views, _) in batch.accounts.items():
            self._books.pop(account, None)
            for view in views.values():
                view.rollback()

    async def _complete_gate_batch(self, stream: Any, batch: _GateBatch) -> None:
        """Acknowledgements, then one book record per account touched, then the acks."""
        try:
            await batch.deliveries.wait()
            if self.failed is not None:
                raise WorkerStopping("the worker failed: gate batch left uncommitted")
            for account, (book, views, journal) in batch.accounts.items():
                # Only now, with every output acknowledged, does the state move on: one
                # book record holding the batch's store changes, the commit point.
                delta = compact({name: view.take_staged() for name, view in views.items()})
                pending = journal.to_record() + ([delta] if delta else [])
                raw = _dump({**book.to_state(), "journal": pending})
                # the book's changelog partition: that of the account's events
                _current_event.set(weakref.ref(batch.last_event[account]))
                self.books[account.encode()] = raw
                journal.add(delta, self.books.last_write)
                self._books[account] = (raw, book, views)
                self._journals[account] = (raw, journal)
        except BaseException:
            # The books may be half-committed: forget them; the table has the last state
            # whose outputs were acknowledged (the worker is stopping).
            self._forget(batch)
            raise
        finally:
            _current_event.set(None)
        for event in batch.events:
            await stream.ack(event)
        self._progress["gate"] = time.monotonic()

    def _apply_to_book(self, book: Book, event: Any, logical: str, value: dict[str, Any],
                       proposal: Proposal | None) -> Outputs:
        msg = event.message
        if logical == "gate.inbox.v1":
            if value.get("command") is not None:
                out = book.on_command(value["command"], self.key, datetime.now(UTC),
                                      received_at=_append_time(msg),
                                      origin=(msg.partition, msg.offset))
                if out.redelivered:
                    log.info("gate: command %s redelivered from %s[%s]@%s, already applied and"
                             " answered", value["command"].get("command_id"), msg.topic,
                             msg.partition, msg.offset)
            else:
                inputs = [{"topic": logical, "partition": msg.partition, "offset": msg.offset}]
                out = book.on_idea(value, inputs, proposal)
        elif logical == "account.state.v1":
            out = book.on_account(value, datetime.now(UTC))
        else:
            out = book.on_order_result(value, datetime.now(UTC))
        return out

    # ---------------------------------------------------------------- context

    async def _context_task(self) -> None:
        """Read every context topic from the start, then follow it, on all partitions."""
        consumer = AIOKafkaConsumer(
            **self.settings.aiokafka_config(), enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.idle_fetch_wait_ms,
        )
        await consumer.start()
        self._offsets_consumer = consumer
        try:
            parts = []
            for logical in CONTEXT_TOPICS:
                name = self.catalog.name(logical)
                for p in (consumer.partitions_for_topic(name)
                          or await _partitions(consumer, name)):
                    parts.append(TopicPartition(name, p))
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            pending = {tp for tp, end in ends.items() if end > 0}
            if not pending:
                self.context.caught_up.set()
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                for tp, msgs in batch.items():
                    self._fold(tp, msgs)
                    if tp in pending and msgs[-1].offset + 1 >= ends[tp]:
                        pending.discard(tp)
                if batch and not self.context.caught_up.is_set():
                    # the market agent waits for this: reading the context is progress
                    self._progress["market"] = time.monotonic()
                if pending and not batch:
                    pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
                if not pending:
                    self.context.caught_up.set()
        finally:
            self._offsets_consumer = None
            await consumer.stop()

    def _fold(self, tp: TopicPartition, msgs: Iterable[Any]) -> None:
        logical = self.catalog.logical(tp.topic)
        codec = self.catalog.codec(logical)
        for m in msgs:
            try:
                value = codec.decode(m.value)
            except CodecError as exc:
                # The topic's own consumers (sinks) dead-letter it; here it is skipped.
                log.warning("context: skipping %s[%s]@%s: %s", tp.topic, tp.partition,
                            m.offset, exc)
                continue
            self.context.apply(logical, tp.partition, m.offset, value)

    async def _measure_lag(self) -> None:
        """Consumer lag per source topic: high watermark minus committed offset, summed
        over the partitions this worker holds (`streams_consumer_lag_records`)."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})  # no public view
        sources = {}
        for tp in consumer.assignment():
            try:
                sources[tp] = self.catalog.logical(tp.topic)
            except KeyError:
                continue  # a changelog topic
        ends = await self._end_offsets(sources)
        lag: dict[str, int] = {}
        by_partition = lag_of(ends, {tp: consumer.highwater(tp) for tp in sources},
                              {tp: committed.get(tp) for tp in sources})
        for part, waiting in by_partition.items():
            lag[sources[part]] = lag.get(sources[part], 0) + waiting
        for logical, value in lag.items():
            metrics.LAG.labels(topic=logical).set(value)
        await self._watchdog(lag)

    async def _end_offsets(self, partitions: Iterable[Any]) -> dict[Any, int | None]:
        """The broker's end offset of each partition, asked with the context task's
        consumer (no group); empty when it is not running or does not answer in time."""
        consumer = self._offsets_consumer
        if consumer is None:
            return {}
        tps = {TopicPartition(tp.topic, tp.partition): tp for tp in partitions}
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(list(tps)), LAG_INTERVAL)
        except Exception as exc:  # noqa: BLE001 - the consumer's own view is used instead
            log.warning("lag: end offsets not read (%s); using the consumer's view", exc)
            return {}
        return {tps[tp]: end for tp, end in ends.items() if tp in tps}

    async def _watchdog(self, lag: dict[str, int]) -> None:
        """Stop the worker when an agent has records waiting and has processed nothing
        for `worker_stall_seconds`: the supervisor restarts it, and the new process reads
        them again from the committed offsets (see streams/watchdog.py)."""
        if self.failed is not None:
            return
        now = time.monotonic()
        for agent, reads in self._agent_topics.items():
            if not any(lag.get(topic, 0) for topic in reads):
                self._progress[agent] = now  # nothing to do is not a stall
        stalled = stalls(lag, self._agent_topics, self._progress, now,
                         self.settings.worker_stall_seconds)
        if stalled:
            # what it was waiting for, so that the next hang can be traced
            state = (f"context read back: {self.context.caught_up.is_set()}, faust in "
                     f"recovery: {getattr(self.app, 'in_recovery', '?')}, partitions held: "
                     f"{len(self.app.consumer.assignment())}, {self._fetch_state()}")
            log.critical("worker stalled; where the agents are waiting:\n%s",
                         _agent_stacks(self.app))
            await self._crash("watchdog", WorkerStalled(
                "; ".join(map(str, stalled)) + f" ({state})"))

    def _fetch_state(self) -> str:
        """Faust's fetch bookkeeping per source topic (private attributes: diagnostics only)."""
        consumer = self.app.consumer
        parts = []
        for label, attr in (("active", "_active_partitions"), ("paused", "_paused_partitions"),
                            ("buffered", "_buffered_partitions")):
            tps = getattr(consumer, attr, None) or set()
            counts: dict[str, int] = {}
            for tp in tps:
                try:
                    logical = self.catalog.logical(tp.topic)
                except KeyError:
                    logical = "changelogs"
                counts[logical] = counts.get(logical, 0) + 1
            parts.append(f"{label} {dict(sorted(counts.items()))}")
        parts.append(f"flow active {getattr(consumer, 'flow_active', '?')}")
        try:  # aiokafka's own view of the candle partitions: position vs committed
            aio = getattr(consumer, "_thread")._consumer  # noqa: B009
            committed = getattr(consumer, "_committed_offset", {})
            name = self.catalog.name("market.candles.v1")
            views = []
            for tp in sorted(aio.assignment()):
                if tp.topic != name:
                    continue
                state = aio._subscription.subscription.assignment.state_value(tp)
                views.append(f"p{tp.partition} position {state.position} committed "
                             f"{committed.get(tp)} highwater {consumer.highwater(tp)} "
                             f"paused {state.paused}")
            parts.append("candles: " + "; ".join(views))
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the stall
            parts.append(f"candles: ? ({exc!r})")
        parts.append(f"flow control {self.app.flow_control.is_active()}")
        return ", ".join(parts)

    async def _freeze_startup_heap(self) -> None:
        """Once started, keep the garbage collector's full passes off what start-up made.

        A full collection walks every object the interpreter tracks -- faust, aiokafka,
        the schemas, the modules: over 70 ms in the bench (2026-12-02), a candle or an
        idea waiting behind it, every few thousand candles. What exists once the worker
        has caught up lives as long as the process, so it moves to the permanent
        generation (`gc.freeze`); what the worker makes later is collected as before."""
        await self.context.caught_up.wait()
        gc.collect()
        gc.freeze()
        log.info("start-up heap frozen: %d objects left out of full collections",
                 gc.get_freeze_count())

    async def _seed_task(self) -> None:
        """First start of an account: seed the default risk config and the shipped
        strategies through signed commands (the gate is the only writer of state)."""
        await self.context.caught_up.wait()
        account = self.settings.account
        if account in self.context.risk_config or self.context.strategies:
            return
        commands = seed_commands(account, self.key)
        deliveries = self.outputs.deliveries()
        for command in commands:
            await self._send(deliveries, "gate.inbox.v1", account, {
                "account": account, "idea": None, "bundle": None, "command": command})
        await deliveries.wait()
        log.info("seeded account %s: default risk config and %d strategies",
                 account, len(commands) - 1)


def _await_chain(coro: Any) -> list[str]:
    chain = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) \
            or getattr(coro, "ag_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        else:
            chain.append(type(coro).__name__)
        coro = (getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
                or getattr(coro, "ag_await", None))
    return chain


def _agent_stacks(app: Any) -> str:
    """Where each agent's actors are suspended (their await chains, outermost first),
    with the state of their input queues: what a stalled agent was waiting for."""
    lines = []
    for name, agent in app.agents.items():
        for aref in getattr(agent, "_actors", ()):
            task = getattr(aref, "actor_task", None)
            stream = getattr(aref, "stream", None)
            channel = getattr(stream, "channel", None)
            queue = getattr(channel, "queue", None)
            lines.append(
                f"agent {name}: task done {None if task is None else task.done()}, "
                f"stream passive {getattr(stream, '_passive', '?')}, "
                f"queue {getattr(queue, 'qsize', lambda: '?')()}")
            lines.extend("  " + link for link in _await_chain(getattr(aref, "it", None)))
    return "\n".join(lines) or "(no agent found)"


class _MarketBatch:
    """Candles of one market batch, their outputs, and the engines they moved."""

    __slots__ = ("deliveries", "events", "touched", "states", "busy")

    def __init__(self, deliveries: Deliveries) -> None:
        self.deliveries = deliveries
        self.events: list[Any] = []
        self.touched: dict[bytes, tuple[IndicatorEngine, Any]] = {}
        self.states: list[tuple[bytes, bytes, IndicatorEngine, Any]] = []
        self.busy = 0.0

    def seal(self) -> list[bytes]:
        """Serialise the engines as this batch left them (they move on with the next
        batch before this one is written); the keys."""
        self.states = [(key, _dump(engine.to_state()), engine, last)
                       for key, (engine, last) in self.touched.items()]
        return list(self.touched)


class _GateBatch:
    """Events of one gate batch, their outputs, and the books they moved."""

    __slots__ = ("deliveries", "events", "accounts", "last_event")

    def __init__(self, deliveries: Deliveries) -> None:
        self.deliveries = deliveries
        self.events: list[Any] = []
        self.accounts: dict[str, tuple[Book, dict[str, TableView], Journal]] = {}
        self.last_event: dict[str, Any] = {}


class TableView(MutableMapping[str, Any]):
    """One account's keys of a gate store as a JSON mapping, for the pure `Book`.

    Writes are staged: the gate hands them to the account's `Journal` only after the
    event's outputs are acknowledged (`take_staged`), and the journal writes them to the
    table once the book record holding them has landed. Reads see the staged value, then
    the journal's, then the table's. Iteration is not offered: the book never scans a
    store.
    """

    def __init__(self, table: Any, prefix: str, store: str, journal: Journal) -> None:
        self.table = table
        self.prefix = prefix
        self.store = store
        self.journal = journal
        self.staged: dict[str, Any] = {}

    def _key(self, key: str) -> bytes:
        return (self.prefix + key).encode()

    def _value(self, key: str) -> Any:
        """The key's value, None when absent (the staged, then journalled, then stored)."""
        if key in self.staged:
            return self.staged[key]
        value = self.journal.lookup(self.store, key)
        if value is MISSING:
            raw = self.table.get(self._key(key))
            return None if raw is None else orjson.loads(raw)
        return value

    def __getitem__(self, key: str) -> Any:
        value = self._value(key)
        if value is None:
            raise KeyError(key)
        return value

    # Mapping's own `in` and `get` go through a KeyError for every absent key: the gate
    # asks both of every idea
    def __contains__(self, key: object) -> bool:
        return type(key) is str and self._value(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self._value(key)
        return default if value is None else value

    def __setitem__(self, key: str, value: Any) -> None:
        if value is None:
            raise TypeError("a gate store does not hold None")
        self.staged[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - KeyError when absent, as a dict would
        self.staged[key] = None

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a gate store is not iterable")

    def __len__(self) -> int:
        raise TypeError("a gate store has no length")

    def write_through(self, key: str, value: Any) -> Any:
        """Write a journalled value (None: delete) to the table; the changelog write's
        acknowledgement, or None when nothing was sent."""
        k = self._key(key)
        if value is None:
            if k not in self.table:
                return None
            del self.table[k]
        else:
            self.table[k] = _dump(value)
        return self.table.last_write

    def take_staged(self) -> dict[str, Any]:
        """The event's writes (None: deleted), handed over to the journal."""
        staged, self.staged = self.staged, {}
        return staged

    def rollback(self) -> None:
        self.staged.clear()


class ChangelogTable(LibrdkafkaChangelogMixin, faust.Table):
    """A Faust table whose changelog records librdkafka produces (streams/changelog.py)."""


class AckedTable(ChangelogTable):
    """A table that keeps the acknowledgement of its last changelog write, so the
    gate can tell when its book record, and then its store writes, have landed."""

    last_write: Any = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().send_changelog(*args, **kwargs)
        self.last_write = fut
        return fut


def _load(value: bytes | None) -> Any:
    return None if value is None else orjson.loads(value)


def _dump(value: Any) -> bytes:
    """Table values: orjson writes the shortest float text that reads back to the same
    double, so an engine restored from its changelog continues bit-identically."""
    return orjson.dumps(value, default=_decimal_text)


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not serialisable in a table value: {type(value).__name__}")


def _count(out: Outputs) -> None:
    for record in out.decisions:
        metrics.DECISIONS.labels(action=record["action"], outcome=record["outcome"] or "").inc()
        for check in record["checks"]:
            if not check["passed"]:
                metrics.FAILED_CHECKS.labels(check=check["name"]).inc()
    for refusal in out.refusals:
        metrics.REFUSALS.labels(code=refusal.split(":", 1)[0]).inc()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
    return consumer.partitions_for_topic(topic) or set()


SEED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ai-trader.local/seed")


def seed_commands(account: str, key: bytes, now: datetime | None = None,
                  directory: Path = REPO_STRATEGIES) -> list[dict[str, Any]]:
    """Signed commands that set the default risk config and every shipped strategy.

    Command ids derive from the content, so two workers seeding at once are one seed:
    the second copy is refused as a replay.
    """
    config: RiskConfig = default_risk_config()
    at = now or datetime.now(UTC)
    out = [new_command(
        "set_risk_config", account, "system:seed", key, now=at,
        payload=config.to_dict(),
        command_id=str(uuid.uuid5(SEED_NAMESPACE, f"{account}|risk|{config.to_dict()}")),
    )]
    for path in sorted(directory.glob("*.json")):
        definition = json.loads(path.read_text())
        strategy = parse_strategy(definition)
        out.append(new_command(
            "put_strategy", account, "system:seed", key, now=at,
            strategy_id=strategy.strategy_id, payload={"definition": definition},
            command_id=str(uuid.uuid5(SEED_NAMESPACE,
                                      f"{account}|strategy|{strategy.definition_hash}")),
        ))
    return out


def _append_time(msg: Any) -> datetime | None:
    """When the broker appended a record, if the topic says so (LogAppendTime), else None.

    A producer sets CreateTime itself; only the broker's time is trusted for freshness.
    """
    if msg.timestamp_type != LOG_APPEND_TIME or msg.timestamp is None:
        return None
    return datetime.fromtimestamp(msg.timestamp, UTC)


#: Exit code of a worker whose stop after a failure did not finish in time (EX_SOFTWARE).
CRASH_EXIT_CODE = 70


def _exit_stuck(seconds: float) -> None:
    log.critical("the worker failed and is still stopping after %.0f s: exiting now, "
                 "offsets uncommitted", seconds)
    logging.shutdown()
    os._exit(CRASH_EXIT_CODE)


def configure_interpreter(settings: Settings) -> None:
    """The worker's GIL switch interval (CPython's default: 5 ms).

    The event loop does all of the pipeline's work (the delivery reports too, since
    2026-12-03: streams/outputs.py); faust's consumer thread parses the fetch responses.
    While it waits, CPython makes the loop hand the GIL over after each switch interval,
    and each hand-over is a futex round trip and a cold cache (the figures below were
    measured with delivery-report threads as well). In a burst, 20 ms against 5 ms,
    alternated runs (bench_pipeline.py, 10 symbols, 2026-12-03): 3,208 / 4,983 / 4,370
    against 2,400 / 3,486 / 4,329 candles/s, and at 1,000 candles/s paced 4,851 / 4,324
    against 4,256 / 3,377; 0.5 ms took it to 1,782-2,317. Latency is not at stake: the
    loop releases the GIL whenever it waits for I/O, which a worker that keeps up does
    between every few records.
    """
    sys.setswitchinterval(settings.worker_switch_interval_ms / 1000)


def run_worker(settings: Settings) -> int:
    """Run the streams worker until stopped (SIGTERM / Ctrl-C)."""
    configure_interpreter(settings)
    worker = Worker(settings)
    worker.ensure_internal_topics()
    metrics.watch_gc()
    metrics.serve(settings.metrics_port)
    faust.Worker(worker.app, loglevel=settings.log_level.lower(), quiet=True,
                 override_logging=False).execute_from_commandline()
    return 1 if worker.failed is not None else 0
