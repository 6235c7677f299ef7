"""Control sub-commands of `ai-trader`: status, ideas, approve, reject, kill, resume, risk,
strategy, user, api.

Commands that change something publish a signed control command and wait for the
gate's reply (`--timeout`); they print a clear result and exit 1 on refusal or
timeout. Input is validated before anything is published. Reads come from the
database through `sinks.queries`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

import psycopg
from pydantic import ValidationError

from api.cli import CliError
from api.config import ApiSettings
from api.models import IdeaStatus
from sinks import queries
from topics.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, default=str, indent=2))
    else:
        print(text)


def issuer() -> str:
    """Who issues CLI commands: `cli:<os user>@<host>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


@contextmanager
def _db(settings: Settings) -> Iterator[queries.Conn]:
    try:
        conn = psycopg.connect(settings.database_dsn(), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise CliError(f"database unreachable: {str(exc).splitlines()[0]}") from exc
    with conn:
        yield conn


@contextmanager
def _client(settings: Settings) -> Iterator[Any]:
    from topics.bus import BusError
    from topics.control_client import ControlClient

    try:
        client = ControlClient(settings).start()
    except BusError as exc:
        raise CliError(f"bus unreachable: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def _timeout(args: argparse.Namespace) -> float:
    value = float(args.timeout)
    if value <= 0:
        raise CliError("--timeout must be positive")
    return value


def _send(args: argparse.Namespace, settings: Settings, kind: str, **fields: Any) -> Any:
    """Publish a command and wait for its reply; a timeout is a CliError."""
    from topics.control_client import CommandTimeout

    with _client(settings) as client:
        try:
            return client.request(kind, issuer(), timeout=_timeout(args), **fields)
        except CommandTimeout as exc:
            raise CliError(str(exc)) from exc


def _report(args: argparse.Namespace, reply: Any, ok_text: str) -> int:
    data = {"command_id": reply.command_id, "kind": reply.kind, "status": reply.status,
            "reason": reply.reason, "result": reply.result}
    if reply.accepted:
        _emit(args, data, ok_text)
        return 0
    _emit(args, data, f"refused: {reply.reason}")
    return 1


# ------------------------------------------------------------------------------ ideas


def _fmt_idea(r: dict[str, Any], now: datetime) -> str:
    tps = "/".join(f"{float(v):g}" for v in r["take_profit"] or [])
    entry = float(r["entry_price"] or 0)
    return (f"{r['id']}  {r['symbol']:<8} {r['direction']:<4} entry {entry:g}"
            f"  SL {float(r['stop_loss']):g}  TP {tps}  lots {r['lot_size']}  "
            f"conf {r['confidence_score']}  {r['status']}{_expiry(r, now)}")


def _expiry(r: dict[str, Any], now: datetime) -> str:
    """How long an idea waiting for a human has left. The gate marks it `expired` at
    its next event past the time (event time): until then the row still says
    needs_approval, and an approval of it is refused."""
    expires_at = r.get("expires_at")
    if expires_at is None or r["status"] not in ("waiting", "needs_approval"):
        return ""
    left = int((expires_at - now).total_seconds())
    if left <= 0:
        return f"  expired {_span(-left)} ago"
    return f"  expires in {_span(left)}"


def _span(seconds: int) -> str:
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def cmd_ideas(args: argparse.Namespace, settings: Settings) -> int:
    """Ideas waiting for a decision (or with --status)."""
    statuses = args.status or ["waiting", "needs_approval"]
    with _db(settings) as conn:
        rows = queries.ideas(conn, statuses, args.limit)
    now = datetime.now(UTC)
    text = ("\n".join(_fmt_idea(r, now) for r in rows)
            or f"no ideas ({', '.join(statuses)})")
    _emit(args, rows, text)
    return 0


def _lot(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        lot = Decimal(text)
    except InvalidOperation as exc:
        raise CliError(f"--lot {text!r} is not a number") from exc
    if not lot.is_finite() or lot <= 0:
        raise CliError("--lot must be a positive number")
    if lot != lot.quantize(Decimal("0.01")):
        raise CliError("--lot has at most two decimals (the lot step is 0.01)")
    return lot


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    """Approve an idea; wait for the gate and the broker."""
    from topics.control_client import CommandTimeout

    lot = _lot(args.lot)
    with _client(settings) as client:
        try:
            outcome = client.approve(args.idea_id, issuer(), lot, timeout=_timeout(args),
                                     order_timeout=float(args.order_timeout))
        except CommandTimeout as exc:
            raise CliError(str(exc)) from exc
    data = {"status": outcome.status, "mt5_order_id": outcome.mt5_order_id,
            "reason": outcome.reason, "command_id": outcome.reply.command_id,
            "decision_id": outcome.reply.result.get("decision_id")}
    if outcome.status == "executed":
        _emit(args, data, f"executed: order {outcome.mt5_order_id}")
        return 0
    _emit(args, data, f"blocked: {outcome.reason}")
    return 1


def cmd_reject(args: argparse.Namespace, settings: Settings) -> int:
    """Reject an idea waiting for approval."""
    reply = _send(args, settings, "reject_idea", idea_id=args.idea_id, reason=args.reason)
    return _report(args, reply, f"rejected {args.idea_id}")


def cmd_kill(args: argparse.Namespace, settings: Settings) -> int:
    """Engage the kill switch."""
    if not args.reason.strip():
        raise CliError("--reason must not be empty")
    reply = _send(args, settings, "kill_switch", reason=args.reason.strip())
    return _report(args, reply, "kill switch ON: nothing new will be opened until `resume`")


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    """Release the kill switch / resume after a halt."""
    reply = _send(args, settings, "resume", reason=args.reason)
    return _report(args, reply, "resumed")


# ------------------------------------------------------------------------------- risk


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """`key=value` arguments; values are JSON literals (true, 0.5, null, ["XAUUSD"]) or text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{pair!r} is not key=value")
        out[key.strip()] = _value(value.strip())
    return out


def risk_update(current: dict[str, Any] | None, changes: dict[str, Any]) -> dict[str, Any]:
    """The full risk config to send: validated exactly as the API's PUT validates it."""
    from api.errors import ApiError
    from api.models import RiskIn
    from api.routes.control import merged_risk

    floats = {"min_confidence_threshold", "max_lot_size", "daily_profit_target",
              "max_drawdown_amount", "weekly_profit_target"}
    base = {}
    for name in RiskIn.model_fields:
        if current and name in current:
            value = current[name]
            base[name] = float(value) if name in floats and value is not None else value
    try:
        body = RiskIn.model_validate({**base, **changes})
        return merged_risk(current, body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise CliError(f"invalid risk settings: {problems}") from exc
    except ApiError as exc:
        raise CliError(f"invalid risk settings: {exc.message}") from exc


def cmd_risk(args: argparse.Namespace, settings: Settings) -> int:
    """Show the risk configuration, or change keys of it."""
    with _db(settings) as conn:
        row = queries.risk_config(conn, settings.account)
    if args.action == "show":
        if row is None:
            raise CliError("no risk configuration applied yet")
        config = dict(row["config"])
        data = {**config, "version": row["version"], "config_hash": row["config_hash"],
                "updated_by": row["updated_by"], "updated_at": row["updated_at"]}
        _emit(args, data, "\n".join(f"{k:<30} {json.dumps(v, default=str)}"
                                    for k, v in data.items()))
        return 0
    if not args.pairs:
        raise CliError("risk set needs key=value pairs, e.g. max_lot_size=0.5")
    payload = risk_update(row["config"] if row else None, parse_pairs(args.pairs))
    reply = _send(args, settings, "set_risk_config", payload=payload)
    return _report(args, reply, f"risk config applied (version {reply.result.get('version')})")


# --------------------------------------------------------------------------- strategy


def cmd_strategy(args: argparse.Namespace, settings: Settings) -> int:
    """List, show, apply (create/replace from a file), enable or disable strategies."""
    if args.action == "list":
        with _db(settings) as conn:
            rows = queries.strategies(conn)
        text = "\n".join(f"{r['id']}  v{r['version']:<3} {'ON ' if r['is_active'] else 'OFF'} "
                         f"{r['name']}" for r in rows) or "no strategies"
        _emit(args, rows, text)
        return 0
    if not args.target:
        raise CliError(f"strategy {args.action} needs {'FILE' if args.action == 'apply' else 'ID'}")
    if args.action == "show":
        with _db(settings) as conn:
            row = queries.strategy(conn, args.target)
        if row is None:
            raise CliError(f"no strategy {args.target}")
        _emit(args, row, json.dumps(row["definition"], indent=2, default=str))
        return 0
    if args.action == "apply":
        definition = _strategy_file(Path(args.target))
        reply = _send(args, settings, "put_strategy", strategy_id=definition["id"],
                      payload={"definition": definition})
        return _report(args, reply, f"strategy {definition['id']} applied "
                                    f"(version {reply.result.get('version')})")
    active = args.action == "enable"
    reply = _send(args, settings, "put_strategy", strategy_id=args.target,
                  payload={"is_active": active})
    return _report(args, reply, f"strategy {args.target} {'enabled' if active else 'disabled'}")


def _strategy_file(path: Path) -> dict[str, Any]:
    from streams.core.strategy import StrategyError, parse_strategy_json

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_strategy_json(text).definition()
    except StrategyError as exc:
        lines = "\n  ".join(f"{p}: {m}" for p, m in exc.errors)
        raise CliError(f"{path} is not a valid strategy:\n  {lines}") from exc


# ------------------------------------------------------------------------------- user


def read_password(email: str) -> str:
    """Prompted twice on a terminal; one line of stdin otherwise. Never an argument."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {email}: ")
        if getpass.getpass("again: ") != first:
            raise CliError("the passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    """Add a user (or set the password of one with --update), or list users."""
    from api.auth import hash_password
    from sinks.migrate import migrate

    migrate(settings)
    if args.action == "list":
        with _db(settings) as conn:
            rows = queries.list_users(conn)
        _emit(args, rows, "\n".join(f"{r['email']}  {r['role']}  {r['id']}" for r in rows)
              or "no users")
        return 0
    email = (args.email or "").strip().lower()
    if "@" not in email or any(c.isspace() for c in email) or len(email) > 254:
        raise CliError("user add needs an EMAIL")
    try:
        hashed = hash_password(read_password(email))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    with _db(settings) as conn:
        if args.update:
            if not queries.set_password(conn, email, hashed):
                raise CliError(f"no user {email}")
            _emit(args, {"email": email, "updated": True}, f"password of {email} changed")
            return 0
        user_id = str(uuid.uuid4())
        try:
            queries.insert_user(conn, user_id, email, hashed)
        except psycopg.errors.UniqueViolation as exc:
            raise CliError(f"{email} exists (use --update to change the password)") from exc
    _emit(args, {"id": user_id, "email": email}, f"user {email} added")
    return 0


# ------------------------------------------------------------------------------- api


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the REST API with uvicorn until stopped."""
    import uvicorn

    from api.app import create_app

    host = args.host or settings.api_host
    settings = settings.model_copy(update={"api_host": host})
    try:
        app = create_app(settings)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    uvicorn.run(app, host=host, port=args.port or settings.api_port, log_config=None,
                access_log=False, proxy_headers=True)
    return 0


# ---------------------------------------------------------------------------- status


def _age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    return f"{_span(int((now - at).total_seconds()))} ago"


def scrape(url: str, timeout: float = 1.5) -> dict[str, Any]:
    """A Prometheus endpoint's headline figures (lag, dead letters, decisions), or its error."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        response = httpx.get(url, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return {"url": url, "up": False, "error": type(exc).__name__}
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        if not any(word in family.name for word in ("lag", "dead_letter", "decisions",
                                                    "events", "requests_total")):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            figures[sample.name] = figures.get(sample.name, 0.0) + float(sample.value)
    return {"url": url, "up": True, "figures": figures}


def _metrics_urls(args: argparse.Namespace, settings: Settings) -> list[str]:
    urls = list(args.metrics or [])
    configured = ApiSettings().metrics_urls
    urls += [u.strip() for u in configured.split(",") if u.strip()]
    if not urls:
        urls = [f"http://127.0.0.1:{settings.metrics_port}/metrics",
                f"http://{settings.api_host}:{settings.api_port}/v1/metrics"]
    return urls


def status_report(settings: Settings, urls: list[str]) -> dict[str, Any]:
    """AI on/off, kill switch, halt reason, open ideas, feeds, gate backlog, processes."""
    now = datetime.now(UTC)
    with _db(settings) as conn:
        risk = queries.risk_config(conn, settings.account)
        open_ideas = queries.ideas(conn, ["waiting", "needs_approval"], 100)
        feeds = queries.feed_health(conn)
        pending = queries.unanswered_commands(conn, now - timedelta(hours=1))
        last = queries.last_decision(conn)
        account = queries.latest_account(conn, settings.account)
    config = dict(risk["config"]) if risk else {}
    from topics.logs import Redactor  # a metrics URL could carry credentials

    pid_file = Path(settings.state_dir) / "run.pid"
    return {
        "account": settings.account,
        "ai_trading_enabled": risk["ai_trading_enabled"] if risk else None,
        "kill_switch": config.get("kill_switch"),
        "last_halt_reason": risk["last_halt_reason"] if risk else None,
        "risk_version": risk["version"] if risk else None,
        "open_ideas": len(open_ideas),
        "ideas": [{"id": i["id"], "symbol": i["symbol"], "status": i["status"]}
                  for i in open_ideas[:10]],
        "last_decision": None if last is None else {
            "action": last["action"], "symbol": last["symbol"], "at": last["occurred_at"]},
        "account_snapshot_at": account["captured_at"] if account else None,
        "feeds": [{"feed": f["feed"], "status": f["status"], "reported_at": f["reported_at"],
                   "last_error": f["last_error"]} for f in feeds],
        "gate_pending_commands": pending["pending"],
        "gate_oldest_pending": pending["oldest"],
        "supervisor_pid": pid_file.read_text().strip() if pid_file.exists() else None,
        "processes": [{**scrape(u), "url": Redactor()(u)} for u in urls],
        "checked_at": now,
    }


def _status_text(r: dict[str, Any]) -> str:
    now = r["checked_at"]
    kill = r["kill_switch"] or {}
    ai = {True: "ON", False: "OFF", None: "unknown (no risk config yet)"}[r["ai_trading_enabled"]]
    lines = [
        f"account        {r['account']}",
        f"AI trading     {ai}",
        f"kill switch    {'ON' if kill.get('active') else 'off'}"
        + (f" (by {kill.get('by')}: {kill.get('reason')})" if kill.get("active") else ""),
        f"halt reason    {r['last_halt_reason'] or '-'}",
        f"open ideas     {r['open_ideas']}",
        f"gate backlog   {r['gate_pending_commands']} unanswered commands"
        + (f", oldest {_age(r['gate_oldest_pending'], now)}" if r["gate_oldest_pending"] else ""),
        "last decision  " + (f"{r['last_decision']['action']} {r['last_decision']['symbol'] or ''}"
                              f" {_age(r['last_decision']['at'], now)}"
                              if r["last_decision"] else "none"),
        f"account seen   {_age(r['account_snapshot_at'], now)}",
        f"supervisor     {'pid ' + r['supervisor_pid'] if r['supervisor_pid'] else 'not running'}",
    ]
    for f in r["feeds"]:
        lines.append(f"feed {f['feed']:<20} {f['status']:<9} {_age(f['reported_at'], now)}"
                     + (f"  {f['last_error']}" if f["last_error"] and f["status"] != "ok" else ""))
    for p in r["processes"]:
        if not p["up"]:
            lines.append(f"metrics {p['url']}: not reachable")
            continue
        figures = ", ".join(f"{k}={v:g}" for k, v in sorted(p["figures"].items())[:8])
        lines.append(f"metrics {p['url']}: up  {figures}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """What the pipeline is doing: AI on/off, kill switch, halt, open ideas, health."""
    report = status_report(settings, _metrics_urls(args, settings))
    _emit(args, report, _status_text(report))
    return 0


# ------------------------------------------------------------------------------ args


def _timeout_arg(p: argparse.ArgumentParser) -> None:
    default = ApiSettings().command_timeout_seconds
    p.add_argument("--timeout", type=float, default=default,
                   help=f"seconds to wait for the gate's reply (default {default:g})")


def _ideas_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="append", choices=list(get_args(IdeaStatus)),
                   help="repeatable; default: waiting, needs_approval")
    p.add_argument("--limit", type=int, default=50)


def _approve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("idea_id")
    p.add_argument("--lot", help="lot size (default: the idea's)")
    _timeout_arg(p)
    p.add_argument("--order-timeout", type=float, default=ApiSettings().order_timeout_seconds,
                   help="seconds to wait for the broker's result")


def _reject_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("idea_id")
    p.add_argument("--reason")
    _timeout_arg(p)


def _kill_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", required=True)
    _timeout_arg(p)


def _resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason")
    _timeout_arg(p)


def _risk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["show", "set"])
    p.add_argument("pairs", nargs="*", metavar="key=value")
    _timeout_arg(p)


def _strategy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "show", "apply", "enable", "disable"])
    p.add_argument("target", nargs="?", metavar="ID|FILE")
    _timeout_arg(p)


def _user_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("email", nargs="?")
    p.add_argument("--update", action="store_true", help="change the password of a user")


def _api_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="default AI_TRADER_API_HOST")
    p.add_argument("--port", type=int, help="default AI_TRADER_API_PORT")


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", action="append", metavar="URL",
                   help="Prometheus endpoint to read (repeatable; default AI_TRADER_METRICS_URLS "
                        "or the local worker and API)")


#: The commands a person types and reads: they log warnings only, unless `--verbose`
#: (their result is the output; the log lines are the bus client's).
CONSOLE = frozenset({"status", "ideas", "approve", "reject", "kill", "resume", "risk",
                     "strategy", "user"})

SUBCOMMANDS: dict[str, tuple[Handler, str, Callable[[argparse.ArgumentParser], None] | None]] = {
    "status": (cmd_status, "AI on/off, kill switch, halt reason, open ideas, health",
               _status_args),
    "ideas": (cmd_ideas, "ideas waiting for a decision", _ideas_args),
    "approve": (cmd_approve, "approve an idea (waits for the gate and the broker)",
                _approve_args),
    "reject": (cmd_reject, "reject an idea", _reject_args),
    "kill": (cmd_kill, "engage the kill switch", _kill_args),
    "resume": (cmd_resume, "release the kill switch / resume after a halt", _resume_args),
    "risk": (cmd_risk, "show or set the risk configuration", _risk_args),
    "strategy": (cmd_strategy, "list, show, apply, enable, disable strategies",
                 _strategy_args),
    "user": (cmd_user, "add a user (password prompted) or list users", _user_args),
    "api": (cmd_api, "serve the REST API", _api_args),
}
