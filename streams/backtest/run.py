"""`ai-trader backtest`: read the inputs, run the simulation, write the report.

Embedded mode: no bus, no database, nothing but files in and files out.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from streams.backtest import charts
from streams.backtest.engine import BacktestConfig, Record, Result, Simulation, price_timeframes
from streams.backtest.inputs import (
    InputError,
    load_calendar,
    load_candles,
    load_news,
    load_risk,
    load_strategies,
    zone,
)
from streams.backtest.progress import Progress
from streams.backtest.report import (
    CandleWriter,
    summarize,
    to_json,
    write_decisions,
    write_ideas,
    write_trades,
)
from streams.core.market import TIMEFRAMES
from streams.replay import Verification, is_idea_decision, verify_decision


@dataclass(frozen=True)
class RunOptions:
    """The command line, typed."""

    data: Sequence[Path]
    strategies: Sequence[Path]
    out: Path
    calendar: Sequence[Path] = ()
    news: Sequence[Path] = ()
    risk: Path | None = None
    account_balance: Decimal = Decimal("10000.00")
    symbol: str | None = None
    timeframe: str | None = None
    data_tz: str = "UTC"
    calendar_tz: str | None = None
    daily_resume: bool = True
    slippage_points: int = 0
    verify: bool = False  # re-decide every idea decision with the replay core
    audit_log: bool = False  # write every decision event and bundle as JSON lines
    progress: bool = True


@dataclass
class RunReport:
    """What the run wrote and found."""

    summary: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verified: int = 0
    differences: list[Verification] = field(default_factory=list)


class _Listener:
    """Sees every decision: re-verifies idea decisions, writes the audit log."""

    def __init__(self, verify: bool, audit: IO[str] | None) -> None:
        self.verify = verify
        self.audit = audit
        self.verified = 0
        self.failed: list[Verification] = []

    def __call__(self, event: Record, bundle: Record | None) -> None:
        if self.verify and is_idea_decision(event):
            self.verified += 1
            result = verify_decision(event, bundle)
            if not result.ok:
                self.failed.append(result)
        if self.audit is not None:
            line = {"decision": event, "bundle": bundle if is_idea_decision(event) else None}
            self.audit.write(json.dumps(line, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _notes(options: RunOptions, refused: dict[str, int], calendar: int) -> list[str]:
    notes = []
    if not options.calendar:
        notes.append("No calendar file: no release is known, so no news blackout applied.")
    elif calendar == 0:
        notes.append("The calendar files held no event.")
    for what, n in refused.items():
        if n:
            notes.append(f"{n} {what} refused by the parsers (see the log).")
    return notes


def load_config(options: RunOptions) -> tuple[BacktestConfig, list[Record], list[str]]:
    """Everything but the run: the config, the candles in replay order, the notes."""
    candles = load_candles(options.data, options.symbol, options.timeframe,
                           zone(options.data_tz) or UTC)
    if not candles.records:
        raise InputError("no candle in the data files")
    start = candles.records[0]["open_time"]
    calendar = load_calendar(options.calendar, start, zone(options.calendar_tz))
    news = load_news(options.news, start)
    config = BacktestConfig(
        strategies=tuple(load_strategies(options.strategies)), risk=load_risk(options.risk),
        initial_balance=options.account_balance, calendar=tuple(calendar.records),
        news=tuple(news.records), price_timeframes=price_timeframes(candles.records),
        daily_resume=options.daily_resume, slippage_points=options.slippage_points)
    notes = _notes(options, {"candle rows": candles.refused, "calendar events": calendar.refused,
                             "news items": news.refused}, len(calendar.records))
    notes += [f"refused: {r}" for r in (candles.reasons + calendar.reasons + news.reasons)[:10]]
    return config, candles.records, notes


def simulate(config: BacktestConfig, candles: Sequence[Record], out: Path,
             listener: _Listener, progress: bool) -> Result:
    """Run the candles through a simulation, streaming `candles.csv` into `out`."""
    sim = Simulation(config, listener)
    bar = Progress(len(candles), "backtest", "candles", enabled=progress)
    with (out / "candles.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = CandleWriter(fh)
        for index, candle in enumerate(candles, start=1):
            step = sim.step(candle)
            writer.write(step, candle["open_time"] + TIMEFRAMES[candle["timeframe"]])
            if index % 1000 == 0:
                bar.update(index)
        bar.update(len(candles))
    bar.close()
    return sim.finish()


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence chatty INFO logs (one line per paper fill) for the length of a run."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def run_backtest(options: RunOptions) -> RunReport:
    """Read, simulate, write every file of the report into `options.out`."""
    with _quiet("connectors.brokers.paper", "matplotlib"):
        return _run(options)


def _run(options: RunOptions) -> RunReport:
    config, candles, notes = load_config(options)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    audit = (out / "audit.jsonl").open("w", encoding="utf-8") if options.audit_log else None
    listener = _Listener(options.verify, audit)
    try:
        result = simulate(config, candles, out, listener, options.progress)
    finally:
        if audit is not None:
            audit.close()
    notes += [f"order refused: {r}" for r in result.orders_refused[:5]]
    if result.ideas and not result.trades:
        common = Counter(i.risk_check_result for i in result.ideas.values()).most_common(3)
        notes.append("No trade: the gate executed no idea; most frequent results: "
                     + ", ".join(f"{code} ({n})" for code, n in common))
    summary = summarize(result, notes)
    if options.verify:
        summary["replay_verification"] = {"verified": listener.verified,
                                           "with_differences": len(listener.failed)}
    files = [out / name for name in ("candles.csv", "summary.json", "ideas.csv",
                                     "decisions.csv", "trades.csv", "report.html")]
    (out / "summary.json").write_text(to_json(summary), encoding="utf-8")
    write_ideas(out / "ideas.csv", sorted(result.ideas.values(),
                                          key=lambda i: (i.created_at, i.idea_id)))
    write_decisions(out / "decisions.csv", result.decisions)
    write_trades(out / "trades.csv", result.trades)
    images = charts.draw(result, out)
    if not images:
        notes.append("No charts: matplotlib is not installed (pip install 'ai-trader[backtest]').")
    (out / "report.html").write_text(charts.html_report(summary, result, images, notes),
                                     encoding="utf-8")
    if audit is not None:
        files.append(out / "audit.jsonl")
    return RunReport(summary, [*files, *images], notes, listener.verified, listener.failed)
