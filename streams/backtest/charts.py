"""Charts (PNG, matplotlib) and the self-contained HTML report of a backtest.

matplotlib is the `backtest` extra (`pip install 'ai-trader[backtest]'`): without it the
run still writes every CSV and the HTML report, minus the pictures, and says so. The
object API (`Figure`) is used, never pyplot, so no GUI backend is ever touched. Long
series are thinned to a few thousand points (every n-th one, plus each bar's extremes
would need OHLC; the close line is what is drawn).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.backtest.engine import Result, Trade
from streams.backtest.report import cell

MAX_POINTS = 4000


def available() -> bool:
    """Is matplotlib installed?"""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _thin(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[datetime], list[float]]:
    step = max(1, len(xs) // MAX_POINTS)
    idx = list(range(0, len(xs), step))
    if xs and idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [datetime.fromtimestamp(xs[i], UTC) for i in idx], [ys[i] for i in idx]


def _num(times: Sequence[datetime]) -> Any:
    """Times as matplotlib date numbers (the axis is then made a date axis)."""
    from matplotlib.dates import date2num

    return date2num(list(times))


def _date_axis(ax: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=100, metadata={"Software": None})


def equity_chart(result: Result, path: Path) -> None:
    """Equity after each priced bar, with the initial balance as a reference line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax = fig.add_subplot()
    times, equity = _thin(result.equity_times, result.equity)
    ax.plot(_num(times), equity, color="#1f5fa8", linewidth=1.0, label="equity")
    _date_axis(ax)
    ax.axhline(float(result.config.initial_balance), color="#888888", linewidth=0.8,
               linestyle="--", label="initial balance")
    ax.set_title("Equity")
    ax.set_ylabel("account currency")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    _save(fig, path)


def price_chart(result: Result, symbol: str, path: Path) -> None:
    """The symbol's closes with every entry (triangles) and exit (dots: green won)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax = fig.add_subplot()
    stamps, closes = result.prices[symbol]
    times, prices = _thin(stamps, closes)
    ax.plot(_num(times), prices, color="#444444", linewidth=0.8, label=f"{symbol} close")
    _date_axis(ax)
    trades = [t for t in result.trades if t.symbol == symbol]
    for direction, marker, color in (("buy", "^", "#1a9641"), ("sell", "v", "#d7191c")):
        picked = [t for t in trades if t.direction == direction]
        if picked:
            ax.scatter(_num([t.entry_time for t in picked]), [t.entry_price for t in picked],
                       marker=marker, color=color, s=28, zorder=3, label=f"{direction} entry")
    for won, color, label in ((True, "#1a9641", "exit (won)"), (False, "#d7191c", "exit (lost)")):
        exits = [(t.exit_time, t.exit_price) for t in trades if (t.pl > 0) == won
                 and t.exit_time is not None and t.exit_price is not None]
        if exits:
            ax.scatter(_num([e[0] for e in exits]), [e[1] for e in exits],
                       marker="o", facecolors="none", edgecolors=color, s=22, zorder=3,
                       label=label)
    ax.set_title(f"{symbol}: entries and exits")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    _save(fig, path)


def draw(result: Result, out: Path) -> list[Path]:
    """Every chart of a run as PNG files in `out` (none without matplotlib)."""
    if not available():
        return []
    paths = [out / "equity.png"]
    equity_chart(result, paths[0])
    for symbol in sorted(result.prices):
        path = out / f"price_{symbol}.png"
        price_chart(result, symbol, path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------ HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%}
.note{color:#a15c00}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></p>'


def _trades_table(trades: Sequence[Trade], limit: int) -> str:
    rows = [(t.exit_time, t.strategy_id[:8], t.symbol, t.direction, t.lots, t.entry_price,
             t.exit_price, t.exit_reason, t.pl, t.r_multiple) for t in trades[:limit]]
    more = (f"<p>... and {len(trades) - limit} more in trades.csv</p>"
            if len(trades) > limit else "")
    return _table(("exit", "strategy", "symbol", "side", "lots", "entry", "exit price",
                   "reason", "P/L", "R"), rows) + more


def html_report(summary: dict[str, Any], result: Result, images: Sequence[Path],
                notes: Sequence[str], trade_rows: int = 500) -> str:
    """One HTML page with everything embedded (images as data URIs)."""
    res, run = summary["results"], summary["run"]
    keys = ("final_balance", "return_pct", "trades", "wins", "losses", "win_rate_pct",
            "net_pl", "profit_factor", "avg_planned_rr", "avg_r_multiple", "max_drawdown",
            "max_drawdown_pct", "ideas", "orders_refused")
    per = summary["per_strategy"]
    per_rows = [(v["name"], v["version"], v["ideas"], v["auto_executed"], v["trades"],
                 v["win_rate_pct"], v["net_pl"], v["avg_planned_rr"], v["avg_r_multiple"])
                for _, v in sorted(per.items())]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ai-trader backtest</title>",
        f"<style>{_STYLE}</style></head><body><h1>Backtest</h1>",
        f"<p>{html.escape(cell(run['first_candle']))} to {html.escape(cell(run['last_close']))}"
        f", {run['candles']:,} candles, symbols "
        f"{html.escape(', '.join(f'{s} {tf}' for s, tf in run['symbols'].items()))}, "
        f"{run['calendar_events']} calendar events, {run['news_items']} news items, "
        f"initial balance {html.escape(cell(run['initial_balance']))}.</p>",
        *(f"<p class='note'>{html.escape(n)}</p>" for n in notes),
        "<h2>Results</h2>", _table(("metric", "value"), [(k, res[k]) for k in keys]),
        "<h2>Per strategy</h2>",
        _table(("strategy", "version", "ideas", "auto-executed", "trades", "win rate %",
                "net P/L", "avg planned RR", "avg R"), per_rows),
        "<h2>Decisions</h2>",
        _table(("action", "count"), list(res["decisions_by_action"].items())),
        _table(("risk check result (ideas)", "count"), list(res["risk_check_results"].items())),
        "<h2>Charts</h2>",
        *(_image(p) for p in images),
        "" if images else "<p class='note'>No charts: matplotlib is not installed "
                          "(pip install 'ai-trader[backtest]').</p>",
        "<h2>Trades</h2>", _trades_table(result.trades, trade_rows),
        "<p>Files: candles.csv (indicators and decisions per candle), ideas.csv, "
        "decisions.csv, trades.csv, summary.json.</p></body></html>",
    ]
    return "\n".join(parts) + "\n"
