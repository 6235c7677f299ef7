"""A simulated world around one pure gate `Book`, and a referee that checks every output.

The driver turns a list of *steps* (drawn by hypothesis) into the records the gate sees
in production: ideas built from snapshot bundles by `streams.proposals.propose`, signed
control commands (kill, resume, risk settings, strategies, approve, reject, and hostile
ones), account states with P/L moves, and broker order results. A small simulated broker
fills, refuses and closes the orders the gate sends.

The `Referee` re-checks each order request the gate produces with its own plain
arithmetic over what the driver sent (never the gate's helpers): confidence threshold,
lot caps, concurrent-trade caps, strategy state, session, news blackout, account
freshness, drawdown and target halts, kill switch, approval expiry. It also keeps every
status per idea (for the "one terminal status" rule) and every decision (hash chain).
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from streams import records
from streams.core.model import RiskConfig
from streams.core.strategy import parse_strategy
from streams.defaults import DEFAULT_RISK, default_risk_config
from streams.gatekeeper import Book, Outputs, config_hash
from streams.proposals import MarketContext, Proposal, from_bundle, propose
from topics.catalog import Catalog
from topics.commands import new_command

ACCOUNT = "acct-reliability"
KEY = b"reliability-command-key-0123456789abcdef"
OTHER_KEY = b"somebody-elses-key-0123456789abcdef"
ISSUER = "ops@example.com"
#: Monday 2024-04-01 06:00 UTC: the first London session opens an hour later.
T_START = datetime(2024, 4, 1, 6, 0, tzinfo=UTC)
CODE = "reliability"
#: the gate inbox's codec: what the worker's gate reads is what this writes
INBOX = Catalog("").codec("gate.inbox.v1")

ALL_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

#: Buys any closed M1 bar of gold or EURUSD once RSI > 1, round the clock.
ROUND_CLOCK: dict[str, Any] = {
    "id": "0c1f8d2a-9b7e-4c3d-8a11-5e2f60a7b001",
    "name": "Reliability round the clock",
    "version": 1,
    "is_active": True,
    "allowed_symbols": ["XAUUSD", "EURUSD"],
    "timeframes": ["M1"],
    "session_windows": [
        {"start": "00:00Z", "end": "12:00Z", "days": ALL_DAYS},
        {"start": "12:00Z", "end": "00:00Z", "days": ALL_DAYS},
    ],
    "entry_conditions": {"direction": "buy", "rsi_above": 1},
    "exit_rules": {"stop_loss": {"type": "atr", "multiple": 1.5}, "take_profit_rr": [2],
                   "time_limit_minutes": 30},
    "forbidden_conditions": {"block_high_impact_news_minutes": 15,
                             "blocked_symbols_during_news": ["USD"]},
    "risk_caps": {"max_lot_size": 1.0, "max_concurrent_positions": 4, "lot_size": 0.2},
    "rr_expectation": 2.0,
    "approval_ttl_minutes": 45,
}

#: Sells US30 or EURUSD in the London morning only, with a 30-minute news blackout.
LONDON: dict[str, Any] = {
    "id": "0c1f8d2a-9b7e-4c3d-8a11-5e2f60a7b002",
    "name": "Reliability London sell",
    "version": 1,
    "is_active": True,
    "allowed_symbols": ["US30", "EURUSD"],
    "timeframes": ["M1"],
    "session_windows": [{"start": "07:00Z", "end": "11:00Z",
                         "days": ["Mon", "Tue", "Wed", "Thu", "Fri"]}],
    "entry_conditions": {"direction": "sell", "rsi_below": 99},
    "exit_rules": {"stop_loss": {"type": "atr", "multiple": 2.0}, "take_profit_rr": [1.5, 3],
                   "time_limit_minutes": 120},
    "forbidden_conditions": {"block_high_impact_news_minutes": 30,
                             "blocked_symbols_during_news": ["EUR"]},
    "risk_caps": {"max_lot_size": 0.3, "max_concurrent_positions": 1, "lot_size": 0.3},
    "rr_expectation": 2.0,
}
STRATEGIES = (ROUND_CLOCK, LONDON)
SYMBOLS = {ROUND_CLOCK["id"]: ("XAUUSD", "EURUSD"), LONDON["id"]: ("US30", "EURUSD")}
PRICES = {"XAUUSD": 2380.0, "EURUSD": 1.085, "US30": 39000.0}

# Independent tables (deliberately not the core's): sessions, currencies, news windows.
CURRENCIES = {"XAUUSD": {"XAU", "USD"}, "EURUSD": {"EUR", "USD"}, "US30": {"USD"}}


DAYS = {name: i for i, name in enumerate(ALL_DAYS)}


def exactly(value: Any) -> Any:
    """`value` in a form that tells apart what `==` does not (1.5 and 1.50 as Decimals,
    1 and 1.0, True and 1), key order aside."""
    if isinstance(value, dict):
        return tuple(sorted((k, exactly(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(exactly(v) for v in value)
    return type(value).__name__, repr(value)


def in_windows(windows: Iterable[Mapping[str, Any]], at: datetime) -> bool:
    """Independent session rule for the UTC ("HH:MMZ") windows used here: start inclusive,
    end exclusive, a window whose end is before its start runs past midnight and belongs
    to the day it starts on."""
    utc = at.astimezone(UTC)
    minute = utc.hour * 60 + utc.minute + utc.second / 60
    for w in windows:
        start = int(w["start"][:2]) * 60 + int(w["start"][3:5])
        end = int(w["end"][:2]) * 60 + int(w["end"][3:5])
        days = {DAYS[d] for d in w["days"]}
        today, yesterday = utc.weekday(), (utc.weekday() - 1) % 7
        if start < end and today in days and start <= minute < end:
            return True
        if end < start and ((minute >= start and today in days)
                            or (minute < end and yesterday in days)):
            return True
    return False

TERMINAL = frozenset({"rejected_by_risk", "halted_by_risk", "rejected_by_human", "expired",
                      "executed", "failed"})
FIRST = frozenset({"pending_approval", "auto_executing", "rejected_by_risk", "halted_by_risk"})
NEXT = {"pending_approval": {"approved", "rejected_by_human", "expired"},
        "auto_executing": {"executed", "failed"}, "approved": {"executed", "failed"}}
HALT_REASONS = ("max_drawdown", "daily_target_reached", "weekly_target_reached")


def trading_date(at: datetime) -> Any:
    """The 22:00 UTC trading day, labelled with the date it mostly covers."""
    return (at + timedelta(hours=2)).date()


def cap_floor(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_FLOOR)


# ------------------------------------------------------------------------ records


def indicator_record(symbol: str, open_time: datetime, rsi: float, atr_pct: float,
                     offset: int) -> dict[str, Any]:
    """An IndicatorSnapshot record of a closed M1 bar (warm: every value present)."""
    close = PRICES[symbol] * (1 + (rsi - 50) / 5000)
    atr = close * atr_pct / 100
    return {
        "symbol": symbol, "timeframe": "M1", "open_time": open_time, "close": close,
        "spread": atr * 0.05, "rsi_14": rsi, "sma_50": close * 0.999, "sma_200": close * 0.998,
        "macd": 0.2, "macd_signal": 0.1, "macd_hist": 0.1, "prev_macd_hist": 0.05,
        "atr_14": atr, "day_open": close * 0.999, "pct_move_today": 0.1,
        "swing_high": close + 2 * atr, "swing_low": close - 2 * atr,
        "input_partition": 0, "input_offset": offset,
    }


def candle_record(ind: Mapping[str, Any]) -> dict[str, Any]:
    close = ind["close"]
    return {"symbol": ind["symbol"], "timeframe": "M1", "open_time": ind["open_time"],
            "open": close, "high": close * 1.0005, "low": close * 0.9995, "close": close,
            "volume": 100, "source": "reliability", "spread": ind["spread"], "closed": True}


def calendar_record(n: int, at: datetime, currency: str, impact: str) -> dict[str, Any]:
    return {"event_id": f"ev-{n}", "event_time": at, "all_day": False, "currency": currency,
            "impact": impact, "title": f"Release {n}", "previous_raw": None,
            "forecast_raw": None, "actual_raw": None, "previous": None, "forecast": None,
            "actual": None, "source": "reliability", "captured_at": at - timedelta(days=1)}


def risk_payload(**overrides: Any) -> dict[str, Any]:
    """A full risk config payload (as `RiskConfig.to_dict` writes it)."""
    payload = default_risk_config().to_dict()
    payload.update(overrides)
    return payload


#: Payloads the gate must refuse with `invalid_payload`, whatever else happens.
BAD_RISK: tuple[dict[str, Any], ...] = (
    risk_payload(max_lot_size="0"),
    risk_payload(min_confidence_threshold="101"),
    risk_payload(max_drawdown_amount="-5"),
    risk_payload(max_concurrent_trades=2.5),
    risk_payload(ai_trading_enabled="false"),
    risk_payload(surprise=True),
    {k: v for k, v in DEFAULT_RISK.items() if k != "max_lot_size"},
    risk_payload(trading_day_start="25:00"),
    risk_payload(approval_ttl_minutes=-1),
)


# ------------------------------------------------------------------------ referee


@dataclass
class SentIdea:
    """What the driver knows of an idea it sent (never read back from the gate)."""

    record: dict[str, Any]
    bundle: dict[str, Any]
    strategy_id: str

    @property
    def created_at(self) -> datetime:
        created: datetime = self.record["created_at"]
        return created


@dataclass
class Referee:
    """Independent model of the rules, fed with the driver's inputs and the gate's outputs."""

    config: RiskConfig = field(default_factory=default_risk_config)
    ai_on: bool = False
    halted: bool = False
    killed: bool = False
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> definition
    ideas: dict[str, SentIdea] = field(default_factory=dict)
    #: exposure key -> (strategy id or None, filled at or None while in flight)
    exposure: dict[str, tuple[str | None, datetime | None]] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    applied_account: dict[str, Any] | None = None
    violations: list[str] = field(default_factory=list)
    orders_while_killed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # ---- inputs

    def on_account(self, record: Mapping[str, Any]) -> None:
        """An account state the gate applies (not older than the last one applied)."""
        last = self.applied_account
        if last is not None and record["captured_at"] < last["captured_at"]:
            return
        self.applied_account = dict(record)
        if not record["reconciled"]:
            return
        captured = record["captured_at"]
        listed = {p["idea_id"] or f"ticket:{p['ticket']}": p["strategy_id"]
                  for p in record["positions"]}
        kept = {k: v for k, v in self.exposure.items()
                if k in self.in_flight or (v[1] is not None and v[1] > captured)}
        self.exposure = {**{k: (s, captured) for k, s in listed.items()}, **kept}

    def on_result(self, record: Mapping[str, Any]) -> None:
        idea_id = record["idea_id"]
        if idea_id not in self.in_flight:
            return
        self.in_flight.discard(idea_id)
        if record["status"] in ("filled", "placed"):
            strategy = self.exposure.get(idea_id, (None, None))[0]
            self.exposure[idea_id] = (strategy, record["executed_at"])
        else:
            self.exposure.pop(idea_id, None)

    # ---- outputs

    def on_outputs(self, out: Outputs, command: Mapping[str, Any] | None = None) -> None:
        """Check the orders against the model *before* the outputs change it."""
        for order in out.orders:
            self._check_order(order, command)
        for status in out.statuses:
            self.statuses.setdefault(status["idea_id"], []).append(status["status"])
        self.decisions.extend(out.decisions)
        for decision in out.decisions:
            self._on_decision(decision)
        for reply in out.replies:
            if reply["status"] == "accepted" and command is not None:
                self._on_accepted(command)
        for order in out.orders:
            self.requests.append(order)
            self.in_flight.add(order["idea_id"])
            self.exposure[order["idea_id"]] = (order["strategy_id"], None)

    def _on_decision(self, decision: Mapping[str, Any]) -> None:
        result = decision.get("risk_check_result") or ""
        if decision["action"] == "ai_halted" and result.removeprefix("fail:") in HALT_REASONS:
            self.halted, self.ai_on = True, False
            self.count("halts")

    def _on_accepted(self, command: Mapping[str, Any]) -> None:
        kind = command["kind"]
        self.count(f"accepted:{kind}")
        if kind == "kill_switch":
            self.killed = True
        elif kind == "resume":
            self.killed = self.halted = False
            self.ai_on = True
        elif kind == "set_risk_config":
            payload = json.loads(command["payload_json"])
            wanted = bool(payload.get("ai_trading_enabled", False))
            if wanted and not self.ai_on:
                self.ai_on, self.halted = True, False
            elif not wanted:
                self.ai_on = False
            self.config = RiskConfig.from_dict(payload)
        elif kind == "put_strategy":
            payload = json.loads(command["payload_json"])
            sid = command["strategy_id"]
            if "definition" in payload:
                self.strategies[sid] = copy.deepcopy(payload["definition"])
            else:
                self.strategies[sid] = {**self.strategies[sid],
                                        "is_active": bool(payload["is_active"])}

    # ---- the rules, in plain arithmetic

    def _check_order(self, order: Mapping[str, Any], command: Mapping[str, Any] | None) -> None:
        human = bool(order["human_override"])
        self.count("orders_human" if human else "orders_auto")
        if self.killed:
            self.orders_while_killed += 1
        idea = self.ideas.get(order["idea_id"])
        if idea is None:
            self.violations.append(f"order {order['request_id']} for an idea never sent")
            return
        at = command["issued_at"] if human and command is not None else idea.created_at
        found = self._rule_breaks(order, idea, at, human)
        if found:
            kind = "approved" if human else "autonomous"
            self.violations.append(f"{kind} order {order['request_id']} at {at.isoformat()} "
                                   f"breaks: {', '.join(found)}")

    def _rule_breaks(self, order: Mapping[str, Any], idea: SentIdea, at: datetime,
                     human: bool) -> list[str]:
        cfg, found = self.config, []
        if self.killed:
            found.append("kill switch active")
        if self.halted:
            found.append("AI halted")
        if not human:
            if not self.ai_on:
                found.append("AI trading off (supervised)")
            if Decimal(idea.record["confidence"]) < cfg.min_confidence_threshold:
                found.append(f"confidence {idea.record['confidence']} < "
                             f"{cfg.min_confidence_threshold}")
            if idea.record["symbol"] not in cfg.watchlist and not cfg.allow_off_watchlist_autotrade:
                found.append("off the watchlist")
        account = idea.bundle.get("account_state") if not human else self.applied_account
        found += self._account_breaks(account, at)
        found += self._limit_breaks(order, idea)
        found += self._strategy_breaks(idea, at, human)
        found += self._news_breaks(idea, at)
        if any(r["request_id"] == order["request_id"] for r in self.requests):
            found.append("duplicate request id")
        return found

    def _account_breaks(self, account: Mapping[str, Any] | None, at: datetime) -> list[str]:
        cfg = self.config
        if account is None or not account["reconciled"]:
            return ["no reconciled account"]
        if at - account["captured_at"] > cfg.account_max_age:
            return ["account stale"]
        applied = self.applied_account
        realised = Decimal(0)
        if applied is not None and trading_date(applied["captured_at"]) == trading_date(at):
            realised = applied["realized_pl_today"]
        pnl = realised + account["open_pl"]
        found = []
        if pnl <= -cfg.max_drawdown_amount:
            found.append(f"drawdown: P/L {pnl} <= -{cfg.max_drawdown_amount}")
        target = cfg.daily_profit_target
        if cfg.stop_after_target and target is not None and pnl >= target:
            found.append(f"daily target: P/L {pnl} >= {target}")
        return found

    def _limit_breaks(self, order: Mapping[str, Any], idea: SentIdea) -> list[str]:
        cfg, found = self.config, []
        strategy = self.strategies.get(idea.strategy_id)
        strategy_cap = (Decimal(str(strategy["risk_caps"]["max_lot_size"])) if strategy
                        else Decimal(0))
        cap = cap_floor(min(cfg.max_lot_size, strategy_cap))
        if order["lot_size"] > cap:
            found.append(f"lots {order['lot_size']} > cap {cap}")
        if len(self.exposure) >= cfg.max_concurrent_trades:
            found.append(f"{len(self.exposure)} open >= max {cfg.max_concurrent_trades}")
        if strategy is not None:
            mine = sum(1 for s, _ in self.exposure.values() if s == idea.strategy_id)
            if mine >= strategy["risk_caps"]["max_concurrent_positions"]:
                found.append(f"{mine} open for the strategy")
        return found

    def _strategy_breaks(self, idea: SentIdea, at: datetime, human: bool) -> list[str]:
        strategy = self.strategies.get(idea.strategy_id)
        if strategy is None:
            return ["unknown strategy"]
        found = []
        if not strategy["is_active"]:
            found.append("strategy inactive")
        if parse_strategy(strategy).definition_hash != idea.record["strategy_hash"]:
            found.append("strategy changed since the idea")
        if idea.record["symbol"] not in strategy["allowed_symbols"]:
            found.append("symbol not allowed")
        if not in_windows(strategy["session_windows"], at):
            found.append("outside the session")
        if human:
            ttl = strategy.get("approval_ttl_minutes")
            expires = idea.created_at + (timedelta(minutes=ttl) if ttl is not None
                                         else self.config.approval_ttl)
            if at >= expires:
                found.append("approved after the idea expired")
        return found

    def _news_breaks(self, idea: SentIdea, at: datetime) -> list[str]:
        strategy = self.strategies.get(idea.strategy_id)
        if strategy is None:
            return []
        minutes = strategy["forbidden_conditions"]["block_high_impact_news_minutes"]
        if minutes == 0:
            return []
        bundle = idea.bundle
        ok_at = bundle["calendar_last_success"]
        if ok_at is None or at - ok_at > self.config.calendar_max_age:
            return ["calendar stale"]
        relevant = (CURRENCIES[idea.record["symbol"]]
                    | set(strategy["forbidden_conditions"]["blocked_symbols_during_news"]))
        window = timedelta(minutes=minutes)
        for event in bundle["calendar"]:
            if (event["impact"] == "high" and event["currency"] in relevant
                    and abs(event["event_time"] - at) <= window):
                return [f"news blackout ({event['currency']} at {event['event_time']})"]
        return []

    # ---- end of run

    def status_problems(self) -> list[str]:
        """Ideas whose statuses do not follow one legal path to at most one terminal."""
        problems = []
        for idea_id, seq in self.statuses.items():
            if seq[0] not in FIRST:
                problems.append(f"{idea_id}: first status {seq[0]}")
            for before, after in zip(seq, seq[1:], strict=False):
                if after not in NEXT.get(before, set()):
                    problems.append(f"{idea_id}: {before} -> {after} ({seq})")
            if sum(s in TERMINAL for s in seq) > 1:
                problems.append(f"{idea_id}: several terminal statuses {seq}")
        for idea_id in self.ideas:
            if idea_id not in self.statuses:
                problems.append(f"{idea_id}: sent to the gate, never got a status")
        return problems


# ------------------------------------------------------------------------ driver


@dataclass
class Broker:
    """The simulated broker: positions from filled orders, P/L as the steps say."""

    positions: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_ticket: int = 5000
    open_pl: Decimal = Decimal("0.00")
    realised: Decimal = Decimal("0.00")
    realised_day: Any = None

    def position(self, order: Mapping[str, Any], at: datetime) -> int:
        self.next_ticket += 1
        self.positions[self.next_ticket] = {
            "ticket": self.next_ticket, "symbol": order["symbol"],
            "direction": order["direction"], "volume": order["lot_size"],
            "entry_price": PRICES[order["symbol"]], "stop_loss": order["stop_loss"],
            "take_profit": list(order["take_profit"]), "unrealized_pl": Decimal("0.00"),
            "opened_at": at, "idea_id": order["idea_id"], "strategy_id": order["strategy_id"],
            "magic": 1,
        }
        return self.next_ticket


@dataclass
class Run:
    """Every input fed and every output produced, in order."""

    inputs: list[tuple[str, Any]] = field(default_factory=list)
    outputs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class World:
    """Feeds a `Book` from steps and lets a `Referee` watch (see the module docstring).

    `skew` moves the wall clock the gate verifies commands against (never event time):
    two runs with different skews must decide identically.
    """

    def __init__(self, skew: timedelta = timedelta(0), restart_roundtrip: bool = True) -> None:
        self.skew = skew
        self.restart_roundtrip = restart_roundtrip
        self.now = T_START
        self.stores: dict[str, dict[str, Any]] = {"pending": {}, "decided": {}, "commands": {}}
        self.book = Book.new(ACCOUNT, default_risk_config(), CODE, **self.stores)
        self.referee = Referee()
        self.broker = Broker()
        self.run = Run()
        self.calendar: list[dict[str, Any]] = []
        self.calendar_ok: datetime | None = T_START
        self.context_account: dict[str, Any] | None = None
        self.offset = 0
        self.sent_ideas: list[dict[str, Any]] = []
        self.sent_results: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.broker_pending: dict[str, dict[str, Any]] = {}
        self.events = 0
        self.commands_made = 0
        self.market_view: dict[str, dict[str, Any]] = {}
        self.calendar_down = False
        self.broker_down = False

    # ---- plumbing

    def _tick(self, seconds: int = 1) -> None:
        self.now += timedelta(seconds=max(1, seconds))

    def _record(self, kind: str, payload: Any, out: Outputs,
                command: Mapping[str, Any] | None = None) -> Outputs:
        self.events += 1
        self.run.inputs.append((kind, payload))
        self.run.outputs.extend(out.records(ACCOUNT))
        self.referee.on_outputs(out, command)
        for order in out.orders:
            self.broker_pending[order["idea_id"]] = order
        return out

    def command(self, kind: str, *, delay: int = 3, key: bytes = KEY,
                issued: datetime | None = None, **kw: Any) -> Outputs:
        """A signed command, checked against the gate's wall clock (event time + delay)."""
        self._tick()
        cmd = new_command(kind, ACCOUNT, ISSUER, key, now=issued or self.now,
                          command_id=self.command_id(), **kw)
        return self.send_command(cmd, delay)

    def command_id(self) -> str:
        """Deterministic command ids, so that two runs of one sequence can be compared."""
        self.commands_made += 1
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"reliability-{self.commands_made}"))

    def send_command(self, cmd: dict[str, Any], delay: int = 3) -> Outputs:
        wall = self.now + timedelta(seconds=delay) + self.skew
        out = self.book.on_command(cmd, KEY, wall)
        if out.replies and out.replies[0]["status"] == "accepted":
            self.accepted.append(cmd)
        return self._record("command", cmd, out, cmd)

    # ---- set up

    def start(self, **risk: Any) -> None:
        """Both strategies, a fresh account, autonomous mode unless told otherwise."""
        for definition in STRATEGIES:
            self.command("put_strategy", strategy_id=definition["id"],
                         payload={"definition": definition})
        self.account()
        self.command("set_risk_config", payload=risk_payload(**{
            "ai_trading_enabled": True, "min_confidence_threshold": "50",
            "max_lot_size": "1.00", "max_concurrent_trades": 3,
            "daily_profit_target": "2000.00", "max_drawdown_amount": "1000.00",
            "watchlist": ["XAUUSD", "EURUSD", "US30"], **risk}))

    # ---- market

    def candle(self, strategy_index: int, symbol_index: int, advance: int, rsi: float,
               atr_pct: float) -> Outputs | None:
        """A closed bar; when a strategy matches, its idea goes to the gate with its bundle."""
        self.now = (self.now + timedelta(seconds=max(60, advance))).replace(second=0)
        if not self.calendar_down:  # the calendar feed succeeds every few minutes
            self.calendar_ok = self.now - timedelta(seconds=20)
        if not self.broker_down:  # the broker answers, closes, publishes the account
            self.broker_round()
            self.account()
        definition = STRATEGIES[strategy_index % len(STRATEGIES)]
        sid = definition["id"]
        # The market agent learns strategy changes from a topic, one bar late here: the
        # gate must catch an idea made with a definition it has since replaced.
        strategy = parse_strategy(self.market_view.get(sid, definition))
        self.market_view = copy.deepcopy(self.referee.strategies)
        symbols = SYMBOLS[sid]
        symbol = symbols[symbol_index % len(symbols)]
        self.offset += 1
        ind = indicator_record(symbol, self.now - timedelta(minutes=1), rsi, atr_pct,
                               self.offset)
        ctx = MarketContext(account_id=ACCOUNT, code_version=CODE, calendar=self.calendar,
                            calendar_last_success=self.calendar_ok,
                            account=self.context_account)
        proposal = propose(strategy, candle_record(ind), ind, ctx)
        if proposal is None:
            return None
        message = {"account": ACCOUNT, "idea": proposal.idea_record, "bundle": proposal.bundle,
                   "command": None}
        # The worker's gate takes the market agent's message and derivation for the inbox
        # record it wrote (`proposals.Derivations`): sound only if the record reads back
        # as that very message, whose bundle derives the very same idea.
        read_back = INBOX.decode(INBOX.encode(message))
        assert exactly(read_back) == exactly(message)
        again = from_bundle(read_back["bundle"])
        assert isinstance(again, Proposal)
        assert (again.idea, again.confidence, again.idea_record) == (
            proposal.idea, proposal.confidence, proposal.idea_record)
        return self.idea(message, derived=proposal)

    def idea(self, message: dict[str, Any], derived: Proposal | None = None) -> Outputs:
        record = message["idea"]
        self.referee.ideas.setdefault(record["idea_id"], SentIdea(
            record, message["bundle"], record["strategy_id"]))
        self.sent_ideas.append(message)
        inputs = [{"topic": "gate.inbox.v1", "partition": 0, "offset": self.offset}]
        out = self.book.on_idea(message, inputs, derived)
        return self._record("idea", message, out)

    def add_event(self, minutes: int, currency: str, impact: str) -> None:
        self._tick()
        self.calendar.append(calendar_record(len(self.calendar), self.now
                                             + timedelta(minutes=minutes), currency, impact))

    def calendar_feed(self, down: bool) -> None:
        """The calendar feed stops (or starts again) succeeding."""
        self._tick()
        self.calendar_down = down
        if not down:
            self.calendar_ok = self.now

    def broker_feed(self, down: bool) -> None:
        """The broker service stops (or starts again) publishing account states."""
        self._tick()
        self.broker_down = down

    # ---- broker

    def account(self, open_pl: int | None = None, realised: int | None = None,
                reconciled: bool = True, lag: int = 5) -> Outputs:
        """The broker's account captured `lag` seconds ago, with its positions; P/L moves to
        `open_pl` / `realised` when given."""
        self._tick()
        broker = self.broker
        day = trading_date(self.now)
        if broker.realised_day != day:
            broker.realised_day, broker.realised = day, Decimal("0.00")
        if realised is not None:
            broker.realised = Decimal(realised).quantize(Decimal("0.01"))
        if open_pl is not None:
            broker.open_pl = Decimal(open_pl).quantize(Decimal("0.01"))
        record = {
            "account": ACCOUNT, "broker": "paper", "currency": "USD",
            "balance": Decimal("10000.00") + broker.realised,
            "equity": Decimal("10000.00") + broker.realised + broker.open_pl,
            "margin_used": Decimal("100.00"), "margin_free": Decimal("9000.00"),
            "open_pl": broker.open_pl, "realized_pl_today": broker.realised,
            "positions": [dict(p) for p in broker.positions.values()],
            "reconciled": reconciled, "captured_at": self.now - timedelta(seconds=max(0, lag)),
        }
        self.context_account = record
        self.referee.on_account(record)
        return self._record("account", record, self.book.on_account(record, now=self.now))

    def result(self, pick: int, status: str) -> Outputs | None:
        """The broker's answer to one order still waiting for one."""
        waiting = sorted(self.broker_pending)
        if not waiting:
            return None
        self._tick()
        order = self.broker_pending.pop(waiting[pick % len(waiting)])
        ticket = self.broker.position(order, self.now) if status in ("filled", "placed") else None
        record = {
            "request_id": order["request_id"], "idea_id": order["idea_id"], "account": ACCOUNT,
            "status": status, "broker": "paper", "broker_order_id": ticket,
            "broker_deal_id": ticket, "position_ticket": ticket,
            "filled_price": PRICES[order["symbol"]] if ticket else None,
            "filled_volume": order["lot_size"] if ticket else None, "retcode": None,
            "error_code": None if ticket else status, "message": status,
            "executed_at": self.now,
        }
        self.sent_results.append(record)
        self.referee.on_result(record)
        return self._record("result", record, self.book.on_order_result(record))

    def broker_round(self) -> None:
        """What the broker did since the last bar: every order answered (mostly filled),
        positions past their time limit closed with a P/L (both derived from the ids, so
        a sequence always plays out the same)."""
        for idea_id in sorted(self.broker_pending):
            roll = int(hashlib.sha256(idea_id.encode()).hexdigest(), 16)
            status = "filled" if roll % 10 < 8 else ("rejected", "failed")[roll % 2]
            self.result(sorted(self.broker_pending).index(idea_id), status)
        for ticket, position in sorted(self.broker.positions.items()):
            roll = int(hashlib.sha256(str(ticket).encode()).hexdigest(), 16)
            if self.now - position["opened_at"] >= timedelta(minutes=5 + roll % 25):
                self.broker.positions.pop(ticket)
                self.broker.realised += Decimal(roll % 801 - 400)

    def close(self, pick: int, pl: int) -> None:
        """The broker closes a position (stop or target hit); P/L is realised."""
        tickets = sorted(self.broker.positions)
        if tickets:
            self._tick()
            self.broker.positions.pop(tickets[pick % len(tickets)])
            self.broker.realised += Decimal(pl)

    # ---- humans

    def pending_ideas(self) -> list[str]:
        """Ideas the driver saw go to pending_approval and not leave it (from statuses)."""
        return sorted(i for i, seq in self.referee.statuses.items()
                      if seq[-1] == "pending_approval")

    def approve(self, pick: int, lots: Decimal | None) -> Outputs | None:
        waiting = self.pending_ideas()
        if not waiting:
            return None
        return self.command("approve_idea", idea_id=waiting[pick % len(waiting)], lot_size=lots)

    def reject(self, pick: int) -> Outputs | None:
        waiting = self.pending_ideas()
        if not waiting:
            return None
        return self.command("reject_idea", idea_id=waiting[pick % len(waiting)],
                            reason="not convinced")

    def strategy_change(self, index: int, change: str, value: int) -> Outputs:
        definition = STRATEGIES[index % len(STRATEGIES)]
        sid = definition["id"]
        current = copy.deepcopy(self.referee.strategies.get(sid, definition))
        if change == "toggle":
            return self.command("put_strategy", strategy_id=sid,
                                payload={"is_active": not current["is_active"]})
        current["version"] += 1
        if change == "lots":
            lots = [0.05, 0.1, 0.2, 0.5, 1.0][value % 5]
            current["risk_caps"] = {**current["risk_caps"], "lot_size": lots,
                                    "max_lot_size": max(lots, [0.1, 0.3, 1.0][value % 3])}
        elif change == "positions":
            current["risk_caps"] = {**current["risk_caps"],
                                    "max_concurrent_positions": 1 + value % 3}
        elif change == "symbols":
            allowed = SYMBOLS[sid]
            current["allowed_symbols"] = [allowed[value % 2]] if value % 3 else list(allowed)
        elif change == "session":
            start = (6, 7, 9, 12, 15)[value % 5]
            current["session_windows"] = [{"start": f"{start:02d}:00Z",
                                           "end": f"{start + 3 + value % 3:02d}:00Z",
                                           "days": ["Mon", "Tue", "Wed", "Thu", "Fri"]}]
        else:  # news
            current["forbidden_conditions"] = {
                **current["forbidden_conditions"],
                "block_high_impact_news_minutes": [0, 5, 15, 60][value % 4]}
        return self.command("put_strategy", strategy_id=sid, payload={"definition": current})

    # ---- hostile commands: refused, and nothing else changes

    def hostile(self, kind: str) -> tuple[Outputs, dict[str, Any], dict[str, Any]]:
        """A command the gate must refuse; returns outputs and the book before / after."""
        before = self.snapshot()
        self._tick()
        if kind == "replayed" and self.accepted:
            # the newest applied command, signed and (often) still fresh: only its id
            # gives it away; an older one is refused as stale first, refused either way
            out = self.send_command(self.accepted[-1], delay=1)
        else:
            cmd = self._hostile_command(kind)
            out = self.send_command(cmd)
        return out, before, self.snapshot()

    def _hostile_command(self, kind: str) -> dict[str, Any]:
        cid, now = self.command_id(), self.now
        if kind == "forged":
            return new_command("kill_switch", ACCOUNT, ISSUER, OTHER_KEY, now=now,
                               command_id=cid, reason="forged")
        if kind == "stale":
            return new_command("resume", ACCOUNT, ISSUER, KEY, command_id=cid,
                               now=now - timedelta(minutes=10))
        if kind == "future":
            return new_command("resume", ACCOUNT, ISSUER, KEY, command_id=cid,
                               now=now + timedelta(minutes=5))
        if kind == "unsigned":
            cmd = new_command("resume", ACCOUNT, ISSUER, KEY, now=now, command_id=cid)
            return {**cmd, "signature": ""}
        if kind == "altered":
            cmd = new_command("set_risk_config", ACCOUNT, ISSUER, KEY, now=now, command_id=cid,
                              payload=risk_payload(ai_trading_enabled=True))
            payload = {**json.loads(cmd["payload_json"]), "max_lot_size": "50.00"}
            return {**cmd, "payload_json": json.dumps(payload, sort_keys=True)}
        if kind == "broker_kind":
            return new_command("refresh_account", ACCOUNT, ISSUER, KEY, now=now, command_id=cid)
        # replayed with nothing accepted yet: a forged approval instead
        return new_command("approve_idea", ACCOUNT, ISSUER, OTHER_KEY, now=now, command_id=cid,
                           idea_id="no-such-idea")

    def snapshot(self) -> dict[str, Any]:
        """The book's whole state as JSON-able data (record + keyed stores)."""
        return json.loads(json.dumps({"book": self.book.to_state(), "stores": self.stores},
                                     sort_keys=True, default=str))

    # ---- redelivery and restarts (at-least-once)

    def redeliver(self, pick: int) -> Outputs | None:
        """An idea message or an order result delivered a second time."""
        pool: list[tuple[str, dict[str, Any]]] = [
            *(("idea", m) for m in self.sent_ideas), *(("result", r) for r in self.sent_results)]
        if not pool:
            return None
        kind, record = pool[pick % len(pool)]
        if kind == "idea":
            inputs = [{"topic": "gate.inbox.v1", "partition": 0, "offset": self.offset}]
            return self._record("redelivered idea", record, self.book.on_idea(record, inputs))
        return self._record("redelivered result", record, self.book.on_order_result(record))

    def restart(self) -> None:
        """The worker restarts: the book comes back from its table (JSON round trip)."""
        if not self.restart_roundtrip:
            return
        data = json.loads(json.dumps(self.book.to_state()))
        self.stores = {name: json.loads(json.dumps(store)) for name, store in self.stores.items()}
        self.book = Book.from_state(data, **self.stores)


def interpret(world: World, steps: Iterable[tuple[Any, ...]]) -> None:
    """Apply hypothesis-drawn steps to a world (see `tests/reliability/test_book_invariants`).

    A `kill` step carries how many steps later a human resumes (None: not by itself)."""
    resume_in: int | None = None
    for step in steps:
        name, args = step[0], step[1:]
        if name == "kill":
            world.command("kill_switch", reason="hands off")
            resume_in = args[0]
        else:
            STEP_HANDLERS[name](world, *args)
        _check_gate_state_json(world)
        if resume_in is not None:
            resume_in -= 1
            if resume_in <= 0:
                world.command("resume", reason="reviewed")
                resume_in = None


def _check_gate_state_json(world: World) -> None:
    """What the next decision will record as the gate's state (kept between changes by
    the book) is what the state and account now give."""
    book = world.book
    fresh = records.canonical({"gate": book.state.to_state(), "account": book.last_account,
                               "config_hash": config_hash(book.state.config)})
    if book.gate_state_json() != fresh:
        world.referee.violations.append("the gate-state JSON a decision records is stale")


def _redeliver_step(world: World, pick: int) -> None:
    out = world.redeliver(pick)
    if out is not None and (out.decisions or out.orders or out.replies):
        world.referee.violations.append("a redelivered record was decided again")


def _hostile_step(world: World, kind: str) -> None:
    out, before, after = world.hostile(kind)
    reply = out.replies[0] if out.replies else None
    if reply is None or reply["status"] != "refused":
        world.referee.violations.append(f"hostile {kind} command not refused: {reply}")
    if out.decisions or out.statuses or out.orders or out.risk_states or out.strategy_states:
        world.referee.violations.append(f"hostile {kind} command produced records")
    if before != after:
        world.referee.violations.append(f"hostile {kind} command changed the book")
    world.referee.count("refused")


def _bad_risk_step(world: World, which: int) -> None:
    before = world.book.state.config
    out = world.command("set_risk_config", payload=BAD_RISK[which % len(BAD_RISK)])
    reply = out.replies[0]
    if reply["status"] != "refused" or not str(reply["reason"]).startswith("invalid_payload"):
        world.referee.violations.append(f"invalid risk config {which} answered {reply}")
    if world.book.state.config != before or out.decisions or out.orders or out.risk_states:
        world.referee.violations.append(f"invalid risk config {which} changed something")


def _risk_step(world: World, ai: bool, threshold: int, lots: str, concurrent: int,
               target: int | None, drawdown: int, stop_after: bool, halt_dd: bool,
               watch: tuple[str, ...], off_watch: bool, acct_age: int, cal_age: int,
               ttl: int) -> None:
    world.command("set_risk_config", payload=risk_payload(
        ai_trading_enabled=ai, min_confidence_threshold=str(threshold), max_lot_size=lots,
        max_concurrent_trades=concurrent,
        daily_profit_target=None if target is None else f"{target}.00",
        max_drawdown_amount=f"{drawdown}.00", stop_after_target=stop_after,
        halt_on_drawdown=halt_dd, watchlist=list(watch),
        allow_off_watchlist_autotrade=off_watch, account_max_age_minutes=acct_age,
        calendar_max_age_minutes=cal_age, approval_ttl_minutes=ttl))


STEP_HANDLERS: dict[str, Any] = {
    "candle": World.candle,
    "account": World.account,
    "result": World.result,
    "close": World.close,
    "event": World.add_event,
    "calendar": World.calendar_feed,
    "broker": World.broker_feed,
    "resume": lambda w: w.command("resume", reason="reviewed"),
    "risk": _risk_step,
    "bad_risk": _bad_risk_step,
    "approve": World.approve,
    "reject": World.reject,
    "strategy": World.strategy_change,
    "hostile": _hostile_step,
    "redeliver": _redeliver_step,
    "restart": World.restart,
    "wait": lambda w, s: w._tick(s),
}
