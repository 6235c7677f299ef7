"""Risk & autonomy gate (blueprint §4.2.3, §4.2.4, §14.2, §14.3) and its state machine.

`decide(idea, confidence, strategy, state, context, now)` runs every check below and
returns a `GateResult` listing all of them. `GateState` is the per-account state the gate
carries between events (kill switch, risk config incl. `ai_trading_enabled` and
`last_halt_reason`, open and pending positions, today's and this week's realised P/L);
its methods are pure transitions returning a new state plus the decision records to
log. `now` is always the event's time; nothing here reads a clock.

Outcome mapping
===============

Each check has a severity. The outcome is set by the most severe failed check, and the
`risk_check_result` is `pass` or `fail:<reason>` of the *first* failed check (in the
order below) of that severity:

================  ======================================================  ===============
severity          checks                                                  outcome
================  ======================================================  ===============
halt              kill_switch, ai_halted, max_drawdown (when               halted_by_risk
                  halt_on_drawdown), daily_target / weekly_target (only
                  fail when stop_after_target)
reject            account_fresh, max_drawdown (halt_on_drawdown off),      rejected
                  idea_valid, not_duplicate, strategy_active,
                  strategy_version, symbol_allowed, session,
                  calendar_fresh, news_blackout, lot_size,
                  max_concurrent_trades, strategy_positions
approval          ai_trading_enabled, confidence_threshold, watchlist     needs_approval
(none failed)                                                             auto_execute
================  ======================================================  ===============

So `ai_trading_enabled = false` without a halt reason is the blueprint's *supervised
mode*: ideas that pass every hard rule wait for a human, none is auto-executed. A halt
(`last_halt_reason` set by a trigger) or the kill switch stops ideas outright.

A failed `max_drawdown` (with halt_on_drawdown) or target check (with
stop_after_target) is also a **halt trigger** (§14.2) when the gate is not halted yet:
`ai_trading_enabled` goes off, `last_halt_reason` is set and an `ai_halted` decision
is logged. A new trading day resets today's P/L but never a halt; only `resume` (or
re-enabling in the settings) clears it.

Checks and reason codes
=======================

======================  ================================  =================================
check                   fail reason (risk_check_result)   approval refusal reason
======================  ================================  =================================
kill_switch             kill_switch_active                kill_switch_active
ai_halted               ai_halted                         ai_halted
idea_expiry (approval)  idea_expired                      idea_expired
account_fresh           account_stale /                   account_stale /
                        account_unreconciled              account_unreconciled
max_drawdown            max_drawdown (or account_stale    max_drawdown_breached
                        when the open P/L is unknown)
daily_target            daily_target_reached              daily_target_reached
weekly_target           weekly_target_reached             weekly_target_reached
idea_valid              invalid_idea                      invalid_idea
not_duplicate           duplicate_idea                    already_executed
strategy_active         strategy_inactive /               strategy_inactive /
                        strategy_unknown                  strategy_unknown
strategy_version        strategy_changed                  strategy_changed
symbol_allowed          symbol_not_allowed                symbol_not_allowed
session                 outside_session                   outside_session
calendar_fresh          calendar_stale                    calendar_stale
news_blackout           news_blackout                     news_blackout
lot_size                lot_size                          lot_size_exceeds_max
max_concurrent_trades   max_concurrent_trades             max_concurrent_trades_exceeded
strategy_positions      strategy_max_positions            strategy_max_positions_exceeded
ai_trading_enabled      ai_trading_disabled               (not re-checked: a human decides)
confidence_threshold    confidence_below_threshold        (not re-checked)
watchlist               off_watchlist                     (not re-checked)
======================  ================================  =================================

Rules in numbers: today's P/L = realised today + the account's open P/L; drawdown is
breached when it is <= -max_drawdown_amount, a target is reached when P/L >= target
(the week adds the earlier days of the trading week). Confidence passes when
score >= threshold (equality passes). Lots: requested lots rounded up to 0.01 must be
<= min(global cap, strategy cap), each rounded down. Concurrency counts open *and*
pending positions: open < max. Account and calendar are fresh when their age <= the
configured maximum. An idea waiting for approval expires at created_at + TTL (the
strategy's `approval_ttl_minutes`, else the config's); at that instant it is expired.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from streams.core.calendar import (
    DEFAULT_SYMBOLS,
    SessionWindow,
    SymbolCurrencies,
    blocking_events,
    calendar_fresh,
    in_session,
    relevant_currencies,
    trading_day,
    trading_week,
)
from streams.core.confidence import ConfidenceResult
from streams.core.ids import uuid5_text
from streams.core.model import (
    CENT,
    LOT_STEP,
    AccountState,
    Approval,
    CalendarStatus,
    KillSwitch,
    Position,
    RiskConfig,
    TradeIdea,
    fmt_decimal,
    fmt_money,
    lots_cap,
    lots_requested,
    money,
    parse_time,
    require_aware,
    to_decimal,
)
from streams.core.strategy import Strategy

Outcome = Literal["auto_execute", "needs_approval", "rejected", "halted_by_risk"]
Severity = Literal["halt", "reject", "approval"]
DecisionAction = Literal[
    "ai_proposed",
    "ai_auto_executed",
    "human_approved",
    "human_rejected",
    "risk_rejected",
    "ai_halted",
    "ai_resumed",
]

HALT_MAX_DRAWDOWN = "max_drawdown"
HALT_DAILY_TARGET = "daily_target_reached"
HALT_WEEKLY_TARGET = "weekly_target_reached"
HALT_REASONS = (HALT_MAX_DRAWDOWN, HALT_DAILY_TARGET, HALT_WEEKLY_TARGET)

APPROVAL_REASONS: dict[str, str] = {
    "max_drawdown": "max_drawdown_breached",
    "duplicate_idea": "already_executed",
    "lot_size": "lot_size_exceeds_max",
    "max_concurrent_trades": "max_concurrent_trades_exceeded",
    "strategy_max_positions": "strategy_max_positions_exceeded",
}

_OUTCOME_OF: dict[Severity, Outcome] = {
    "halt": "halted_by_risk",
    "reject": "rejected",
    "approval": "needs_approval",
}
_ACTION_OF: dict[Outcome, DecisionAction] = {
    "auto_execute": "ai_auto_executed",
    "needs_approval": "ai_proposed",
    "rejected": "risk_rejected",
    "halted_by_risk": "risk_rejected",
}
DECISION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ai-trader.local/decisions")
ZERO = Decimal("0.00")


# ------------------------------------------------------------------------------ records


def _text(value: object) -> str:
    exact = _TEXT_OF_TYPE.get(type(value))
    if exact is not None:
        return exact(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    if isinstance(value, SessionWindow):
        return value.describe()
    return str(value)


#: `_text` of the types the checks compare, by exact type (the chain above is the rule;
#: this is a shortcut for twenty values per decision)
_TEXT_OF_TYPE: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "null",
    bool: lambda value: "true" if value else "false",
    Decimal: fmt_decimal,
    datetime: datetime.isoformat,
    date: date.isoformat,
    str: str,
    int: str,
}
#: key set of a check's compared values -> `_detail_plan` of it
_DETAIL_PLANS: dict[tuple[str, ...], tuple[tuple[int, str], ...]] = {}


def _detail_plan(keys: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """Which value goes where in a check's detail JSON, and the text before it: keys
    sorted, the last of a repeated key kept (as a dict built from the pairs would)."""
    last = {key: index for index, key in enumerate(keys)}
    return tuple((last[key], _json_string(key) + ":") for key in sorted(last))


#: how json.dumps (ensure_ascii, its default) writes a string
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One rule the gate checked: did it pass, how severe a failure is, the values compared.

    `compared` keeps the values as they were compared (decimals, datetimes, ...);
    `values` is their deterministic text, built only when read (audit, rationale).
    """

    name: str
    passed: bool
    severity: Severity
    reason: str  # the reason code a failure reports
    compared: tuple[tuple[str, object], ...] = ()

    @property
    def code(self) -> str:
        """`pass` or `fail:<reason>`."""
        return "pass" if self.passed else f"fail:{self.reason}"

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        """The compared values as text: decimals fixed-point, times ISO 8601, None as null."""
        return tuple((key, _text(value)) for key, value in self.compared)

    def detail_json(self) -> str:
        """`values` as canonical JSON (keys sorted, no whitespace, ASCII): what a decision
        event records per check, written directly (twenty per decision). A check compares
        the same keys every time: their order and text are worked out once per key set."""
        compared = self.compared
        keys = tuple([key for key, _ in compared])
        plan = _DETAIL_PLANS.get(keys)
        if plan is None:
            plan = _detail_plan(keys)
            if len(_DETAIL_PLANS) < 256:  # the checks' key sets are few; others are not kept
                _DETAIL_PLANS[keys] = plan
        return "{" + ",".join([
            prefix + _json_string(_text(compared[index][1])) for index, prefix in plan]) + "}"

    def describe(self) -> str:
        """Deterministic one-line text: `lot_size fail:lot_size (lots=1.00, cap=0.50)`."""
        values = ", ".join(f"{k}={v}" for k, v in self.values)
        return f"{self.name} {self.code} ({values})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (`detail_json` holds `values`)."""
        return {
            "name": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "code": self.code,
            "values": dict(self.values),
        }


def _check(
    name: str, passed: bool, severity: Severity, reason: str, **values: object
) -> CheckResult:
    return CheckResult(name, passed, severity, reason, tuple(values.items()))


@dataclass(frozen=True, slots=True)
class GateContext:
    """The world outside the gate's own state at a decision: account and calendar."""

    account: AccountState | None
    calendar: CalendarStatus
    symbols: SymbolCurrencies = DEFAULT_SYMBOLS


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's verdict on one idea, with every check it ran."""

    idea_id: str
    outcome: Outcome
    checks: tuple[CheckResult, ...]
    risk_check_result: str
    decisive: CheckResult | None
    halt_reason: str | None  # set when this decision triggers a halt (§14.2)
    lot_size: Decimal
    confidence: Decimal
    expires_at: datetime | None  # when a needs_approval idea can no longer be approved
    decided_at: datetime

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that failed, in check order."""
        return tuple(c for c in self.checks if not c.passed)


@dataclass(frozen=True, slots=True)
class ApprovalCheck:
    """Re-validation of a human approval against the current state (§4.2.4, §14.3)."""

    idea_id: str
    ok: bool
    reason: str | None  # e.g. max_concurrent_trades_exceeded, idea_expired
    checks: tuple[CheckResult, ...]
    risk_check_result: str
    decisive: CheckResult | None
    halt_reason: str | None
    lot_size: Decimal
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision-history record (blueprint §5.1.9). `decision_id` is deterministic."""

    decision_id: str
    action: DecisionAction
    occurred_at: datetime
    rationale: str
    symbol: str | None = None
    outcome: Outcome | None = None
    confidence: Decimal | None = None
    risk_check_result: str | None = None
    checks: tuple[CheckResult, ...] = ()
    strategy_id: str | None = None
    strategy_hash: str | None = None
    trade_idea_id: str | None = None
    snapshot_ref: str | None = None
    human_override: bool = False
    issuer: str | None = None
    command_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "decision_id": self.decision_id,
            "action": self.action,
            "occurred_at": self.occurred_at.isoformat(),
            "rationale": self.rationale,
            "symbol": self.symbol,
            "outcome": self.outcome,
            "confidence": None if self.confidence is None else fmt_decimal(self.confidence),
            "risk_check_result": self.risk_check_result,
            "checks": [c.to_dict() for c in self.checks],
            "strategy_id": self.strategy_id,
            "strategy_hash": self.strategy_hash,
            "trade_idea_id": self.trade_idea_id,
            "snapshot_ref": self.snapshot_ref,
            "human_override": self.human_override,
            "issuer": self.issuer,
            "command_id": self.command_id,
        }


def decision_id_for(
    action: str, occurred_at: datetime, idea_id: str | None = None, command_id: str | None = None
) -> str:
    """uuid5 over the action and the idea or command it is about (time only for neither).

    Re-processing the same input yields the same id, so sinks upsert instead of
    logging a decision twice.
    """
    when = "" if idea_id or command_id else occurred_at.isoformat()
    key = "|".join((action, idea_id or "", command_id or "", when))
    return uuid5_text(DECISION_NAMESPACE, key)


# -------------------------------------------------------------------------------- facts


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class _Facts:
    idea: TradeIdea
    lots: Decimal
    confidence: Decimal | None
    strategy: Strategy | None
    state: GateState
    context: GateContext
    now: datetime

    @property
    def config(self) -> RiskConfig:
        return self.state.config

    @property
    def today_pl(self) -> Decimal:
        return self.state.today_pl(self.context.account)

    @property
    def week_pl(self) -> Decimal:
        return self.state.realised_week_before_today + self.today_pl


Check = Callable[[_Facts], CheckResult]


def _kill_switch(f: _Facts) -> CheckResult:
    kill = f.state.kill
    return _check("kill_switch", not kill.active, "halt", "kill_switch_active",
                  active=kill.active, by=kill.by, at=kill.at, why=kill.reason)


def _not_halted(f: _Facts) -> CheckResult:
    reason = f.config.last_halt_reason
    return _check("ai_halted", reason is None, "halt", "ai_halted", last_halt_reason=reason)


def _account_fresh(f: _Facts) -> CheckResult:
    account, max_age = f.context.account, f.config.account_max_age
    if account is None:
        return _check("account_fresh", False, "reject", "account_stale",
                      captured_at=None, max_age=max_age)
    if not account.reconciled:
        return _check("account_fresh", False, "reject", "account_unreconciled",
                      captured_at=account.captured_at, reconciled=False)
    age = f.now - account.captured_at
    return _check("account_fresh", age <= max_age, "reject", "account_stale",
                  captured_at=account.captured_at, age=age, max_age=max_age)


def _drawdown(f: _Facts) -> CheckResult:
    cfg = f.config
    severity: Severity = "halt" if cfg.halt_on_drawdown else "reject"
    limit = -cfg.max_drawdown_amount
    values = {"today_pl": f.today_pl, "limit": limit, "realised_today": f.state.realised_today,
              "open_pl": None if f.context.account is None else f.context.account.open_pl,
              "halt_on_drawdown": cfg.halt_on_drawdown}
    if f.today_pl <= limit:
        return _check("max_drawdown", False, severity, HALT_MAX_DRAWDOWN, **values)
    if f.context.account is None:
        return _check("max_drawdown", False, "reject", "account_stale", **values)
    return _check("max_drawdown", True, severity, HALT_MAX_DRAWDOWN, **values)


def _target(name: str, reason: str, pl: Decimal, target: Decimal | None, stop: bool) -> CheckResult:
    reached = target is not None and pl >= target
    return _check(name, not (reached and stop), "halt", reason,
                  pl=pl, target=target, reached=reached, stop_after_target=stop)


def _daily_target(f: _Facts) -> CheckResult:
    cfg = f.config
    return _target("daily_target", HALT_DAILY_TARGET, f.today_pl, cfg.daily_profit_target,
                   cfg.stop_after_target)


def _weekly_target(f: _Facts) -> CheckResult:
    cfg = f.config
    return _target("weekly_target", HALT_WEEKLY_TARGET, f.week_pl, cfg.weekly_profit_target,
                   cfg.stop_after_target)


def _idea_problem(idea: TradeIdea, lots: Decimal) -> str | None:
    sign = 1 if idea.direction == "buy" else -1
    if lots < LOT_STEP:
        return f"lots {fmt_decimal(lots)} below the lot step"
    if not idea.take_profit:
        return "no take-profit"
    if (idea.entry_price - idea.stop_loss) * sign <= 0:
        return "stop-loss not beyond entry"
    if any((tp - idea.entry_price) * sign <= 0 for tp in idea.take_profit):
        return "take-profit not beyond entry"
    return None


def _idea_valid(f: _Facts) -> CheckResult:
    problem = _idea_problem(f.idea, f.lots)
    return _check("idea_valid", problem is None, "reject", "invalid_idea", problem=problem,
                  direction=f.idea.direction, entry=f.idea.entry_price, stop=f.idea.stop_loss)


def _not_duplicate(f: _Facts) -> CheckResult:
    idea_id = f.idea.idea_id
    taken = any(idea_id in (p.idea_id, p.position_id) for p in f.state.positions)
    return _check("not_duplicate", not taken, "reject", "duplicate_idea", idea_id=idea_id)


def _unknown_strategy(name: str, f: _Facts) -> CheckResult:
    return _check(name, False, "reject", "strategy_unknown", strategy_id=f.idea.strategy_id)


def _strategy_active(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("strategy_active", f)
    return _check("strategy_active", f.strategy.is_active, "reject", "strategy_inactive",
                  strategy_id=f.strategy.strategy_id, is_active=f.strategy.is_active)


def _strategy_version(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("strategy_version", f)
    same = f.strategy.definition_hash == f.idea.strategy_hash
    return _check("strategy_version", same, "reject", "strategy_changed",
                  idea_version=f.idea.strategy_version, current_version=f.strategy.version)


def _symbol_allowed(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("symbol_allowed", f)
    return _check("symbol_allowed", f.strategy.allows_symbol(f.idea.symbol), "reject",
                  "symbol_not_allowed", symbol=f.idea.symbol,
                  allowed=",".join(f.strategy.allowed_symbols))


def _session(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("session", f)
    window = in_session(f.strategy.sessions, f.now)
    return _check("session", window is not None, "reject", "outside_session", at=f.now,
                  window=window)


def _news_scope(f: _Facts) -> tuple[int, frozenset[str] | None]:
    assert f.strategy is not None  # noqa: S101 - callers check first
    news = f.strategy.news
    currencies = relevant_currencies(f.idea.symbol, news.currencies, f.context.symbols)
    return news.block_minutes, currencies


def _calendar_fresh(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("calendar_fresh", f)
    minutes, currencies = _news_scope(f)
    calendar = f.context.calendar
    covered = calendar.covered_currencies if currencies is None else (
        currencies & calendar.covered_currencies
    )
    fresh = calendar_fresh(calendar, f.now, f.config.calendar_max_age)
    needed = minutes > 0 and bool(covered)
    return _check("calendar_fresh", fresh or not needed, "reject", "calendar_stale",
                  last_success_at=calendar.last_success_at, max_age=f.config.calendar_max_age,
                  covered=",".join(sorted(covered)), news_minutes=minutes)


def _news_blackout(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("news_blackout", f)
    minutes, currencies = _news_scope(f)
    events = blocking_events(f.context.calendar.events, currencies, f.now, minutes) if (
        minutes > 0
    ) else ()
    first = events[0] if events else None
    return _check("news_blackout", not events, "reject", "news_blackout", minutes=minutes,
                  currencies="*" if currencies is None else ",".join(sorted(currencies)),
                  event=None if first is None else f"{first.currency} {first.title}",
                  event_time=None if first is None else first.event_time)


def _lot_size(f: _Facts) -> CheckResult:
    global_cap = lots_cap(f.config.max_lot_size)
    strategy_cap = None if f.strategy is None else f.strategy.caps.max_lot_size
    cap = global_cap if strategy_cap is None else min(global_cap, strategy_cap)
    binding = "global" if strategy_cap is None or global_cap <= strategy_cap else "strategy"
    return _check("lot_size", f.lots <= cap, "reject", "lot_size", lots=f.lots, cap=cap,
                  binding=binding, global_cap=global_cap, strategy_cap=strategy_cap)


def _max_concurrent(f: _Facts) -> CheckResult:
    count, limit = len(f.state.positions), f.config.max_concurrent_trades
    return _check("max_concurrent_trades", count < limit, "reject", "max_concurrent_trades",
                  open=count, max=limit)


def _strategy_positions(f: _Facts) -> CheckResult:
    if f.strategy is None:
        return _unknown_strategy("strategy_positions", f)
    count = f.state.open_for_strategy(f.strategy.strategy_id)
    limit = f.strategy.caps.max_concurrent_positions
    return _check("strategy_positions", count < limit, "reject", "strategy_max_positions",
                  open=count, max=limit)


def _ai_enabled(f: _Facts) -> CheckResult:
    enabled = f.config.ai_trading_enabled
    return _check("ai_trading_enabled", enabled, "approval", "ai_trading_disabled",
                  ai_trading_enabled=enabled)


def _confidence(f: _Facts) -> CheckResult:
    score, threshold = f.confidence or ZERO, f.config.min_confidence_threshold
    return _check("confidence_threshold", score >= threshold, "approval",
                  "confidence_below_threshold", confidence=score, threshold=threshold)


def _watchlist(f: _Facts) -> CheckResult:
    listed = f.idea.symbol in f.config.watchlist
    allowed = f.config.allow_off_watchlist_autotrade
    return _check("watchlist", listed or allowed, "approval", "off_watchlist",
                  symbol=f.idea.symbol, on_watchlist=listed, allow_off_watchlist_autotrade=allowed)


def idea_expires_at(idea: TradeIdea, strategy: Strategy | None, config: RiskConfig) -> datetime:
    """When an idea waiting for approval expires: created_at + strategy TTL or config TTL."""
    if strategy is not None and strategy.approval_ttl_minutes is not None:
        return idea.created_at + timedelta(minutes=strategy.approval_ttl_minutes)
    return idea.created_at + config.approval_ttl


def _expiry(f: _Facts) -> CheckResult:
    expires = idea_expires_at(f.idea, f.strategy, f.config)
    return _check("idea_expiry", f.now < expires, "reject", "idea_expired",
                  created_at=f.idea.created_at, expires_at=expires, now=f.now)


_HARD_TAIL: tuple[Check, ...] = (
    _account_fresh, _drawdown, _daily_target, _weekly_target, _idea_valid, _not_duplicate,
    _strategy_active, _strategy_version, _symbol_allowed, _session, _calendar_fresh,
    _news_blackout, _lot_size, _max_concurrent, _strategy_positions,
)
GATE_CHECKS: tuple[Check, ...] = (
    _kill_switch, _not_halted, *_HARD_TAIL, _ai_enabled, _confidence, _watchlist,
)
APPROVAL_CHECKS: tuple[Check, ...] = (_kill_switch, _not_halted, _expiry, *_HARD_TAIL)


def _decisive(checks: Iterable[CheckResult]) -> CheckResult | None:
    failed = [c for c in checks if not c.passed]
    for severity in ("halt", "reject", "approval"):
        for check in failed:
            if check.severity == severity:
                return check
    return None


def _halt_trigger(state: GateState, checks: Iterable[CheckResult]) -> str | None:
    if state.halted:
        return None
    for check in checks:
        if not check.passed and check.severity == "halt" and check.reason in HALT_REASONS:
            return check.reason
    return None


def _score(confidence: ConfidenceResult | Decimal | float | int) -> Decimal:
    raw = confidence.score if isinstance(confidence, ConfidenceResult) else confidence
    return _cents(to_decimal(raw))


# ----------------------------------------------------------------------- pure decisions


def decide(
    idea: TradeIdea,
    confidence: ConfidenceResult | Decimal | float | int,
    strategy: Strategy | None,
    state: GateState,
    context: GateContext,
    now: datetime,
) -> GateResult:
    """Run every gate check on `idea` at event time `now` and map them to an outcome.

    `strategy` is the *current* definition of the idea's strategy (None if unknown).
    The state is rolled to `now`'s trading day first; it is not changed otherwise (use
    `GateState.on_idea` to apply the result).
    """
    require_aware(now, "now")
    state = state.roll(now)
    facts = _Facts(idea, lots_requested(idea.lot_size), _score(confidence), strategy, state,
                   context, now)
    checks = tuple(check(facts) for check in GATE_CHECKS)
    decisive = _decisive(checks)
    outcome: Outcome = "auto_execute" if decisive is None else _OUTCOME_OF[decisive.severity]
    expires = idea_expires_at(idea, strategy, state.config) if outcome == "needs_approval" else None
    return GateResult(
        idea_id=idea.idea_id,
        outcome=outcome,
        checks=checks,
        risk_check_result="pass" if decisive is None else decisive.code,
        decisive=decisive,
        halt_reason=_halt_trigger(state, checks),
        lot_size=facts.lots,
        confidence=facts.confidence or ZERO,
        expires_at=expires,
        decided_at=now,
    )


def revalidate_approval(
    idea: TradeIdea,
    approval: Approval,
    strategy: Strategy | None,
    state: GateState,
    context: GateContext,
    now: datetime,
) -> ApprovalCheck:
    """Re-check a human approval against the *current* state (§4.2.4, §14.3).

    Re-runs every hard rule (kill switch, halt, expiry, account freshness, drawdown,
    targets, strategy, session, news, lot size with the approved lots, concurrency) but
    not confidence, watchlist or `ai_trading_enabled`: the human is the autonomy.
    """
    require_aware(now, "now")
    if approval.idea_id != idea.idea_id:
        raise ValueError(f"approval for {approval.idea_id} applied to idea {idea.idea_id}")
    state = state.roll(now)
    lots = lots_requested(idea.lot_size if approval.lot_size is None else approval.lot_size)
    facts = _Facts(idea, lots, None, strategy, state, context, now)
    checks = tuple(check(facts) for check in APPROVAL_CHECKS)
    decisive = _decisive(checks)
    reason = None if decisive is None else APPROVAL_REASONS.get(decisive.reason, decisive.reason)
    return ApprovalCheck(
        idea_id=idea.idea_id,
        ok=decisive is None,
        reason=reason,
        checks=checks,
        risk_check_result="pass" if decisive is None else decisive.code,
        decisive=decisive,
        halt_reason=_halt_trigger(state, checks),
        lot_size=lots,
        expires_at=idea_expires_at(idea, strategy, state.config),
    )


# ---------------------------------------------------------------------------- rationale


def _idea_head(idea: TradeIdea, lots: Decimal) -> str:
    return (f"{idea.direction} {fmt_decimal(lots)} lots {idea.symbol} {idea.timeframe} "
            f"(strategy {idea.strategy_id} v{idea.strategy_version})")


def gate_rationale(idea: TradeIdea, result: GateResult) -> str:
    """Deterministic 'why' of a gate decision, built only from the facts it compared."""
    head = f"{_idea_head(idea, result.lot_size)}, confidence {fmt_decimal(result.confidence)}"
    if result.decisive is None:
        return f"Auto-executed {head}: all {len(result.checks)} checks passed."
    others = [c.name for c in result.failed if c is not result.decisive]
    tail = f"; also failed: {', '.join(others)}" if others else ""
    label = {
        "needs_approval": "Needs approval",
        "rejected": "Rejected for risk",
        "halted_by_risk": "Halted by risk",
    }[result.outcome]
    return f"{label}: {head}: {result.decisive.describe()}{tail}."


# -------------------------------------------------------------------------- transitions


@dataclass(frozen=True, slots=True)
class Transition:
    """A new gate state and the decision records the change produced."""

    state: GateState
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class IdeaTransition:
    """`GateState.on_idea`: the new state, the gate's result and the decisions to log."""

    state: GateState
    result: GateResult
    decisions: tuple[Decision, ...]


@dataclass(frozen=True, slots=True)
class ApprovalTransition:
    """`GateState.on_approval`: the new state, the re-validation and the decisions."""

    state: GateState
    check: ApprovalCheck
    decisions: tuple[Decision, ...]


def _halt_decision(reason: str, at: datetime, idea: TradeIdea | None) -> Decision:
    idea_id = None if idea is None else idea.idea_id
    # The time is part of the key even with an idea: after a resume, the same idea's
    # re-approval can trigger the same halt again, and each halt is its own record.
    return Decision(
        decision_id=decision_id_for(f"ai_halted:{reason}@{at.isoformat()}", at, idea_id),
        action="ai_halted",
        occurred_at=at,
        rationale=f"AI halted due to {reason}",
        risk_check_result=f"fail:{reason}",
        trade_idea_id=idea_id,
    )


def _control_decision(
    action: DecisionAction, at: datetime, rationale: str, by: str, command_id: str | None,
    risk_check_result: str | None = None,
) -> Decision:
    return Decision(
        decision_id=decision_id_for(action, at, None, command_id),
        action=action,
        occurred_at=at,
        rationale=rationale,
        risk_check_result=risk_check_result,
        human_override=True,
        issuer=by,
        command_id=command_id,
    )


@dataclass(frozen=True, slots=True)
class GateState:
    """Everything the gate remembers between events, as a small serializable record.

    `config` holds the limits plus `ai_trading_enabled` / `last_halt_reason` (the state
    machine owns those two). `positions` are the open positions and the orders the gate
    has sent but the broker has not confirmed (`pending`). `realised_today` is the
    closed P/L of `trading_day`; `realised_week_before_today` the earlier days of that
    trading week. `account_synced_at` guards against an older account state
    overwriting a newer one.
    """

    config: RiskConfig
    kill: KillSwitch = KillSwitch()
    positions: tuple[Position, ...] = ()
    trading_day: date | None = None
    realised_today: Decimal = ZERO
    realised_week_before_today: Decimal = ZERO
    account_synced_at: datetime | None = None

    # ---- views

    @property
    def ai_trading_enabled(self) -> bool:
        """Whether the AI may auto-execute (subject to every other rule)."""
        return self.config.ai_trading_enabled

    @property
    def last_halt_reason(self) -> str | None:
        """Why the AI was halted, or None."""
        return self.config.last_halt_reason

    @property
    def halted(self) -> bool:
        """A halt trigger fired and no human has resumed since."""
        return self.config.last_halt_reason is not None

    def open_for_strategy(self, strategy_id: str) -> int:
        """Open + pending positions opened by `strategy_id`."""
        return sum(1 for p in self.positions if p.strategy_id == strategy_id)

    def open_by_strategy(self) -> dict[str, int]:
        """Open + pending position count per strategy id (None-strategy ones excluded)."""
        counts: dict[str, int] = {}
        for position in self.positions:
            if position.strategy_id is not None:
                counts[position.strategy_id] = counts.get(position.strategy_id, 0) + 1
        return dict(sorted(counts.items()))

    def today_pl(self, account: AccountState | None) -> Decimal:
        """Realised today plus the account's open P/L (open P/L 0 when unknown)."""
        return self.realised_today + (ZERO if account is None else account.open_pl)

    # ---- time

    def _day_of(self, at: datetime) -> date:
        return trading_day(at, self.config.trading_day_start, self.config.trading_day_tz)

    def roll(self, at: datetime) -> GateState:
        """Move to `at`'s trading day: a new day resets today's P/L, never a halt."""
        day = self._day_of(require_aware(at, "at"))
        if self.trading_day is None:
            return replace(self, trading_day=day)
        if day <= self.trading_day:
            return self
        same_week = trading_week(day) == trading_week(self.trading_day)
        week = self.realised_week_before_today + self.realised_today if same_week else ZERO
        return replace(self, trading_day=day, realised_today=ZERO, realised_week_before_today=week)

    # ---- ideas and approvals

    def _reserve(self, idea: TradeIdea, lots: Decimal, at: datetime) -> GateState:
        pending = Position(position_id=idea.idea_id, symbol=idea.symbol, direction=idea.direction,
                           lots=lots, opened_at=at, idea_id=idea.idea_id,
                           strategy_id=idea.strategy_id, pending=True)
        return replace(self, positions=(*self.positions, pending))

    def _halt(self, reason: str, at: datetime, idea: TradeIdea | None) -> Transition:
        config = replace(self.config, ai_trading_enabled=False, last_halt_reason=reason)
        return Transition(replace(self, config=config), (_halt_decision(reason, at, idea),))

    def on_idea(
        self,
        idea: TradeIdea,
        confidence: ConfidenceResult | Decimal | float | int,
        strategy: Strategy | None,
        context: GateContext,
        now: datetime,
    ) -> IdeaTransition:
        """Decide on an idea and apply it: reserve a position on auto_execute, halt on a
        trigger, and log the decision (plus `ai_halted` when a halt fires)."""
        state = self.roll(now)
        result = decide(idea, confidence, strategy, state, context, now)
        decision = Decision(
            decision_id=decision_id_for(_ACTION_OF[result.outcome], now, idea.idea_id),
            action=_ACTION_OF[result.outcome],
            occurred_at=now,
            rationale=gate_rationale(idea, result),
            symbol=idea.symbol,
            outcome=result.outcome,
            confidence=result.confidence,
            risk_check_result=result.risk_check_result,
            checks=result.checks,
            strategy_id=idea.strategy_id,
            strategy_hash=idea.strategy_hash,
            trade_idea_id=idea.idea_id,
            snapshot_ref=idea.snapshot_ref,
        )
        decisions = [decision]
        if result.outcome == "auto_execute":
            state = state._reserve(idea, result.lot_size, now)
        if result.halt_reason is not None:
            halted = state._halt(result.halt_reason, now, idea)
            state = halted.state
            decisions.extend(halted.decisions)
        return IdeaTransition(state, result, tuple(decisions))

    def on_approval(
        self,
        idea: TradeIdea,
        approval: Approval,
        strategy: Strategy | None,
        context: GateContext,
        now: datetime,
    ) -> ApprovalTransition:
        """A human approved `idea`: re-validate; reserve the position if still valid.

        Logs `human_approved` (human_override) when valid, else `risk_rejected` with the
        blocking reason; a halt trigger found on the way halts the AI as well.
        """
        state = self.roll(now)
        check = revalidate_approval(idea, approval, strategy, state, context, now)
        head = _idea_head(idea, check.lot_size)
        if check.ok:
            action: DecisionAction = "human_approved"
            passed = len(check.checks)
            rationale = f"Human {approval.by} approved {head}: all {passed} re-checks passed."
            state = state._reserve(idea, check.lot_size, now)
        else:
            action = "risk_rejected"
            detail = "" if check.decisive is None else f": {check.decisive.describe()}"
            rationale = f"Approval by {approval.by} of {head} refused, {check.reason}{detail}."
        decisions = [Decision(
            decision_id=decision_id_for(action, now, idea.idea_id, approval.command_id),
            action=action, occurred_at=now, rationale=rationale, symbol=idea.symbol,
            outcome=None, risk_check_result=check.risk_check_result, checks=check.checks,
            strategy_id=idea.strategy_id, strategy_hash=idea.strategy_hash,
            trade_idea_id=idea.idea_id, snapshot_ref=idea.snapshot_ref, human_override=True,
            issuer=approval.by, command_id=approval.command_id,
        )]
        if check.halt_reason is not None:
            halted = state._halt(check.halt_reason, now, idea)
            state = halted.state
            decisions.extend(halted.decisions)
        return ApprovalTransition(state, check, tuple(decisions))

    def on_human_reject(
        self, idea: TradeIdea, by: str, now: datetime, reason: str | None = None,
        command_id: str | None = None,
    ) -> Transition:
        """A human rejected an idea waiting for approval: log `human_rejected`."""
        why = f": {reason}" if reason else ""
        decision = Decision(
            decision_id=decision_id_for("human_rejected", now, idea.idea_id, command_id),
            action="human_rejected", occurred_at=now, symbol=idea.symbol,
            rationale=f"Human {by} rejected {_idea_head(idea, idea.lot_size)}{why}.",
            strategy_id=idea.strategy_id, strategy_hash=idea.strategy_hash,
            trade_idea_id=idea.idea_id, snapshot_ref=idea.snapshot_ref, human_override=True,
            issuer=by, command_id=command_id,
        )
        return Transition(self.roll(now), (decision,))

    # ---- commands

    def kill_switch(
        self, by: str, at: datetime, reason: str, command_id: str | None = None
    ) -> Transition:
        """Engage the kill switch: nothing new opens, not even on approval, until `resume`."""
        if self.kill.active:
            return Transition(self)
        state = replace(self.roll(at), kill=KillSwitch(True, by, at, reason))
        decision = _control_decision("ai_halted", at, f"Kill switch engaged by {by}: {reason}",
                                     by, command_id, "fail:kill_switch_active")
        return Transition(state, (decision,))

    def resume(
        self, by: str, at: datetime, reason: str = "Human resumed after review",
        command_id: str | None = None, enable_ai: bool = True,
    ) -> Transition:
        """Human resume (§14.2): release the kill switch, clear the halt reason, and set
        `ai_trading_enabled` to `enable_ai`. A no-op when there is nothing to resume."""
        return self._enable(by, at, reason, command_id, enable_ai, release_kill=True)

    def _enable(
        self, by: str, at: datetime, reason: str, command_id: str | None, enable_ai: bool,
        release_kill: bool,
    ) -> Transition:
        state = self.roll(at)
        kill_changes = release_kill and self.kill.active
        if not kill_changes and not self.halted and self.ai_trading_enabled == enable_ai:
            return Transition(state)
        config = replace(state.config, ai_trading_enabled=enable_ai, last_halt_reason=None)
        kill = KillSwitch() if release_kill else state.kill
        state = replace(state, kill=kill, config=config)
        mode = "autonomous" if enable_ai else "supervised"
        rationale = f"{reason} (by {by}); AI trading {mode}"
        return Transition(state, (_control_decision("ai_resumed", at, rationale, by, command_id),))

    def apply_config(
        self, config: RiskConfig, by: str, at: datetime, command_id: str | None = None
    ) -> Transition:
        """New risk settings, enforced from this event on (§6.2).

        Turning `ai_trading_enabled` on is a resume (clears the halt reason, logs
        `ai_resumed`); turning it off logs `ai_halted` without a halt reason
        (supervised mode). The kill switch is untouched. `last_halt_reason` in `config`
        is ignored: only triggers set it.
        """
        state = self.roll(at)
        merged = replace(config, ai_trading_enabled=self.ai_trading_enabled,
                         last_halt_reason=self.last_halt_reason)
        state = replace(state, config=merged)
        if config.ai_trading_enabled and not self.ai_trading_enabled:
            return state._enable(by, at, "AI trading enabled in the settings", command_id,
                                 enable_ai=True, release_kill=False)
        if not config.ai_trading_enabled and self.ai_trading_enabled:
            off = replace(merged, ai_trading_enabled=False)
            decision = _control_decision("ai_halted", at, f"AI trading disabled by {by}",
                                         by, command_id)
            return Transition(replace(state, config=off), (decision,))
        return Transition(state)

    # ---- broker events

    def on_position_opened(self, position: Position, at: datetime) -> GateState:
        """The broker filled an order: the filled position replaces its pending entry."""
        def same(p: Position) -> bool:
            return p.position_id == position.position_id or (
                p.pending and position.idea_id is not None and p.idea_id == position.idea_id
            )
        state = self.roll(at)
        kept = tuple(p for p in state.positions if not same(p))
        return replace(state, positions=(*kept, replace(position, pending=False)))

    def on_order_failed(self, idea_id: str, at: datetime) -> GateState:
        """The broker refused an order: drop its pending entry."""
        state = self.roll(at)
        kept = tuple(p for p in state.positions if not (p.pending and p.idea_id == idea_id))
        return replace(state, positions=kept)

    def on_position_closed(
        self, position_id: str, realised_pl: Decimal | float | str, at: datetime
    ) -> GateState:
        """A position closed (by ticket or idea id) with `realised_pl`, added to today's
        P/L when `at` is in the current trading day (a late close of an earlier day is
        not today's)."""
        state = self.roll(at)
        kept = tuple(p for p in state.positions if position_id not in (p.position_id, p.idea_id))
        pl = money(realised_pl) if self._day_of(at) == state.trading_day else ZERO
        return replace(state, positions=kept, realised_today=state.realised_today + pl)

    def _synced_positions(self, account: AccountState) -> tuple[Position, ...]:
        broker_ids = {p.position_id for p in account.positions}
        broker_ideas = {p.idea_id for p in account.positions if p.idea_id is not None}
        keep = tuple(
            p for p in self.positions
            if p.position_id not in broker_ids and p.idea_id not in broker_ideas
            and (p.pending or p.opened_at > account.captured_at)
        )
        return tuple(replace(p, pending=False) for p in account.positions) + keep

    def on_account(self, account: AccountState, now: datetime) -> Transition:
        """A fresh account state: sync today's realised P/L and (when reconciled) the
        positions from the broker, then fire any halt trigger. Older than the last sync:
        ignored."""
        state = self.roll(now)
        if state.account_synced_at is not None and account.captured_at <= state.account_synced_at:
            return Transition(state)  # older, or the same snapshot delivered again
        same_day = self._day_of(account.captured_at) == state.trading_day
        state = replace(
            state,
            realised_today=account.realized_pl_today if same_day else state.realised_today,
            positions=state._synced_positions(account) if account.reconciled else state.positions,
            account_synced_at=account.captured_at,
        )
        reason = state._account_trigger(account)
        if reason is None:
            return Transition(state)
        return state._halt(reason, now, None)

    def _account_trigger(self, account: AccountState) -> str | None:
        if self.halted:
            return None
        cfg, pl = self.config, self.today_pl(account)
        if cfg.halt_on_drawdown and pl <= -cfg.max_drawdown_amount:
            return HALT_MAX_DRAWDOWN
        if not cfg.stop_after_target:
            return None
        if cfg.daily_profit_target is not None and pl >= cfg.daily_profit_target:
            return HALT_DAILY_TARGET
        week = self.realised_week_before_today + pl
        if cfg.weekly_profit_target is not None and week >= cfg.weekly_profit_target:
            return HALT_WEEKLY_TARGET
        return None

    # ---- serialization

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able dict (for a Faust table / changelog); `from_state` inverts it."""
        return {
            "config": self.config.to_dict(),
            "kill": self.kill.to_dict(),
            "positions": [p.to_dict() for p in self.positions],
            "trading_day": None if self.trading_day is None else self.trading_day.isoformat(),
            "realised_today": fmt_money(self.realised_today),
            "realised_week_before_today": fmt_money(self.realised_week_before_today),
            "account_synced_at": (
                None if self.account_synced_at is None else self.account_synced_at.isoformat()
            ),
            "open_by_strategy": self.open_by_strategy(),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> GateState:
        """Inverse of `to_state` (`open_by_strategy` is derived and ignored)."""
        day = data.get("trading_day")
        synced = data.get("account_synced_at")
        return cls(
            config=RiskConfig.from_dict(data["config"]),
            kill=KillSwitch.from_dict(data.get("kill", {})),
            positions=tuple(Position.from_dict(p) for p in data.get("positions", ())),
            trading_day=None if day is None else date.fromisoformat(day),
            realised_today=money(data.get("realised_today", "0")),
            realised_week_before_today=money(data.get("realised_week_before_today", "0")),
            account_synced_at=None if synced is None else parse_time(synced),
        )
