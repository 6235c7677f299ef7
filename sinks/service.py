"""The sink service: every catalog topic (and its dead-letter topic) into PostgreSQL.

One consumer group reads all topics; records are decoded, turned into rows
(sinks.routes) and batched. A batch is written in one database transaction
(sinks.writer) and only after the COMMIT are its Kafka offsets committed, so a crash at
any point re-delivers records whose rows may already be there: the writes are
idempotent (ON CONFLICT on the event ids), so nothing is duplicated, and nothing is
committed on the bus before it is in the database.

Writing runs in a writer thread, one batch at a time, while the main thread consumes
and decodes the next one (the database works on its own CPU meanwhile). Batches are
committed in order: batch N+1 is handed over only after batch N is written and its
offsets committed.

When the database goes away the batch is kept and retried with bounded exponential
backoff until it is written; meanwhile the consumer's partitions are paused and it keeps
polling, so it stays in its group. When the database is back, consumption resumes
where it stopped. A record that cannot be decoded, turned into rows or written (the
database refuses one of its values) goes to its topic's dead-letter topic with the
reason, and the sink carries on.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, Message
from confluent_kafka import TopicPartition as TP

from connectors.core.backoff import Backoff
from sinks.batch import Batch, Entry
from sinks.lag import TopicLag, logical_name, measure_lag, sink_topics, topic_partitions
from sinks.metrics import SinkMetrics
from sinks.routes import DLQ_SUFFIX, Builder, DeadLetter, Record, builders, dead_letter_row, rows_by
from sinks.writer import ROW_ERRORS, Method, Row, Writer
from topics.bus import (
    BusProducer,
    admin_client,
    close_consumer,
    consumer_config,
    dead_letter_headers,
    message_headers,
)
from topics.catalog import Catalog
from topics.codec import AvroCodec, CodecError
from topics.settings import Settings

log = logging.getLogger(__name__)

#: Errors of a route builder on an unexpected record: the record is dead-lettered.
TRANSFORM_ERRORS = (KeyError, ValueError, TypeError, ArithmeticError)
#: How long the main thread waits for the writer before pausing its partitions.
PAUSE_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class SinkConfig:
    """Batching, retry and reporting knobs of a sink service."""

    group_id: str = "ai-trader-sinks"
    max_batch: int = 10_000         # records per database transaction at most
    linger_seconds: float = 0.2     # oldest record waits at most this long
    poll_seconds: float = 0.1
    backoff_base: float = 0.2       # first retry after a failed write
    backoff_cap: float = 30.0       # retries never wait longer than this
    lag_interval: float = 5.0       # seconds between lag measurements (0 = never)
    method: Method = "copy"
    # a sink that dies without leaving its group holds its partitions this long
    session_timeout_ms: int = 10_000


@dataclass
class Inflight:
    """A batch handed to the writer thread; `ok` says whether it was written."""

    batch: Batch
    future: Future[bool]
    revoked: set[tuple[str, int]] = field(default_factory=set)


@dataclass(frozen=True)
class Source:
    """What the sink knows about one physical topic it consumes."""

    logical: str
    codec: AvroCodec | None   # None for dead-letter topics (their bytes are kept as they are)
    routes: tuple[tuple[str, Builder], ...] = ()


class _Clock:
    """Kafka timestamps (ms) as datetimes; records of one producer batch share theirs."""

    __slots__ = ("_ms", "_at")

    def __init__(self) -> None:
        self._ms: int | None = None
        self._at = datetime.now(UTC)

    def of(self, msg: Message) -> datetime:
        kind, ms = msg.timestamp()
        if ms != self._ms or kind == TIMESTAMP_NOT_AVAILABLE:
            self._ms, self._at = ms, _timestamp(msg)
        return self._at


def _timestamp(msg: Message) -> datetime:
    kind, ms = msg.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or ms is None or ms < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(ms / 1000, UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class SinkService:
    """Consumes every topic of a catalog into the database until stopped."""

    def __init__(self, settings: Settings, catalog: Catalog, config: SinkConfig | None = None,
                 metrics: SinkMetrics | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.config = config or SinkConfig()
        self.metrics = metrics or SinkMetrics()
        self.writer = Writer(settings.database_dsn(), self.config.method)
        self.consumer = Consumer(consumer_config(
            settings, self.config.group_id,
            **{"session.timeout.ms": self.config.session_timeout_ms}))
        self.dlq = BusProducer(settings, catalog)
        self._admin = admin_client(settings)
        self.batch = Batch()
        self._physical = sink_topics(catalog)
        self._sources = {name: self._source(name) for name in self._physical}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sink-writer")
        self._inflight: Inflight | None = None
        self._stop = threading.Event()
        self._clock = _Clock()
        self._paused = False
        self._next_lag = 0.0
        self._lag_partitions: list[TP] = []
        self._lag_writer = Writer(settings.database_dsn(), specs=(),
                                  application_name="ai-trader-sinks-lag")
        self.consumer.subscribe(self._physical, on_revoke=self._on_revoke)

    def _source(self, physical: str) -> Source:
        logical = logical_name(self.catalog, physical)
        if logical.endswith(DLQ_SUFFIX):
            return Source(logical, None)
        return Source(logical, self.catalog.codec(logical), builders(logical))

    # ------------------------------------------------------------------ main loop

    def run(self, stop: threading.Event) -> None:
        """Consume, write and commit until `stop` is set; then write what is left once."""
        self._stop = stop
        log.info("sink started", extra={"group": self.config.group_id,
                                        "topics": len(self._physical)})
        try:
            while not stop.is_set():
                self.step()
            self.flush(final=True)
        finally:
            self.close()
        log.info("sink stopped")

    def step(self) -> None:
        """One poll; a hand-over when the batch is full, old enough, or the topics idle."""
        room = max(1, self.config.max_batch - len(self.batch))
        messages = self.consumer.consume(room, self.config.poll_seconds)
        for msg in messages:
            self._take(msg)
        if self.batch and (
            len(self.batch) >= self.config.max_batch
            or not messages
            or time.monotonic() - self.batch.started >= self.config.linger_seconds
        ):
            self.flush()
        elif self._inflight is not None and self._inflight.future.done():
            self._finish_inflight()
        self._maybe_report_lag()

    def flush(self, final: bool = False) -> bool:
        """Commit the batch being written, then hand the current one to the writer.

        With `final`, also wait for it. False when a batch was given up because the
        sink is stopping (nothing was committed for it: it is re-delivered later).
        """
        if not self._finish_inflight():
            return False
        if self.batch:
            batch, self.batch = self.batch, Batch()
            for topic, n in batch.consumed.items():
                self.metrics.consumed.labels(topic).inc(n)
            future = self._executor.submit(self._write_until_done, batch, final)
            self._inflight = Inflight(batch, future)
        if final:
            return self._finish_inflight()
        return True

    def close(self) -> None:
        """Leave the group (uncommitted records are re-delivered) and release everything."""
        self._stop.set()
        try:
            self._executor.shutdown(wait=True)
            self.dlq.flush()
        finally:
            close_consumer(self.consumer, self.config.group_id)
            self.writer.close()
            self._lag_writer.close()

    # ------------------------------------------------------------------ records in

    def _take(self, msg: Message) -> None:
        """Turn one message into rows (or a dead letter) and add it to the batch."""
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise KafkaException(err)
            log.warning("sink consumer: %s", err.str())
            return
        topic = msg.topic() or ""
        source = self._sources[topic]
        partition, offset = msg.partition() or 0, msg.offset() or 0
        if source.codec is None:
            rows = [("dead_letters", self._dead_letter_row(msg, source.logical))]
        else:
            rows = self._rows(msg, source, source.codec, partition, offset)
        self.batch.add(Entry(topic, partition, offset, rows, msg), source.logical)

    def _rows(self, msg: Message, source: Source, codec: AvroCodec, partition: int,
              offset: int) -> list[tuple[str, Row]]:
        raw = msg.value()
        try:
            value = codec.decode(raw)
        except CodecError as exc:
            self._dead_letter(msg, exc, "decode")
            return []
        record = Record(source.logical, partition, offset, value, raw or b"",
                        self._clock.of(msg))
        try:
            return rows_by(source.routes, record)
        except TRANSFORM_ERRORS as exc:
            self._dead_letter(msg, exc, "transform")
            return []

    def _dead_letter_row(self, msg: Message, logical: str) -> Row:
        letter = DeadLetter(logical, msg.partition() or 0, msg.offset() or 0, msg.key(),
                            msg.value(), message_headers(msg), _timestamp(msg))
        return dead_letter_row(letter, lambda name: logical_name(self.catalog, name))

    def _dead_letter(self, msg: Message, error: Exception, stage: str) -> None:
        """Send a record's original bytes to its topic's DLQ (thread-safe producer)."""
        logical = self._sources[msg.topic() or ""].logical
        if logical.endswith(DLQ_SUFFIX):
            # a dead letter the database refused has no further topic: say so loudly
            log.error("dead letter %s[%s]@%s not stored: %s: %s", msg.topic(), msg.partition(),
                      msg.offset(), type(error).__name__, error)
            return
        headers = dead_letter_headers(msg, error, stage, self.config.group_id)
        self.dlq.send_raw(self.catalog.dlq(logical), msg.key(), msg.value(), headers)
        self.metrics.dead_letters.labels(logical, stage).inc()
        log.warning("dead-lettered %s[%s]@%s at %s: %s: %s", msg.topic(), msg.partition(),
                    msg.offset(), stage, type(error).__name__, error)

    # ------------------------------------------------------------------ writer thread

    def _write_until_done(self, batch: Batch, final: bool) -> bool:
        """Write a batch, retrying while the database is away; False when given up."""
        backoff = Backoff(base=self.config.backoff_base, cap=self.config.backoff_cap)
        started = time.perf_counter()
        while True:
            try:
                self._write_batch(batch)
            except psycopg.Error as exc:
                self._on_db_error(exc, backoff.failures + 1, len(batch))
                if final or self._stop.is_set():
                    log.warning("sink stopping with %d records unwritten (re-delivered later)",
                                len(batch))
                    return False
                if self._stop.wait(backoff.next_delay()):
                    return False
                continue
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
            return True

    def _write_batch(self, batch: Batch) -> None:
        try:
            written = self.writer.write(batch.by_table())
        except ROW_ERRORS as exc:
            log.warning("batch refused (%s: %s): writing record by record",
                        type(exc).__name__, _first_line(exc))
            entries = list(batch.entries)
            written, refused = self.writer.write_each([e.rows for e in entries])
            for index, error in refused:
                self._dead_letter(entries[index].message, error, "sink")
        self.metrics.db_up.set(1)
        for table, n in written.items():
            self.metrics.rows.labels(table).inc(n)

    def _on_db_error(self, exc: psycopg.Error, attempt: int, size: int) -> None:
        self.metrics.db_up.set(0)
        self.metrics.db_errors.inc()
        self.writer.reset()
        log.warning("database write failed (attempt %d, %d records kept): %s: %s",
                    attempt, size, type(exc).__name__, _first_line(exc))

    # ------------------------------------------------------------------ commits

    def _finish_inflight(self) -> bool:
        """Wait for the batch being written, then commit its offsets; False if given up."""
        inflight = self._inflight
        if inflight is None:
            return True
        written = self._wait_for(inflight.future)
        self._inflight = None
        self._resume()
        if written:
            self._commit(inflight)
        return written

    def _wait_for(self, future: Future[bool]) -> bool:
        """The writer's result; after a while, poll with partitions paused (stay in group)."""
        try:
            return future.result(timeout=PAUSE_AFTER_SECONDS)
        except FutureTimeout:
            pass
        while not future.done():
            assignment = self.consumer.assignment()  # may have changed in a rebalance
            if assignment:
                self.consumer.pause(assignment)
                self._paused = True
            for msg in self.consumer.consume(100, 0.5):
                self._take(msg)  # from partitions assigned since the last pause
            self._maybe_report_lag()
        return future.result()

    def _resume(self) -> None:
        if self._paused:
            assignment = self.consumer.assignment()
            if assignment:
                self.consumer.resume(assignment)
            self._paused = False

    def _commit(self, inflight: Inflight) -> None:
        """Dead letters flushed, then the written batch's offsets."""
        offsets = inflight.batch.offsets(skip=inflight.revoked)
        self.dlq.flush()
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # e.g. a rebalance in between: the rows are written, the new owner of the
            # partition reads them again and the idempotent writes change nothing
            log.warning("offset commit failed (records will be re-delivered): %s", exc)
            return
        self.metrics.batch_records.observe(len(inflight.batch))

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        gone = [(tp.topic, tp.partition) for tp in partitions]
        self.batch.drop(gone)
        if self._inflight is not None:
            self._inflight.revoked.update(gone)

    # ------------------------------------------------------------------ lag

    def _maybe_report_lag(self) -> None:
        if self.config.lag_interval <= 0 or time.monotonic() < self._next_lag:
            return
        self._next_lag = time.monotonic() + self.config.lag_interval
        try:
            lags = self.lag()
        except KafkaException as exc:
            log.warning("lag not measured: %s", exc)
            return
        for lag in lags:
            self.metrics.lag.labels(lag.topic).set(lag.lag)
        self._store_lag(lags)

    def lag(self) -> list[TopicLag]:
        """The group's lag on every topic it consumes (committed = written)."""
        if not self._lag_partitions:
            self._lag_partitions = topic_partitions(self.consumer, self._physical, 10.0)
        return measure_lag(self.consumer, self._admin, self.catalog, self._lag_partitions)

    def _store_lag(self, lags: list[TopicLag]) -> None:
        """Best effort, on its own connection: the lag table is for the UI."""
        if self._paused:  # the database is away: do not wait on it here
            return
        try:
            conn = self._lag_writer.connection()
            with conn.transaction():
                conn.cursor().executemany(
                    "INSERT INTO sink_lag (consumer_group, topic, lag, committed,"
                    " high_watermark, measured_at) VALUES (%s, %s, %s, %s, %s, now())"
                    " ON CONFLICT (consumer_group, topic) DO UPDATE SET lag = EXCLUDED.lag,"
                    " committed = EXCLUDED.committed,"
                    " high_watermark = EXCLUDED.high_watermark,"
                    " measured_at = EXCLUDED.measured_at",
                    [(self.config.group_id, lag.topic, lag.lag, lag.committed,
                      lag.high_watermark) for lag in lags])
        except psycopg.Error as exc:
            log.info("lag not stored: %s", _first_line(exc))
            self._lag_writer.reset()


#: GIL switch interval of a sink process (Python's default is 5 ms).
SWITCH_INTERVAL = 0.0005


def tune_process() -> None:
    """Tune the interpreter for a sink: one CPU-bound thread, one waiting on the database.

    The writer thread gives up the GIL at every round trip to the database (savepoint,
    COPY, commit) and then waits for the decoding main thread to hand it back, which a
    CPU-bound thread does only every switch interval: at the default 5 ms that is up to
    ~25 ms per batch in which the database idles (the "convoy effect"). 0.5 ms gave
    10-20 % more rows per second here.

    Fewer cycle collections: decoded records hold no reference cycles (reference
    counting frees them), but the default threshold runs the cycle collector every 700
    allocations over everything alive, the pending batch included: a few microseconds
    per record. Objects alive at start are frozen out of the collections altogether.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_sinks(settings: Settings, stop: threading.Event, config: SinkConfig | None = None,
              metrics: SinkMetrics | None = None) -> int:
    """`ai-trader sinks`: migrate, then run the sink service until `stop` is set."""
    from sinks.migrate import migrate

    migrate(settings)
    tune_process()
    service = SinkService(settings, Catalog(settings.topic_prefix), config, metrics)
    service.run(stop)
    return 0
