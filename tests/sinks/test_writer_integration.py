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
    for i in bad:  # valid Avro, but too large for NUMERIC(18,6)
        candles[i] = {**candles[i], "open": 2e12, "high": 2e12}
    records = _candle_rows(candles)
    writer = Writer(sink_db.database_dsn())
    try:
        with pytest.raises(ROW_ERRORS):
            writer.write({"snapshot_market": [row for r in records for _, row in r]})
        written, refused = writer.write_each(records)
    finally:
        writer.close()
    assert sorted(index for index, _ in refused) == sorted(bad)
    assert all("numeric field overflow" in str(exc) for _, exc in refused)
    assert written == {"snapshot_market": 197}
    assert count(sink_db, "snapshot_market") == 197
    opens = {r[0] for r in fetch(sink_db, "SELECT open FROM snapshot_market")}
    assert max(opens) < 2e12


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
