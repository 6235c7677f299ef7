"""Candle files as MT5 and other tools write them: good rows become valid candles, bad rows
are reported with their line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.market.parse import decode_text, parse_mt5_history, parse_ohlcv_csv, parse_parquet
from streams.core.market import Candle
from tests.connectors.factories import fixture
from topics.catalog import Catalog


def _valid(records: list[dict]) -> None:
    codec = Catalog().codec("market.candles.v1")
    for rec in records:
        Candle(**{k: rec[k] for k in ("symbol", "timeframe", "open_time", "open", "high", "low",
                                      "close", "volume", "spread")}).validate()
        assert codec.decode(codec.encode(rec)) == rec


def test_mt5_export_in_utf16_with_bom_gives_candles_with_spread_in_price() -> None:
    parsed = parse_mt5_history(fixture("XAUUSD_M1_mt5_export_utf16.csv"), "XAUUSD", "M1", 0.01)

    assert [c["open_time"].minute for c in parsed.candles] == [0, 1, 2, 4]
    first = parsed.candles[0]
    assert first["open_time"] == datetime(2024, 1, 2, 0, 0, tzinfo=UTC)
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        2062.94, 2064.10, 2062.50, 2063.85)
    assert first["spread"] == pytest.approx(0.35)  # 35 points of 0.01
    assert first["volume"] == 412
    _valid(parsed.candles)


def test_mt5_export_bad_row_is_reported_with_its_line_and_the_rest_parsed() -> None:
    parsed = parse_mt5_history(fixture("XAUUSD_M1_mt5_export_utf16.csv"), "XAUUSD", "M1", 0.01)

    assert len(parsed.errors) == 1
    assert parsed.errors[0].line == 5
    assert "n/a" in parsed.errors[0].reason


def test_mt5_export_in_utf8_with_bom_and_server_timezone_is_converted_to_utc() -> None:
    parsed = parse_mt5_history(fixture("EURUSD_H1_mt5_export_utf8.csv"), "EURUSD", "H1",
                               0.00001, ZoneInfo("Europe/Athens"))

    assert parsed.candles[0]["open_time"] == datetime(2024, 3, 4, 7, 0, tzinfo=UTC)
    assert parsed.candles[0]["spread"] == pytest.approx(0.00008)
    assert len(parsed.errors) == 1  # open below the low
    _valid(parsed.candles)


def test_mt5_daily_export_without_time_column_opens_at_midnight() -> None:
    parsed = parse_mt5_history(fixture("EURUSD_D1_mt5_export_utf8.csv"), "EURUSD", "D1",
                               0.00001)

    assert [c["open_time"] for c in parsed.candles] == [
        datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC)]
    assert not parsed.errors


def test_file_that_is_not_an_mt5_export_is_one_error_not_a_crash() -> None:
    parsed = parse_mt5_history(b"hello,world\n1,2\n", "XAUUSD", "M1", 0.01)

    assert parsed.candles == []
    assert parsed.errors[0].reason == "not an MT5 export header"


def test_ohlcv_csv_reads_iso_naive_and_epoch_times_and_reports_inverted_bar() -> None:
    parsed = parse_ohlcv_csv(fixture("US30_M5_ohlcv.csv"), "US30", "M5")

    assert len(parsed.candles) == 5
    assert parsed.candles[2]["open_time"] == datetime(2024, 5, 6, 13, 40, tzinfo=UTC)
    assert parsed.candles[3]["spread"] == 0.0  # empty spread column
    assert parsed.candles[4]["open_time"] == datetime(2024, 5, 6, 13, 55, tzinfo=UTC)
    assert [e.line for e in parsed.errors] == [6]
    _valid(parsed.candles)


def test_unknown_timeframe_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="timeframe"):
        parse_ohlcv_csv(fixture("US30_M5_ohlcv.csv"), "US30", "M7")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_text_decoding_accepts_the_encodings_exports_come_in(encoding: str) -> None:
    text = "<DATE>\t<TIME>\tcafé"
    assert decode_text(text.encode(encoding)) == text


def test_parquet_with_ohlcv_columns_gives_the_same_candles_as_the_csv(tmp_path: Path) -> None:
    csv = parse_ohlcv_csv(fixture("US30_M5_ohlcv.csv"), "US30", "M5")
    rows = [{"time": c["open_time"], "open": c["open"], "high": c["high"], "low": c["low"],
             "close": c["close"], "volume": c["volume"], "spread": c["spread"]}
            for c in csv.candles]
    path = tmp_path / "US30_M5.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)

    parsed = parse_parquet(str(path), "US30", "M5")

    assert parsed.candles == csv.candles
    assert parsed.errors == []
