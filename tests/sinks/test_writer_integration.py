"""The batch writer on the real database: idempotent merges and refused rows isolated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sinks.routes import Record, rows_of
from sinks.writer import ROW_ERRORS, Writer
from tests import factories as f
from tests.sinks.conftest import count, db_name, fetch
from topics.catalog import Catalog
from topics.settings import Settings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _candle_rows(candles: list[dict]) -> list[list]:
    codec = Catalog().codec("market.candles.v1")
    out = []
    for i, c in enumerate(candles):
        raw = codec.encode(c)
        out.append(rows_of(Record("market.candles.v1", 0, i, codec.decode(raw), raw, NOW)))
    return out


@pytest.mark.parametrize("method", ["copy", "executemany"])
def test_writing_the_same_rows_twice_changes_nothing_the_second_time(
        sink_db: Settings, method: str) -> None:
    records = _candle_rows(f.random_candles(40))
    writer = Writer(sink_db.database_dsn(), method)  # type: ignore[arg-type]
    try:
        first = writer.write({"snapshot_market": [row for r in records for _, row in r]})
        second = writer.write({"snapshot_market": [row for r in records for _, row in r]})
    finally:
        writer.close()
    assert first == {"snapshot_market": 40}
    assert second == {"snapshot_market": 0}
    assert count(sink_db, "snapshot_market") == 40


def test_refused_records_are_isolated_and_the_others_committed(sink_db: Settings) -> None:
    candles = f.random_candles(200)
    bad = {17, 118, 199}
    for i in bad:  # valid Avro, but PostgreSQL text cannot hold a NUL
        candles[i] = {**candles[i], "source": "feed\x00"}
    records = _candle_rows(candles)
    writer = Writer(sink_db.database_dsn())
    try:
        with pytest.raises(ROW_ERRORS):
            writer.write({"snapshot_market": [row for r in records for _, row in r]})
        written, refused = writer.write_each(records)
    finally:
        writer.close()
    assert sorted(index for index, _ in refused) == sorted(bad)
    assert all("0x00" in str(exc) for _, exc in refused)
    assert written == {"snapshot_market": 197}
    assert count(sink_db, "snapshot_market") == 197
    stored = {(r[0], r[1]) for r in fetch(sink_db, "SELECT symbol, open_time FROM snapshot_market")}
    assert all((candles[i]["symbol"], candles[i]["open_time"]) not in stored for i in bad)


def test_a_writer_reconnects_after_its_connection_is_killed(sink_db: Settings) -> None:
    import psycopg

    writer = Writer(sink_db.database_dsn())
    try:
        writer.write({"snapshot_market": [row for r in _candle_rows(f.random_candles(3))
                                          for _, row in r]})
        with psycopg.connect(sink_db.database_dsn(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND application_name = 'ai-trader-sinks'",
                          (db_name(sink_db),))
        rows = [row for r in _candle_rows(f.random_candles(6)) for _, row in r]
        with pytest.raises(psycopg.OperationalError):
            writer.write({"snapshot_market": rows})
        assert writer.write({"snapshot_market": rows}) == {"snapshot_market": 3}
    finally:
        writer.close()


def _rows(candles: list[dict]) -> list:
    return [row for r in _candle_rows(candles) for _, row in r]


def _stored(sink_db: Settings) -> list[tuple]:
    return fetch(sink_db, "SELECT symbol, timeframe, open_time, open, high, low, close, volume,"
                          " spread, source, closed FROM snapshot_market"
                          " ORDER BY symbol, timeframe, open_time")


def test_new_rows_are_copied_straight_in_and_a_conflict_falls_back_to_the_merge(
        sink_db: Settings) -> None:
    candles = f.random_candles(30)
    writer = Writer(sink_db.database_dsn())
    try:
        market = writer.connection() and writer.tables["snapshot_market"]
        assert market.direct
        assert writer.write({"snapshot_market": _rows(candles[:20])}) == {"snapshot_market": 20}
        assert (market.direct_batches, market.merged_batches) == (1, 0)
        # rows 10..29: half are there already -> the COPY is refused, the merge decides
        assert writer.write({"snapshot_market": _rows(candles[10:])}) == {"snapshot_market": 10}
        assert (market.direct_batches, market.merged_batches) == (1, 1)
    finally:
        writer.close()
    expected = sorted((c["symbol"], c["timeframe"], c["open_time"], c["open"], c["high"],
                       c["low"], c["close"], c["volume"], c["spread"], c["source"], c["closed"])
                      for c in candles)
    assert _stored(sink_db) == expected  # every double exactly as it was sent


def test_after_a_conflict_the_direct_copy_pauses_then_resumes(sink_db: Settings) -> None:
    candles = f.random_candles(60)
    writer = Writer(sink_db.database_dsn())
    try:
        market = writer.connection() and writer.tables["snapshot_market"]
        writer.write({"snapshot_market": _rows(candles[:10])})
        writer.write({"snapshot_market": _rows(candles[:10])})  # conflict: pause 1 batch
        writer.write({"snapshot_market": _rows(candles[10:20])})  # paused: merged
        writer.write({"snapshot_market": _rows(candles[20:30])})  # direct again
        assert (market.direct_batches, market.merged_batches) == (2, 2)
        writer.write({"snapshot_market": _rows(candles[20:30])})  # conflict: pause 1
        writer.write({"snapshot_market": _rows(candles[20:30])})  # paused
        writer.write({"snapshot_market": _rows(candles[20:30])})  # conflict: pause 2
        assert (market.direct_batches, market.merged_batches) == (2, 5)
    finally:
        writer.close()
    assert count(sink_db, "snapshot_market") == 30


def test_a_key_twice_in_a_batch_goes_through_the_merge_and_the_close_wins(
        sink_db: Settings) -> None:
    bar = f.candle(0)
    forming = {**bar, "close": bar["open"], "closed": False}
    assert forming["close"] != bar["close"]
    writer = Writer(sink_db.database_dsn())
    try:
        market = writer.connection() and writer.tables["snapshot_market"]
        writer.write({"snapshot_market": _rows([bar, forming])})
        assert (market.direct_batches, market.merged_batches) == (0, 1)
        writer.write({"snapshot_market": _rows([forming])})  # a late forming bar: refused
    finally:
        writer.close()
    assert [(r[6], r[10]) for r in _stored(sink_db)] == [(bar["close"], True)]


def test_tables_with_casts_or_finalizers_are_always_staged(sink_db: Settings) -> None:
    writer = Writer(sink_db.database_dsn())
    try:
        writer.connection()
        direct = {name for name, table in writer.tables.items() if table.direct}
    finally:
        writer.close()
    assert "snapshot_market" in direct
    # NUMERIC money, enums and JSONB need the merge's casts; the finalizer reads the stage
    assert not direct & {"snapshot_account", "decision_history", "snapshot_indicators",
                         "trade_ideas", "idea_status_history"}
