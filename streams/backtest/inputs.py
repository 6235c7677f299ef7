"""The inputs of a backtest, read from files with the connectors' own parsers.

- candles: CSV (header with time/open/high/low/close[/volume][/spread]), MetaTrader 5's
  history export (detected by its `<DATE>` header, UTF-16 or UTF-8) or Parquet. The
  symbol and timeframe come from the file name like the replay feed reads them
  (`XAUUSD_M1.csv`, `US30_M5_ohlcv.csv`), or from explicit overrides; a CSV with a
  `symbol` column keeps its own symbols. Naive times are read in `tz`.
- calendar: ForexFactory JSON, ForexFactory XML (needs the export's timezone) or the
  `datetime,currency,impact,title,actual,forecast,previous` CSV.
- news: RSS/Atom, or a CSV/JSON of `published_at,headline[,source,url,summary,symbols,
  currencies]` (news is frozen into bundles and reported; no rule gates on it).
- strategies: JSON files (one definition or a list) or directories of them.
- risk: a JSON risk config, validated like a `set_risk_config` command.

Rows a parser refuses are counted and reported, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.calendar.parse import parse_calendar_csv, parse_ff_json, parse_ff_xml
from connectors.instruments import INSTRUMENTS
from connectors.market.parse import (
    ParsedCandles,
    parse_mt5_history,
    parse_ohlcv_csv,
    parse_parquet,
)
from connectors.news.parse import Tagger, parse_feed, plain
from streams.core.market import TIMEFRAMES
from streams.core.model import RiskConfig
from streams.core.strategy import Strategy, parse_strategy
from streams.defaults import DEFAULT_RISK, parse_risk_config

Record = dict[str, Any]


class InputError(ValueError):
    """An input file that cannot be used; the message names it and says why."""


@dataclass
class Loaded:
    """Records read from files, and how many rows were refused (with the first reasons)."""

    records: list[Record] = field(default_factory=list)
    refused: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, where: str, why: str) -> None:
        self.refused += 1
        if len(self.reasons) < 20:
            self.reasons.append(f"{where}: {why}")


def _symbol_timeframe(path: Path, symbol: str | None, timeframe: str | None) -> tuple[str, str]:
    parts = path.stem.split("_")
    name_tf = next((p.upper() for p in parts[1:] if p.upper() in TIMEFRAMES), None)
    chosen_tf = (timeframe or name_tf or "").upper()
    if chosen_tf not in TIMEFRAMES:
        raise InputError(f"{path}: no timeframe in the file name (like XAUUSD_M1.csv); "
                         f"give --timeframe (one of {', '.join(TIMEFRAMES)})")
    return (symbol or parts[0]).upper(), chosen_tf


def _parse_candles(path: Path, symbol: str, timeframe: str, tz: tzinfo) -> ParsedCandles:
    if path.suffix.lower() == ".parquet":
        return parse_parquet(str(path), symbol, timeframe, tz, source=path.name)
    data = path.read_bytes()
    if b"<DATE>" in data[:400].replace(b"\x00", b""):
        inst = INSTRUMENTS.get(symbol)
        point = float(inst.point) if inst else 0.00001
        return parse_mt5_history(data, symbol, timeframe, point, tz, source=path.name)
    return parse_ohlcv_csv(data, symbol, timeframe, tz, source=path.name)


def load_candles(paths: Sequence[Path], symbol: str | None = None,
                 timeframe: str | None = None, tz: tzinfo = UTC) -> Loaded:
    """Every candle of the files in the order the simulation replays them.

    Order: by close time (`open_time + timeframe`), then longer timeframes first (an H1
    bar closing at 10:00 is known to an M5 bar closing at 10:00), then symbol. A bar
    repeated (same symbol, timeframe and open time) keeps its last version.
    """
    out = Loaded()
    unique: dict[tuple[str, str, datetime], Record] = {}
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        sym, tf = _symbol_timeframe(path, symbol, timeframe)
        parsed = _parse_candles(path, sym, tf, tz)
        for error in parsed.errors:
            out.refuse(f"{path.name} line {error.line}", error.reason)
        for c in parsed.candles:
            unique[(c["symbol"], c["timeframe"], c["open_time"])] = c
        if not parsed.candles:
            raise InputError(f"{path}: no candle could be read"
                             + (f" ({parsed.errors[0].reason})" if parsed.errors else ""))
    out.records = sorted(unique.values(), key=candle_order)
    return out


def candle_order(candle: Record) -> tuple[datetime, float, str]:
    """Sort key of the replay order (see `load_candles`)."""
    length = TIMEFRAMES[candle["timeframe"]]
    return candle["open_time"] + length, -length.total_seconds(), candle["symbol"]


def load_calendar(paths: Sequence[Path], captured_at: datetime,
                  tz: tzinfo | None = None) -> Loaded:
    """Calendar events of every file, sorted by time (the same release twice: the last)."""
    out = Loaded()
    events: dict[str, Record] = {}
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        data = path.read_bytes()
        suffix = path.suffix.lower()
        if suffix == ".json":
            parsed = parse_ff_json(data, path.name, captured_at)
        elif suffix == ".xml":
            if tz is None:
                raise InputError(f"{path}: an XML calendar states no timezone: give "
                                 "--calendar-tz (the timezone it was exported in)")
            parsed = parse_ff_xml(data, path.name, captured_at, tz)
        else:
            parsed = parse_calendar_csv(data, path.name, captured_at, tz or UTC)
        for raw, error in parsed.rejects:
            out.refuse(path.name, f"{error} ({raw[:80]!r})")
        for event in parsed.events:
            events[event["event_id"]] = event
    out.records = sorted(events.values(),
                         key=lambda e: (e["event_time"], e["currency"], e["title"]))
    return out


def _news_row(row: dict[str, Any], source: str, captured_at: datetime,
              tagger: Tagger) -> Record:
    headline = plain(str(row.get("headline") or row.get("title") or ""))
    if not headline:
        raise ValueError("no headline")
    when = datetime.fromisoformat(str(row["published_at"]).strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    summary = plain(str(row.get("summary") or "")) or None

    def listed(name: str) -> list[str] | None:
        value = row.get(name)
        if value in (None, ""):
            return None
        items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
        return sorted({str(v).strip() for v in items if str(v).strip()})

    tagged = tagger.tag(headline if summary is None else f"{headline} {summary}")
    return {
        "item_id": str(row.get("item_id") or row.get("id") or f"{source}|{when.isoformat()}|"
                       f"{headline}")[:256],
        "headline": headline[:1000], "source": str(row.get("source") or source),
        "url": row.get("url") or None, "summary": summary,
        "symbols": listed("symbols") or tagged[0],
        "currencies": listed("currencies") or tagged[1],
        "published_at": when.astimezone(UTC), "captured_at": captured_at,
    }


def _news_rows(path: Path) -> Iterable[dict[str, Any]]:
    text = path.read_text("utf-8-sig")
    if path.suffix.lower() == ".csv":
        return ({(k or "").strip().lower(): v for k, v in r.items()}
                for r in csv.DictReader(io.StringIO(text)))
    if path.suffix.lower() == ".jsonl":
        return (json.loads(line) for line in text.splitlines() if line.strip())
    data = json.loads(text)
    if not isinstance(data, list):
        raise InputError(f"{path}: a JSON news file is a list of items")
    return data


def load_news(paths: Sequence[Path], captured_at: datetime) -> Loaded:
    """News items of every file, sorted by publication time."""
    out = Loaded()
    items: dict[str, Record] = {}
    tagger = Tagger()
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        if path.suffix.lower() in (".csv", ".json", ".jsonl"):
            for line, row in enumerate(_news_rows(path), start=1):
                try:
                    item = _news_row(row, path.stem, captured_at, tagger)
                except (ValueError, KeyError, TypeError) as exc:
                    out.refuse(f"{path.name} item {line}", f"{type(exc).__name__}: {exc}")
                    continue
                items[item["item_id"]] = item
            continue
        parsed = parse_feed(path.read_bytes(), path.stem, captured_at, tagger)
        for raw, error in parsed.rejects:
            out.refuse(path.name, f"{error} ({raw[:80]!r})")
        for item in parsed.items:
            items[item["item_id"]] = item
    out.records = sorted(items.values(), key=lambda n: (n["published_at"], n["item_id"]))
    return out


def load_strategies(paths: Sequence[Path]) -> list[Strategy]:
    """Strategy definitions from JSON files or directories of them, sorted by id."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    found: dict[str, Strategy] = {}
    for file in files:
        try:
            data = json.loads(file.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: not JSON: {exc}") from exc
        for definition in data if isinstance(data, list) else [data]:
            try:
                strategy = parse_strategy(definition)
            except ValueError as exc:
                raise InputError(f"{file}: {exc}") from exc
            known = found.get(strategy.strategy_id)
            if known is not None and known.definition_hash != strategy.definition_hash:
                raise InputError(f"{file}: strategy {strategy.strategy_id} is defined twice, "
                                 "differently")
            found[strategy.strategy_id] = strategy
    if not found:
        raise InputError("no strategy definition found")
    return [found[k] for k in sorted(found)]


def load_risk(path: Path | None) -> RiskConfig:
    """The risk config of the run: the file's, else the defaults with AI trading on.

    A backtest measures what the AI would do on its own, so without a file the default
    limits apply with `ai_trading_enabled` true (a file saying false leaves every idea
    waiting for a human, i.e. no trade).
    """
    if path is None:
        return parse_risk_config({**DEFAULT_RISK, "ai_trading_enabled": True})
    try:
        payload = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON risk config: {exc}") from exc
    if not isinstance(payload, dict):
        raise InputError(f"{path}: a risk config is a JSON object")
    try:
        return parse_risk_config(payload)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise InputError(f"{path}: invalid risk config: {exc}") from exc


def zone(name: str | None) -> tzinfo | None:
    """An IANA timezone by name (None stays None)."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise InputError(f"unknown timezone {name!r}") from exc
