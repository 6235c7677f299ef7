"""Property tests of the gate: random event sequences never produce a rule-breaking auto_execute.

A harness applies random sequences of ideas, fills, order failures, closes, account and
P/L changes, calendar updates, settings changes, kill and resume to `GateState`. For every
`auto_execute` it re-checks each rule *independently* (plain arithmetic on the state and
context at that moment, with its own session, currency and trading-day tables) instead of
calling the gate's helpers. It also checks that nothing auto-executes between a kill and
the next resume and that the state always survives a JSON round trip.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from streams.core.gate import GateContext, GateState
from streams.core.model import AccountState, CalendarEvent, CalendarStatus, TradeIdea
from streams.core.strategy import Strategy
from tests.streams.core.decision_factories import (
    T0,
    account,
    idea,
    risk_config,
    strategy,
)

# ---------------------------------------------------------------- the world under test

GOLD = strategy()  # XAUUSD, Mon-Fri 07:00-11:00 UTC, news 5 min [USD], lots <= 1.00, 2 open
ROUND_CLOCK_ID = "0d6f1a52-3c1b-4f7e-9b1e-3a5c2d7e8f90"


def _round_clock(active: bool) -> Strategy:
    return strategy(
        id=ROUND_CLOCK_ID, name="Round the clock", is_active=active,
        allowed_symbols=["EURUSD", "XAUUSD"],
        session_windows=[
            {"start": "00:00", "end": "12:00", "days": ["Mon", "Tue", "Wed", "Thu", "Fri",
                                                        "Sat", "Sun"]},
            {"start": "12:00", "end": "00:00", "days": ["Mon", "Tue", "Wed", "Thu", "Fri",
                                                        "Sat", "Sun"]},
        ],
        forbidden_conditions={"block_high_impact_news_minutes": 10,
                              "blocked_symbols_during_news": ["EUR", "USD"]},
        risk_caps={"max_lot_size": 0.3, "max_concurrent_positions": 2},
    )


ROUND_CLOCK = {True: _round_clock(True), False: _round_clock(False)}

# Independent tables (deliberately not the core's): session predicate, currencies.
SESSION_OF: dict[str, Callable[[datetime], bool]] = {
    GOLD.strategy_id: lambda at: at.weekday() < 5 and 7 <= at.hour < 11,
    ROUND_CLOCK_ID: lambda at: True,
}
CURRENCIES = {"XAUUSD": {"XAU", "USD"}, "EURUSD": {"EUR", "USD"}, "US30": {"USD"}}
NEWS_OF = {GOLD.strategy_id: (5, {"USD"}), ROUND_CLOCK_ID: (10, {"EUR", "USD"})}
SYMBOLS = ["XAUUSD", "EURUSD", "US30"]


def _trading_date(at: datetime) -> date:
    """The 22:00 UTC trading day, named after the date it mostly covers."""
    return (at + timedelta(hours=2)).date()


@dataclass
class World:
    """Everything the harness tracks between commands."""

    state: GateState
    now: datetime = T0
    account: AccountState | None = None
    events: list[CalendarEvent] = field(default_factory=list)
    calendar_ok_at: datetime | None = T0
    round_clock_active: bool = True
    killed: bool = False
    resume_in: int | None = None  # commands left before the scheduled resume after a kill
    ideas: int = 0
    last_executed: str | None = None
    fills: int = 0
    auto_executed: int = 0
    outcomes: list[str] = field(default_factory=list)

    def context(self) -> GateContext:
        return GateContext(
            account=self.account,
            calendar=CalendarStatus(tuple(self.events), self.calendar_ok_at),
        )

    def current(self, strategy_id: str) -> Strategy:
        return GOLD if strategy_id == GOLD.strategy_id else ROUND_CLOCK[self.round_clock_active]


# ------------------------------------------------------------ the independent checker


def _pnl_violations(state: GateState, acct: AccountState, now: datetime) -> list[str]:
    cfg, today = state.config, _trading_date(now)
    if state.trading_day == today:
        realised, week_before = state.realised_today, state.realised_week_before_today
    elif state.trading_day is not None and (
        state.trading_day.isocalendar()[:2] == today.isocalendar()[:2]
    ):
        realised, week_before = Decimal(0), state.realised_week_before_today + state.realised_today
    else:
        realised, week_before = Decimal(0), Decimal(0)
    pnl = realised + acct.open_pl
    found = []
    if pnl <= -cfg.max_drawdown_amount:
        found.append("drawdown breached")
    target = cfg.daily_profit_target
    if cfg.stop_after_target and target is not None and pnl >= target:
        found.append("daily target reached")
    weekly = cfg.weekly_profit_target
    if cfg.stop_after_target and weekly is not None and week_before + pnl >= weekly:
        found.append("weekly target reached")
    return found


def _news_violations(world: World, the_idea: TradeIdea, strat: Strategy) -> list[str]:
    minutes, extra = NEWS_OF[strat.strategy_id]
    if minutes == 0:
        return []
    cfg, now = world.state.config, world.now
    ok_at = world.calendar_ok_at
    if ok_at is None or now - ok_at > cfg.calendar_max_age:
        return ["calendar stale"]
    relevant = CURRENCIES[the_idea.symbol] | extra
    window = timedelta(minutes=minutes)
    if any(e.impact == "high" and e.currency in relevant and abs(e.event_time - now) <= window
           for e in world.events):
        return ["news blackout"]
    return []


def _limit_violations(state: GateState, the_idea: TradeIdea, strat: Strategy) -> list[str]:
    cfg, found = state.config, []
    if the_idea.lot_size > min(cfg.max_lot_size, strat.caps.max_lot_size):
        found.append("lot size over a cap")
    if len(state.positions) >= cfg.max_concurrent_trades:
        found.append("too many open trades")
    mine = [p for p in state.positions if p.strategy_id == strat.strategy_id]
    if len(mine) >= strat.caps.max_concurrent_positions:
        found.append("too many positions of the strategy")
    if any(p.idea_id == the_idea.idea_id for p in state.positions):
        found.append("duplicate idea")
    return found


def violations(world: World, the_idea: TradeIdea, confidence: Decimal) -> list[str]:
    """Every rule an auto-execution of `the_idea` right now would break."""
    state, now, cfg = world.state, world.now, world.state.config
    strat = world.current(the_idea.strategy_id)
    found = []
    if state.kill.active:
        found.append("kill switch on")
    if not cfg.ai_trading_enabled or cfg.last_halt_reason is not None:
        found.append("AI trading not enabled")
    if confidence < cfg.min_confidence_threshold:
        found.append("confidence below threshold")
    acct = world.account
    if acct is None or not acct.reconciled or now - acct.captured_at > cfg.account_max_age:
        found.append("account stale")
    else:
        found += _pnl_violations(state, acct, now)
    found += _limit_violations(state, the_idea, strat)
    if not strat.is_active or the_idea.symbol not in strat.allowed_symbols:
        found.append("strategy does not allow it")
    if the_idea.strategy_hash != strat.definition_hash:
        found.append("strategy definition changed")
    if the_idea.symbol not in cfg.watchlist and not cfg.allow_off_watchlist_autotrade:
        found.append("off the watchlist")
    if not SESSION_OF[strat.strategy_id](now):
        found.append("outside the session")
    return found + _news_violations(world, the_idea, strat)


# ------------------------------------------------------------------------ commands

Command = tuple[str, dict[str, Any]]


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> Any:
    """`common` about six times in seven, else `rare`: a mostly healthy world in which
    each rule still breaks now and then, often alone (what makes a missing check show)."""
    return st.sampled_from([True] * 6 + [False]).flatmap(lambda usual: common if usual else rare)


def usually(value: Any, other: Any) -> Any:
    """`value` about fourteen times in fifteen, else `other` (for sticky conditions)."""
    return st.sampled_from([value] * 14 + [other])


LOTS = st.integers(1, 150).map(lambda n: Decimal(n) / 100)
SMALL_LOTS = st.sampled_from(["0.10", "0.20", "0.30"]).map(Decimal)
CONFIDENCE = mostly(st.integers(9000, 10000), st.integers(8000, 10000)).map(
    lambda n: Decimal(n) / 100)
PNL = mostly(st.integers(-300, 300), st.integers(-2000, 2500))

IDEA = st.fixed_dictionaries({
    "gold": st.booleans(),
    "symbol": st.sampled_from(["XAUUSD"] * 12 + ["EURUSD", "US30"]),
    "lots": mostly(SMALL_LOTS, LOTS),
    "confidence": CONFIDENCE,
    "repeat": st.sampled_from([False] * 6 + [True]),
    "stale_hash": usually(False, True),
    "fresh_account": usually(True, False),
    "fresh_calendar": st.sampled_from([True] * 6 + [False]),
}).map(lambda kw: ("idea", kw))
ADVANCE = st.fixed_dictionaries({
    "minutes": mostly(st.integers(0, 3), st.integers(0, 60 * 30)),
}).map(lambda kw: ("advance", kw))
ACCOUNT = st.fixed_dictionaries({
    "open_pl": PNL,
    "realised": PNL,
    "age": mostly(st.just(0), st.integers(0, 400)),
    "reconciled": usually(True, False),
    "keep_positions": usually(True, False),
}).map(lambda kw: ("account", kw))
# The open P/L as the next snapshot bundle sees it, before the gate's own account sync.
PNL_MOVE = st.fixed_dictionaries({
    "open_pl": st.one_of(st.integers(-300, 300), st.integers(-2000, 2500)),
}).map(lambda kw: ("pnl", kw))
FILL = st.fixed_dictionaries({"index": st.integers(0, 5)}).map(lambda kw: ("fill", kw))
FAIL = st.fixed_dictionaries({"index": st.integers(0, 5)}).map(lambda kw: ("fail", kw))
CLOSE = st.fixed_dictionaries({"index": st.integers(0, 5), "pl": PNL}).map(
    lambda kw: ("close", kw))
NEWS = st.fixed_dictionaries({
    "offset": st.integers(-30, 30),
    "currency": st.sampled_from(["USD", "EUR", "JPY"]),
    "impact": st.sampled_from(["high", "high", "medium"]),
}).map(lambda kw: ("news", kw))
CALENDAR = st.fixed_dictionaries({
    "age": mostly(st.just(0), st.none() | st.integers(0, 180)),
}).map(lambda kw: ("calendar", kw))
CONFIG = st.fixed_dictionaries({
    "ai_trading_enabled": st.sampled_from([True] * 4 + [False]),
    "min_confidence_threshold": mostly(st.integers(8500, 9000), st.integers(8500, 9800)).map(
        lambda n: Decimal(n) / 100),
    "max_lot_size": mostly(st.sampled_from(["0.30", "0.50", "1.00"]).map(Decimal), LOTS),
    "max_concurrent_trades": mostly(st.integers(3, 5), st.integers(0, 4)),
    "daily_profit_target": st.none() | st.integers(100, 2000).map(Decimal),
    "weekly_profit_target": st.none() | st.integers(50, 800).map(Decimal),
    "stop_after_target": st.booleans(),
    "max_drawdown_amount": mostly(st.integers(500, 2000), st.integers(100, 2000)).map(Decimal),
    "halt_on_drawdown": st.booleans(),
    "allow_off_watchlist_autotrade": st.booleans(),
    "watchlist": mostly(st.just(frozenset(SYMBOLS)), st.frozensets(st.sampled_from(SYMBOLS))),
}).map(lambda kw: ("config", kw))
KILL = st.fixed_dictionaries({"resume_after": st.integers(0, 4)}).map(lambda kw: ("kill", kw))
RESUME = st.fixed_dictionaries({"enable_ai": usually(True, False)}).map(
    lambda kw: ("resume", kw))
ACTIVATE = st.fixed_dictionaries({"active": usually(True, False)}).map(
    lambda kw: ("activate_strategy", kw))

COMMANDS = st.lists(
    st.one_of(IDEA, IDEA, IDEA, IDEA, IDEA, IDEA, IDEA, IDEA, ADVANCE, ADVANCE, ACCOUNT, ACCOUNT,
              PNL_MOVE, PNL_MOVE, FILL, FAIL, CLOSE, CLOSE, CLOSE, CLOSE, NEWS, CALENDAR, CONFIG,
              KILL, RESUME, RESUME, ACTIVATE),
    min_size=20,
    max_size=80,
)


def _make_idea(world: World, kw: dict[str, Any]) -> TradeIdea:
    strategy_id = GOLD.strategy_id if kw["gold"] else ROUND_CLOCK_ID
    current = world.current(strategy_id)
    stale = ROUND_CLOCK[not world.round_clock_active] if not kw["gold"] else strategy(version=9)
    base = idea(GOLD)
    # A repeat is a redelivery of the last executed idea (at-least-once), else of the last.
    repeated = world.last_executed or (f"idea-{world.ideas - 1}" if world.ideas else None)
    idea_id = repeated if kw["repeat"] and repeated else f"idea-{world.ideas}"
    world.ideas += 1
    return dataclasses.replace(
        base, idea_id=idea_id, symbol=kw["symbol"], lot_size=kw["lots"],
        strategy_id=strategy_id,
        strategy_hash=(stale if kw["stale_hash"] else current).definition_hash,
        created_at=world.now, candle_open_time=world.now - timedelta(minutes=5),
    )


def _on_idea(world: World, kw: dict[str, Any]) -> None:
    if kw.get("fresh_account") and world.account is not None:
        world.account = dataclasses.replace(world.account, captured_at=world.now)
    if kw.get("fresh_calendar"):
        world.calendar_ok_at = world.now
    the_idea = _make_idea(world, kw)
    found = violations(world, the_idea, kw["confidence"])
    moved = world.state.on_idea(the_idea, kw["confidence"], world.current(the_idea.strategy_id),
                                world.context(), world.now)
    world.outcomes.append(moved.result.outcome)
    if moved.result.outcome == "auto_execute":
        world.auto_executed += 1
        world.last_executed = the_idea.idea_id
        assert not world.killed, "auto_execute after kill, before resume"
        assert not found, f"auto_execute broke {found}: {moved.result.checks}"
    world.state = moved.state


def _on_account(world: World, kw: dict[str, Any]) -> None:
    kept = tuple(p for p in world.state.positions if not p.pending) if kw["keep_positions"] else ()
    world.account = account(
        open_pl=Decimal(kw["open_pl"]), realized_pl_today=Decimal(kw["realised"]),
        captured_at=world.now - timedelta(seconds=kw["age"]), reconciled=kw["reconciled"],
        positions=kept,
    )
    world.state = world.state.on_account(world.account, world.now).state


def _on_pnl(world: World, kw: dict[str, Any]) -> None:
    if world.account is not None:
        world.account = dataclasses.replace(world.account, open_pl=Decimal(kw["open_pl"]),
                                            captured_at=world.now)


def _pick(world: World, index: int, pending: bool | None) -> Any:
    chosen = [p for p in world.state.positions if pending is None or p.pending == pending]
    return chosen[index % len(chosen)] if chosen else None


def _on_fill(world: World, kw: dict[str, Any]) -> None:
    pending = _pick(world, kw["index"], pending=True)
    if pending is not None:
        world.fills += 1
        filled = dataclasses.replace(pending, position_id=f"ticket-{world.fills}", pending=False)
        world.state = world.state.on_position_opened(filled, world.now)


def _on_fail(world: World, kw: dict[str, Any]) -> None:
    pending = _pick(world, kw["index"], pending=True)
    if pending is not None:
        world.state = world.state.on_order_failed(pending.idea_id, world.now)


def _on_close(world: World, kw: dict[str, Any]) -> None:
    chosen = _pick(world, kw["index"], pending=None)
    if chosen is not None:
        world.state = world.state.on_position_closed(chosen.position_id, kw["pl"], world.now)


def _on_news(world: World, kw: dict[str, Any]) -> None:
    when = world.now + timedelta(minutes=kw["offset"])
    world.events.append(CalendarEvent(f"e{len(world.events)}", kw["currency"], kw["impact"],
                                      "release", when))


def _on_calendar(world: World, kw: dict[str, Any]) -> None:
    age = kw["age"]
    world.calendar_ok_at = None if age is None else world.now - timedelta(minutes=age)


def _on_config(world: World, kw: dict[str, Any]) -> None:
    world.state = world.state.apply_config(risk_config(**kw), "lead", world.now).state


def _on_kill(world: World, kw: dict[str, Any]) -> None:
    world.state = world.state.kill_switch("ops", world.now, "test").state
    world.killed = True
    world.resume_in = kw["resume_after"] + 1


def _on_resume(world: World, kw: dict[str, Any]) -> None:
    world.state = world.state.resume("ops", world.now, enable_ai=kw["enable_ai"]).state
    world.killed = False
    world.resume_in = None


def _on_advance(world: World, kw: dict[str, Any]) -> None:
    world.now += timedelta(minutes=kw["minutes"])


def _on_activate(world: World, kw: dict[str, Any]) -> None:
    world.round_clock_active = kw["active"]


HANDLERS: dict[str, Callable[[World, dict[str, Any]], None]] = {
    "idea": _on_idea, "account": _on_account, "pnl": _on_pnl, "fill": _on_fill, "fail": _on_fail,
    "close": _on_close, "news": _on_news, "calendar": _on_calendar, "config": _on_config,
    "kill": _on_kill, "resume": _on_resume, "advance": _on_advance,
    "activate_strategy": _on_activate,
}


def run(commands: list[Command], config: dict[str, Any] | None = None) -> World:
    """Apply `commands` to a fresh world with a healthy account and calendar and the given
    risk settings (default: `risk_config()`); assertions fire inside the handlers."""
    settings_ = risk_config(**(config or {}))
    world = World(state=GateState(config=settings_).roll(T0), account=account())
    for name, kw in commands:
        HANDLERS[name](world, kw)
        if world.resume_in is not None:
            world.resume_in -= 1
            if world.resume_in == 0:
                _on_resume(world, {"enable_ai": True})
        restored = GateState.from_state(json.loads(json.dumps(world.state.to_state())))
        assert restored == world.state
    return world


# --------------------------------------------------------------------------- tests


@settings(max_examples=400, deadline=None)
@given(config=CONFIG.map(lambda command: command[1]), commands=COMMANDS)
def test_no_auto_execute_ever_breaks_a_rule(
    config: dict[str, Any], commands: list[Command]
) -> None:
    world = run(commands, config)

    for outcome in sorted(set(world.outcomes)):
        event(outcome)
    event(f"auto_executes: {min(world.auto_executed, 3)}{'+' if world.auto_executed > 3 else ''}")
    assert world.auto_executed == world.outcomes.count("auto_execute")


GOOD_IDEA = {"gold": True, "symbol": "XAUUSD", "lots": Decimal("0.50"),
             "confidence": Decimal("95"), "repeat": False, "stale_hash": False,
             "fresh_account": True, "fresh_calendar": True}


def test_harness_sees_auto_executions_and_blocks() -> None:
    world = run([
        ("idea", GOOD_IDEA),
        ("idea", {**GOOD_IDEA, "lots": Decimal("1.50")}),
        ("kill", {"resume_after": 1}),
        ("idea", GOOD_IDEA),
        ("resume", {"enable_ai": True}),
        ("idea", GOOD_IDEA),
        ("idea", GOOD_IDEA),
    ])

    assert world.outcomes == ["auto_execute", "rejected", "halted_by_risk", "auto_execute",
                              "rejected"]


def test_independent_checker_flags_each_kind_of_broken_rule() -> None:
    world = World(state=GateState(config=risk_config()).roll(T0), account=account())
    ok = dataclasses.replace(idea(GOLD), lot_size=Decimal("0.50"))
    killed = dataclasses.replace(world, state=world.state.kill_switch("ops", T0, "x").state)
    late = dataclasses.replace(world, now=T0 + timedelta(hours=5), account=None)

    assert violations(world, ok, Decimal(95)) == []
    assert violations(killed, ok, Decimal(95)) == ["kill switch on"]
    assert violations(world, dataclasses.replace(ok, lot_size=Decimal(2)), Decimal(89)) == [
        "confidence below threshold", "lot size over a cap"]
    assert violations(late, ok, Decimal(95)) == ["account stale", "outside the session",
                                                 "calendar stale"]


NO_RESUME = st.lists(
    st.one_of(IDEA, IDEA, IDEA, IDEA, ADVANCE, ACCOUNT, PNL_MOVE, FILL, FAIL, CLOSE, NEWS,
              CALENDAR, CONFIG, ACTIVATE),
    min_size=1,
    max_size=40,
)
FOREVER = {"resume_after": 10**9}


@settings(max_examples=150, deadline=None)
@given(before=COMMANDS, after=NO_RESUME)
def test_after_a_kill_nothing_auto_executes_until_resume(
    before: list[Command], after: list[Command]
) -> None:
    world = run([*before, ("kill", FOREVER), *after])

    killed_at = len(world.outcomes) - sum(1 for name, _ in after if name == "idea")
    assert "auto_execute" not in world.outcomes[killed_at:]
    assert set(world.outcomes[killed_at:]) <= {"halted_by_risk"}


@settings(max_examples=100, deadline=None)
@given(config=CONFIG.map(lambda command: command[1]), commands=COMMANDS)
def test_gate_state_round_trips_through_json_after_any_sequence(
    config: dict[str, Any], commands: list[Command]
) -> None:
    state = run(commands, config).state

    text = json.dumps(state.to_state(), sort_keys=True)

    assert GateState.from_state(json.loads(text)) == state
    assert json.dumps(GateState.from_state(json.loads(text)).to_state(), sort_keys=True) == text
