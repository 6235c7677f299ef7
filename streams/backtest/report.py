"""What a backtest reports: metrics, and the machine-readable files.

Files (all written by `streams.backtest.run`):

- `candles.csv`: one row per candle in replay order: the bar, every indicator value, the
  decisions it caused (`strategy:action:risk_check_result`), the exits on it
  (`idea:reason:pl`) and the equity after it. Byte-identical for the same inputs: floats
  are written with `repr` (shortest round-trip), decimals fixed-point, times ISO 8601.
- `ideas.csv`, `decisions.csv`, `trades.csv`: every idea, decision and trade.
- `summary.json`: the metrics below and what the run was made of.

Metrics: net P/L, return, trades, wins, losses, win rate, average planned reward:risk
(first take-profit vs stop, from the fill), average realised R (P/L over the money the
stop risked), profit factor, max drawdown (peak to trough of the equity at each priced
bar close), exits by reason, decisions by action and risk check result, and the same per
strategy.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from streams.backtest.engine import DecisionRow, IdeaRow, Result, Step, Trade

CENT = Decimal("0.01")
INDICATOR_COLUMNS = ("rsi_14", "sma_50", "sma_200", "macd", "macd_signal", "macd_hist",
                     "atr_14", "day_open", "pct_move_today", "swing_high", "swing_low")
CANDLE_COLUMNS = ("open_time", "close_time", "symbol", "timeframe", "open", "high", "low",
                  "close", "volume", "spread", "status", *INDICATOR_COLUMNS, "ideas",
                  "decisions", "exits", "equity")


def cell(value: Any) -> str:
    """Deterministic text of a value for CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class CandleWriter:
    """Streams `candles.csv` as the simulation steps (the run never holds every row)."""

    def __init__(self, stream: IO[str]) -> None:
        self._csv = csv.writer(stream, lineterminator="\n")
        self._csv.writerow(CANDLE_COLUMNS)

    def write(self, step: Step, close_time: datetime) -> None:
        """One row for one step."""
        c, v = step.candle, step.values
        indicators = ([""] * len(INDICATOR_COLUMNS) if v is None
                      else [cell(getattr(v, name)) for name in INDICATOR_COLUMNS])
        ideas = sum(1 for d in step.decisions if d.outcome is not None)
        decisions = "|".join(f"{d.strategy_id or '-'}:{d.action}:{d.risk_check_result or '-'}"
                             for d in step.decisions)
        exits = "|".join(f"{t.idea_id}:{t.exit_reason}:{cell(t.pl)}" for t in step.exits)
        self._csv.writerow([
            cell(c["open_time"]), cell(close_time), c["symbol"], c["timeframe"],
            cell(float(c["open"])), cell(float(c["high"])), cell(float(c["low"])),
            cell(float(c["close"])), cell(int(c.get("volume") or 0)),
            cell(float(c.get("spread") or 0.0)), str(step.status), *indicators,
            str(ideas), decisions, exits, cell(step.equity),
        ])


# ---------------------------------------------------------------------------- metrics


def _ratio(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) * 100 / whole).quantize(CENT)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return None if not kept else round(sum(kept) / len(kept), 4)


def trade_stats(trades: Sequence[Trade]) -> dict[str, Any]:
    """Counts, win rate, P/L, average planned RR and realised R, profit factor."""
    wins = [t for t in trades if t.pl > 0]
    losses = [t for t in trades if t.pl < 0]
    gross_profit = sum((t.pl for t in wins), Decimal("0.00"))
    gross_loss = -sum((t.pl for t in losses), Decimal("0.00"))
    return {
        "trades": len(trades), "wins": len(wins), "losses": len(losses),
        "win_rate_pct": _ratio(len(wins), len(trades)),
        "net_pl": sum((t.pl for t in trades), Decimal("0.00")),
        "gross_profit": gross_profit, "gross_loss": gross_loss,
        "profit_factor": None if gross_loss == 0 else (gross_profit / gross_loss).quantize(CENT),
        "avg_planned_rr": _mean(t.planned_rr for t in trades),
        "avg_r_multiple": _mean(t.r_multiple for t in trades),
        "exits": dict(sorted(Counter(t.exit_reason or "?" for t in trades).items())),
    }


def _decision_stats(decisions: Sequence[DecisionRow]) -> dict[str, Any]:
    return {
        "decisions_by_action": dict(sorted(Counter(d.action for d in decisions).items())),
        "risk_check_results": dict(sorted(Counter(
            d.risk_check_result for d in decisions
            if d.outcome is not None and d.risk_check_result).items())),
    }


def _per_strategy(result: Result) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = {s.strategy_id: s for s in result.config.strategies}
    for sid in sorted(names):
        ideas = [i for i in result.ideas.values() if i.strategy_id == sid]
        decisions = [d for d in result.decisions if d.strategy_id == sid]
        out[sid] = {
            "name": names[sid].name, "version": names[sid].version, "ideas": len(ideas),
            "auto_executed": sum(1 for i in ideas if i.outcome == "auto_execute"),
            **_decision_stats(decisions),
            **trade_stats([t for t in result.trades if t.strategy_id == sid]),
        }
    return out


def summarize(result: Result, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The summary of a run (`summary.json`)."""
    cfg = result.config
    stats = trade_stats(result.trades)
    initial = cfg.initial_balance
    return {
        "run": {
            "first_candle": result.first_time, "last_close": result.last_time,
            "candles": result.candles, "candles_without_indicators": result.candles_skipped,
            "symbols": dict(sorted(cfg.price_timeframes.items())),
            "strategies": [{"id": s.strategy_id, "name": s.name, "version": s.version,
                            "hash": s.definition_hash} for s in cfg.strategies],
            "risk_config": cfg.risk.to_dict(), "initial_balance": initial,
            "calendar_events": len(cfg.calendar), "news_items": len(cfg.news),
            "daily_resume": cfg.daily_resume, "notes": list(notes),
        },
        "results": {
            "final_balance": result.final_balance,
            "return_pct": ((result.final_balance - initial) * 100 / initial).quantize(CENT),
            "max_drawdown": result.max_drawdown.quantize(CENT),
            "max_drawdown_pct": result.max_drawdown_pct,
            "ideas": len(result.ideas),
            "ideas_by_status": dict(sorted(Counter(i.status for i in result.ideas.values())
                                           .items())),
            **_decision_stats(result.decisions), **stats,
            "orders_refused": len(result.orders_refused),
        },
        "per_strategy": _per_strategy(result),
    }


def to_json(data: Any) -> str:
    """Deterministic JSON of a summary (decimals and times as text)."""
    return json.dumps(data, indent=2, sort_keys=True, default=cell) + "\n"


# ------------------------------------------------------------------------------ files


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        out.writerows([cell(v) for v in row] for row in rows)


def write_trades(path: Path, trades: Sequence[Trade]) -> None:
    """`trades.csv`, in exit order."""
    _write(path, ("idea_id", "strategy_id", "symbol", "direction", "lots", "entry_time",
                  "entry_price", "stop_loss", "take_profit", "exit_time", "exit_price",
                  "exit_reason", "pl", "risk_money", "planned_rr", "r_multiple"),
           ((t.idea_id, t.strategy_id, t.symbol, t.direction, t.lots, t.entry_time,
             t.entry_price, t.stop_loss, t.take_profit, t.exit_time, t.exit_price,
             t.exit_reason, t.pl, t.risk_money, t.planned_rr, t.r_multiple) for t in trades))


def write_ideas(path: Path, ideas: Iterable[IdeaRow]) -> None:
    """`ideas.csv`, in creation order."""
    _write(path, ("idea_id", "created_at", "symbol", "timeframe", "strategy_id", "direction",
                  "entry_price", "stop_loss", "take_profit", "lots", "confidence",
                  "decision_id", "action", "outcome", "risk_check_result", "status"),
           ((i.idea_id, i.created_at, i.symbol, i.timeframe, i.strategy_id, i.direction,
             i.entry_price, i.stop_loss, " ".join(repr(v) for v in i.take_profit), i.lots,
             i.confidence, i.decision_id, i.action, i.outcome, i.risk_check_result, i.status)
            for i in ideas))


def write_decisions(path: Path, decisions: Iterable[DecisionRow]) -> None:
    """`decisions.csv`, in log order."""
    _write(path, ("decision_id", "occurred_at", "action", "outcome", "risk_check_result",
                  "trade_idea_id", "strategy_id", "symbol", "confidence", "rationale"),
           ((d.decision_id, d.occurred_at, d.action, d.outcome, d.risk_check_result,
             d.trade_idea_id, d.strategy_id, d.symbol, d.confidence, d.rationale)
            for d in decisions))
