"""`ai-trader replay` and `ai-trader backtest`: look back at decisions, and try strategies.

- `replay DECISION_ID`: what the AI saw at that decision (database, or `--from-topics`).
- `replay --since T1 --until T2 --verify`: re-decide every idea decision of the range from
  its bundle and recorded gate state; every difference is printed with both sides; exit
  1 on any. "0 differences" is the audit proof.
- `backtest --data FILE... --strategies FILE...`: the same core and the paper broker
  over historical candles, in this process (no bus, no database).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from topics.settings import Settings

FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def _error(message: str) -> Exception:
    """The CLI's user-facing failure (imported late: the CLI loads this module)."""
    from api.cli import CliError

    return CliError(message)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, default=_jsonable, indent=2) if args.json else text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def parse_when(text: str) -> datetime:
    """ISO 8601 date or time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if len(text.strip()) == 10:  # a date: its start
        value = datetime.combine(value.date(), time(0))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------ replay


def _source(args: argparse.Namespace, settings: Settings) -> Any:
    from streams.replay_sources import DatabaseSource, SourceError, TopicSource
    from topics.catalog import Catalog

    catalog = Catalog(settings.topic_prefix)
    progress = not args.no_progress
    if args.from_topics:
        return TopicSource(settings, catalog, args.timeout, progress)
    try:
        return DatabaseSource(settings, catalog, progress)
    except SourceError as exc:
        raise _error(f"{exc} (or use --from-topics)") from exc


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Show one decision's full context, or verify a range (see the module doc)."""
    from streams.replay_sources import SourceError

    if args.decision_id is None and not args.verify:
        raise _error("give a DECISION_ID, or --verify with --since/--until")
    source = _source(args, settings)
    try:
        if args.decision_id is not None:
            return _replay_one(args, source)
        return _verify_range(args, source)
    except SourceError as exc:
        raise _error(str(exc)) from exc
    finally:
        source.close()


def _replay_one(args: argparse.Namespace, source: Any) -> int:
    from streams.replay import context_view, is_idea_decision, verify_decision

    event = source.decision(args.decision_id)
    if event is None:
        raise _error(f"no decision {args.decision_id} in the {source.name}")
    bundle = source.bundle(event["snapshot_ref"]) if event.get("snapshot_ref") else None
    view = context_view(event, bundle)
    subjects = [s for s in (event["decision_id"], event.get("trade_idea_id")) if s]
    view["explanations"] = source.explanations(subjects)
    code = 0
    if args.verify:
        if not is_idea_decision(event):
            raise _error(f"decision {event['decision_id']} ({event['action']}) is not a "
                           "gate decision on an idea: nothing to re-decide")
        verdict = verify_decision(event, bundle)
        view["verification"] = verdict.to_dict()
        code = 0 if verdict.ok else 1
    _emit(args, view, render_view(view))
    return code


def _verify_range(args: argparse.Namespace, source: Any) -> int:
    from streams.backtest.progress import Progress
    from streams.replay import is_idea_decision, verify_range

    since, until = args.since or FAR_PAST, args.until or FAR_FUTURE
    if since >= until:
        raise _error("--since must be before --until")
    data = source.range(since, until, args.account)
    total = sum(1 for e in data.events if is_idea_decision(e))
    bar = Progress(total, "re-deciding", "decisions", enabled=not args.no_progress)
    report = verify_range(data.events, data.bundles, bar.update)
    bar.close()
    summary = {
        "source": source.name, "since": since, "until": until, "account": args.account,
        "decisions_read": report.decisions_read, "verified": len(report.verifications),
        "differences": report.differences, "decisions_with_differences": len(report.failed),
        "undecodable_records": data.undecodable, "ok": report.ok,
        "results": [v.to_dict() for v in report.failed],
    }
    lines = [f"replay --verify from the {source.name}: {report.decisions_read} decisions in "
             f"[{_when(args.since, 'the beginning')}, {_when(args.until, 'now')}), "
             f"{len(report.verifications)} idea decisions re-decided"]
    for v in report.failed:
        lines.append(f"DIFFERENT: decision {v.decision_id} ({v.action} of idea {v.idea_id} "
                     f"at {v.occurred_at.isoformat()}):")
        for d in v.differences:
            lines.append(f"  {d.field}:\n    recorded: {d.recorded}\n    replayed: {d.replayed}")
    if data.undecodable:
        lines.append(f"{data.undecodable} records could not be decoded (see the dead letters)")
    lines.append(f"{len(report.verifications)} decisions verified, {report.differences} "
                 f"differences" + ("" if report.ok else
                                   f" in {len(report.failed)} decisions"))
    _emit(args, summary, "\n".join(lines))
    return 0 if report.ok else 1


def _when(value: datetime | None, default: str) -> str:
    return default if value is None else value.isoformat()


# ------------------------------------------------------------------------ text of a view


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=_jsonable, sort_keys=True)
    return str(value)


def _pairs(data: dict[str, Any], indent: str = "  ") -> list[str]:
    return [f"{indent}{k}: {_fmt(v)}" for k, v in data.items()]


def _bundle_lines(b: dict[str, Any]) -> list[str]:
    market = b["market"]
    lines = [f"Snapshot {b['snapshot_id']} captured {_fmt(b['captured_at'])} "
             f"(code {b['code_version']})",
             f"Candle {market['symbol']} {market['timeframe']}:",
             *_pairs(market["candle"]), "Indicators:", *_pairs(market["indicators"])]
    if market.get("higher_timeframe"):
        htf = market["higher_timeframe"]
        lines.append(f"Higher timeframe {htf.get('timeframe')}: sma_50 {_fmt(htf.get('sma_50'))}"
                     f", sma_200 {_fmt(htf.get('sma_200'))}, rsi_14 {_fmt(htf.get('rsi_14'))}")
    lines.append(f"Calendar (feed last succeeded {_fmt(b['calendar_last_success'])}):")
    lines += [f"  {_fmt(e['event_time'])} {e['currency']} {e['impact']:<7} {e['title']}"
              f"  ({e['minutes_until_release']:+} min until release)" for e in b["calendar"]]
    if not b["calendar"]:
        lines.append("  (no event in the window)")
    lines.append("News:")
    lines += [f"  {_fmt(n['published_at'])} [{n['source']}] {n['headline']}" for n in b["news"]]
    if not b["news"]:
        lines.append("  (none)")
    account = b["account"]
    if account:
        lines.append("Account:")
        lines += [f"  {k}: {_fmt(account.get(k))}" for k in
                  ("balance", "equity", "margin_used", "margin_free", "open_pl",
                   "realized_pl_today", "captured_at", "reconciled")]
        lines += [f"  position {p['ticket']}: {p['direction']} {p['volume']} {p['symbol']} "
                  f"(idea {_fmt(p.get('idea_id'))})" for p in account.get("positions") or ()]
    else:
        lines.append("Account: none known")
    s = b["strategy"]
    lines.append(f"Strategy: {s['name']} ({s['id']}) version {s['version']}, hash {s['hash']}")
    return lines


def render_view(view: dict[str, Any]) -> str:
    """The human-readable form of `streams.replay.context_view`."""
    d = view["decision"]
    who = _fmt(d["issuer"]) if d["human_override"] else "the AI"
    lines = [f"Decision {d['decision_id']}: {d['action']}"
             + (f" ({d['outcome']})" if d["outcome"] else "")
             + f" at {_fmt(d['occurred_at'])}, account {d['account']}",
             f"  symbol {_fmt(d['symbol'])}, idea {_fmt(d['trade_idea_id'])}, "
             f"snapshot {_fmt(d['snapshot_ref'])}, by {who}",
             f"  risk check: {_fmt(d['risk_check_result'])}", f"  rationale: {d['rationale']}"]
    conf = view["confidence"]
    if conf["score"] is not None:
        lines.append(f"Confidence {_fmt(conf['score'])}:")
        for c in conf["components"] or ():
            lines.append(f"  {c['name']}: {c['score']} / {c['maximum']}")
            lines += [f"    - {r}" for r in c.get("reasons") or ()]
    if view["checks"]:
        lines.append("Checks:")
        lines += [f"  {'ok  ' if c['passed'] else 'FAIL'} {c['name']:<22} {c['code']:<32} "
                  + ", ".join(f"{k}={v}" for k, v in c["values"].items()) for c in view["checks"]]
    risk = view["risk_config"]
    if risk:
        lines.append("Risk config and gate state at the decision:")
        lines += _pairs(risk)
    if view["bundle"]:
        lines += _bundle_lines(view["bundle"])
    for e in view.get("explanations") or ():
        lines.append(f"Explanation ({e['subject_kind']}, {e['status']}): {e['text']}")
    verification = view.get("verification")
    if verification is not None:
        lines.append("Re-decided today: " + ("identical" if verification["ok"] else "DIFFERENT"))
        lines += [f"  {x['field']}:\n    recorded: {x['recorded']}\n    replayed: {x['replayed']}"
                  for x in verification["differences"]]
    lines.append(f"Hash {_fmt(d['hash'])}, code version {_fmt(d['code_version'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- backtest


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value.quantize(Decimal("0.01"))


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Run a backtest and write its report (see streams/backtest)."""
    from streams.backtest.inputs import InputError
    from streams.backtest.run import RunOptions, run_backtest

    options = RunOptions(
        data=args.data, strategies=args.strategies, out=args.out,
        calendar=args.calendar or (), news=args.news or (), risk=args.risk,
        account_balance=args.account_balance, symbol=args.symbol, timeframe=args.timeframe,
        data_tz=args.data_tz, calendar_tz=args.calendar_tz,
        daily_resume=not args.no_daily_resume, slippage_points=args.slippage_points,
        verify=args.verify, audit_log=args.audit_log, progress=not args.no_progress)
    try:
        report = run_backtest(options)
    except (InputError, OSError) as exc:
        raise _error(str(exc)) from exc
    res = report.summary["results"]
    lines = [f"{report.summary['run']['candles']:,} candles, {res['ideas']} ideas, "
             f"{res['trades']} trades, win rate {_fmt(res['win_rate_pct'])} %, "
             f"net P/L {res['net_pl']}, return {res['return_pct']} %, "
             f"max drawdown {res['max_drawdown']} ({res['max_drawdown_pct']} %), "
             f"avg planned RR {_fmt(res['avg_planned_rr'])}, avg R {_fmt(res['avg_r_multiple'])}"]
    for sid, s in report.summary["per_strategy"].items():
        lines.append(f"  {s['name']} ({sid[:8]}): {s['ideas']} ideas, {s['trades']} trades, "
                     f"win rate {_fmt(s['win_rate_pct'])} %, net P/L {s['net_pl']}")
    lines += [f"note: {n}" for n in report.notes]
    if options.verify:
        lines.append(f"replay check: {report.verified} idea decisions re-decided, "
                     f"{len(report.differences)} with differences")
    lines.append("wrote " + ", ".join(str(p) for p in report.files))
    data = {**report.summary, "files": [str(p) for p in report.files]}
    _emit(args, data, "\n".join(lines))
    return 1 if report.differences else 0


# ------------------------------------------------------------------------------ parsers


def _replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("decision_id", nargs="?", help="the decision to show")
    p.add_argument("--since", type=parse_when, help="range start, inclusive (ISO 8601; UTC "
                                                    "when no offset)")
    p.add_argument("--until", type=parse_when, help="range end, exclusive")
    p.add_argument("--verify", action="store_true",
                   help="re-run the decision core and report every difference (exit 1)")
    p.add_argument("--from-topics", action="store_true",
                   help="read decisions.log.v1 and snapshots.bundles.v1, not the database")
    p.add_argument("--account", help="only this account's decisions (range)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="topics: seconds without a record before giving up")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _backtest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, nargs="+", required=True,
                   help="candle files: CSV, MT5 export or Parquet, named SYMBOL_TF...")
    p.add_argument("--strategies", type=Path, nargs="+", required=True,
                   help="strategy JSON files or directories")
    p.add_argument("--calendar", type=Path, nargs="+", help="calendar files (JSON, XML, CSV)")
    p.add_argument("--news", type=Path, nargs="+", help="news files (RSS/Atom, CSV, JSON)")
    p.add_argument("--risk", type=Path, help="risk config JSON (default: the defaults with "
                                             "AI trading on)")
    p.add_argument("--out", type=Path, default=Path("backtest-report"),
                   help="report directory (default ./backtest-report)")
    p.add_argument("--account-balance", type=_decimal, default=Decimal("10000.00"))
    p.add_argument("--symbol", help="symbol of every data file (default: from the name)")
    p.add_argument("--timeframe", help="timeframe of every data file (default: from the name)")
    p.add_argument("--data-tz", default="UTC", help="timezone of naive candle times")
    p.add_argument("--calendar-tz", help="timezone of an XML calendar export (required for XML)")
    p.add_argument("--slippage-points", type=int, default=0)
    p.add_argument("--no-daily-resume", action="store_true",
                   help="a halt lasts to the end (default: resumed at the next trading day)")
    p.add_argument("--verify", action="store_true",
                   help="re-decide every idea decision with the replay core (exit 1 on a "
                        "difference)")
    p.add_argument("--audit-log", action="store_true",
                   help="also write audit.jsonl: every decision event and its bundle")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


SUBCOMMANDS = {
    "replay": (cmd_replay, "what the AI saw at a decision; --verify re-decides a range",
               _replay_args),
    "backtest": (cmd_backtest, "run the decision core and the paper broker over history",
                 _backtest_args),
}
