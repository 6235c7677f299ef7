"""Pure parsers from candle files to `market.candles.v1` records (Candle v2 dicts).

Formats:
- CSV with a header naming time, open, high, low, close and optionally volume
  (or tick_volume) and spread (a price difference); times are ISO-8601 or epoch
  seconds, naive times are read in the configured timezone.
- MetaTrader 5's own history export: tab-separated, header
  `<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>` (no
  `<TIME>` column in a daily export), dates `2024.01.02`, times `00:00[:00]` in
  the trade server's timezone, spread in points. MT5 writes it UTF-16 LE with a
  BOM; files re-saved by tools are often UTF-8. Both are read.

A bad row never fails the file: it comes back as a `RowError` (line and reason)
for the dead-letter topic, and the rest is parsed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

TIMEFRAMES = frozenset({"M1", "M5", "M15", "M30", "H1", "H4", "D1"})
_TIME_COLUMNS = ("time", "timestamp", "datetime", "date", "open_time")


@dataclass(frozen=True)
class RowError:
    """A row that could not become a candle."""

    line: int
    raw: str
    reason: str


@dataclass
class ParsedCandles:
    """Candles in file order plus the rows that were refused."""

    candles: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def decode_text(data: bytes) -> str:
    """Bytes of a text export as str: UTF-16 (BOM or NUL-heavy), UTF-8 (with or without BOM)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data[1:2] == b"\x00" and data[:1] != b"\x00":
        return data.decode("utf-16-le")  # UTF-16 LE without its BOM
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _finite(value: str, name: str) -> float:
    number = float(value.strip().replace(",", ""))
    if not math.isfinite(number):
        raise ValueError(f"{name} is not finite: {value!r}")
    return number


def make_candle(
    symbol: str, timeframe: str, open_time: datetime, ohlc: tuple[float, float, float, float],
    volume: int, spread: float, source: str,
) -> dict[str, Any]:
    """A Candle v2 record, checked like the topic's validator would (raises ValueError)."""
    o, h, lo, c = ohlc
    if min(o, h, lo, c) <= 0:
        raise ValueError("prices must be positive")
    if h < lo or not (lo <= o <= h and lo <= c <= h):
        raise ValueError(f"inconsistent bar: open {o} high {h} low {lo} close {c}")
    if volume < 0 or spread < 0 or not math.isfinite(spread):
        raise ValueError(f"negative volume {volume} or spread {spread}")
    return {
        "symbol": symbol, "timeframe": timeframe, "open_time": open_time.astimezone(UTC),
        "open": o, "high": h, "low": lo, "close": c, "volume": int(volume),
        "source": source, "spread": spread, "closed": True,
    }


def parse_time(value: str, tz: tzinfo) -> datetime:
    """ISO-8601 (naive = `tz`) or epoch seconds/milliseconds."""
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        seconds = float(text)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _check_timeframe(timeframe: str) -> None:
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {timeframe!r}")


def _pick(row: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def _row_to_candle(row: Mapping[str, str], symbol: str, timeframe: str, tz: tzinfo,
                   source: str) -> dict[str, Any]:
    when = _pick(row, *_TIME_COLUMNS)
    if when is None:
        raise ValueError("no time column")
    ohlc = tuple(_finite(row.get(k) or "", k) for k in ("open", "high", "low", "close"))
    volume = _pick(row, "volume", "tick_volume", "tickvol", "vol")
    spread = _pick(row, "spread")
    row_symbol = row.get("symbol") or symbol
    return make_candle(row_symbol, timeframe, parse_time(when, tz), ohlc,  # type: ignore[arg-type]
                       int(float(volume)) if volume else 0,
                       _finite(spread, "spread") if spread else 0.0, source)


def rows_to_candles(rows: Iterable[Mapping[str, str]], symbol: str, timeframe: str,
                    tz: tzinfo = UTC, source: str = "file", first_line: int = 2) -> ParsedCandles:
    """Dict rows (lower-case column names) to candles; bad rows become `RowError`s."""
    _check_timeframe(timeframe)
    out = ParsedCandles()
    for line, row in enumerate(rows, start=first_line):
        try:
            out.candles.append(_row_to_candle(row, symbol, timeframe, tz, source))
        except (ValueError, TypeError, OverflowError) as exc:
            out.errors.append(RowError(line, repr(dict(row)), str(exc)))
    return out


def parse_ohlcv_csv(data: bytes | str, symbol: str, timeframe: str, tz: tzinfo = UTC,
                    source: str = "file") -> ParsedCandles:
    """A CSV file with a header row (any case, `,` or `;` separated)."""
    text = decode_text(data) if isinstance(data, bytes) else data
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    rows = ({(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in reader)
    return rows_to_candles(rows, symbol, timeframe, tz, source)


def _mt5_time(row: Mapping[str, str], tz: tzinfo) -> datetime:
    year, month, mday = (int(part) for part in row["<DATE>"].strip().split("."))
    parts = [int(part) for part in (row.get("<TIME>") or "00:00:00").strip().split(":")]
    if not 2 <= len(parts) <= 3:
        raise ValueError(f"time {row.get('<TIME>')!r} is not HH:MM[:SS]")
    hour, minute, second = (parts + [0])[:3]
    return datetime(year, month, mday, hour, minute, second, tzinfo=tz)


def _mt5_row(row: Mapping[str, str], symbol: str, timeframe: str, point: float, tz: tzinfo,
             source: str) -> dict[str, Any]:
    ohlc = tuple(_finite(row.get(k) or "", k) for k in ("<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>"))
    tickvol = int(float(row.get("<TICKVOL>") or 0))
    realvol = int(float(row.get("<VOL>") or 0))
    spread_points = float(row.get("<SPREAD>") or 0)
    spread = round(spread_points * point, 10)
    return make_candle(symbol, timeframe, _mt5_time(row, tz), ohlc,  # type: ignore[arg-type]
                       tickvol or realvol, spread, source)


def parse_mt5_history(data: bytes | str, symbol: str, timeframe: str, point: float,
                      tz: tzinfo = UTC, source: str = "mt5-export") -> ParsedCandles:
    """MetaTrader 5's history export (`<DATE>\\t<TIME>\\t<OPEN>...`), UTF-16 or UTF-8."""
    _check_timeframe(timeframe)
    text = decode_text(data) if isinstance(data, bytes) else data
    lines = text.splitlines()
    out = ParsedCandles()
    if not lines or "<DATE>" not in lines[0]:
        out.errors.append(RowError(1, lines[0] if lines else "", "not an MT5 export header"))
        return out
    header = [h.strip() for h in lines[0].split("\t")]
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = dict(zip(header, line.split("\t"), strict=False))
        try:
            out.candles.append(_mt5_row(row, symbol, timeframe, point, tz, source))
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            out.errors.append(RowError(number, line, f"{type(exc).__name__}: {exc}"))
    return out


def parse_parquet(path: str, symbol: str, timeframe: str, tz: tzinfo = UTC,
                  source: str = "file") -> ParsedCandles:
    """A Parquet file with OHLCV columns (needs the optional `pyarrow`)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # optional dependency: CSV needs nothing
        raise RuntimeError("reading Parquet needs pyarrow: pip install 'ai-trader[parquet]'") \
            from exc
    table = pq.read_table(path)
    rows = ({k.lower(): _cell(v) for k, v in r.items()} for r in table.to_pylist())
    return rows_to_candles(rows, symbol, timeframe, tz, source)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)
