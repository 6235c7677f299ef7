"""Safety invariants of the gate's bookkeeping, property-based over long random event sequences.

Hypothesis draws sequences of candles (ideas from snapshot bundles), signed commands
(kill, resume, risk settings — valid and invalid —, strategy changes, approvals,
rejections, forged / stale / future / replayed / altered ones), account states with P/L
moves, broker results, position closes, calendar releases, redeliveries and restarts.
They are fed to one pure `streams.gatekeeper.Book`, as the worker does, while the
`Referee` (tests/reliability/world.py) re-checks every order request with its own
arithmetic. See the module docstring there for what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from streams.core.audit import verify_chain
from streams.gatekeeper import InvalidInboxMessage
from tests import factories
from tests.reliability.world import (
    ACCOUNT,
    BAD_RISK,
    ISSUER,
    KEY,
    World,
    interpret,
    risk_payload,
)
from topics.catalog import Catalog
from topics.commands import new_command

Step = tuple[Any, ...]

# ---------------------------------------------------------------- steps


def _one_in(n: int, common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> Any:
    return st.integers(0, n - 1).flatmap(lambda i: rare if i == 0 else common)


candles = st.tuples(
    st.just("candle"), st.integers(0, 1), st.integers(0, 1),
    st.sampled_from([60, 300, 900, 1800, 3600, 6 * 3600]),
    st.floats(5, 95, allow_nan=False).map(lambda v: round(v, 1)),
    st.sampled_from([0.02, 0.05, 0.1, 0.3]),
)
accounts = st.tuples(
    st.just("account"),
    _one_in(4, st.integers(-400, 400), st.integers(-2500, 2500)),
    st.one_of(st.none(), st.none(), st.integers(-1500, 2500)),
    _one_in(12, st.just(True), st.just(False)),
    _one_in(8, st.integers(0, 30), st.integers(0, 900)),
)
results = st.tuples(st.just("result"), st.integers(0, 20),
                    st.sampled_from(["filled"] * 5 + ["placed", "rejected", "failed", "expired"]))
risk = st.tuples(
    st.just("risk"),
    st.booleans(),
    st.sampled_from([0, 50, 70, 80, 90, 95, 100]),
    st.sampled_from(["0.05", "0.10", "0.30", "1.00"]),
    st.integers(1, 6),
    st.one_of(st.none(), st.integers(100, 3000)),
    st.integers(100, 2000),
    st.booleans(), st.booleans(),
    st.sampled_from([("XAUUSD", "EURUSD", "US30"), ("XAUUSD",), ("US30", "EURUSD"), ()]),
    _one_in(4, st.just(False), st.just(True)),
    st.sampled_from([1, 2, 5, 30]),
    st.sampled_from([10, 60, 600]),
    st.sampled_from([5, 15, 60, 240]),
)
approvals = st.tuples(
    st.just("approve"), st.integers(0, 20),
    st.sampled_from([None, None, Decimal("0.01"), Decimal("0.30"), Decimal("2.00")]))
#: (weight, steps): candles most often, every other kind now and then.
WEIGHTED: tuple[tuple[int, st.SearchStrategy[Any]], ...] = (
    (14, candles), (2, accounts), (1, results), (2, approvals), (2, risk),
    (1, st.tuples(st.just("close"), st.integers(0, 10), st.integers(-800, 800))),
    (2, st.tuples(st.just("event"), st.integers(-40, 180),
                  st.sampled_from(["USD", "EUR", "XAU"]), st.sampled_from(["high", "medium"]))),
    (1, st.tuples(st.just("calendar"), _one_in(3, st.just(False), st.just(True)))),
    (1, st.tuples(st.just("broker"), _one_in(3, st.just(False), st.just(True)))),
    (1, st.tuples(st.just("kill"), st.one_of(st.none(), st.integers(1, 15)))),
    (1, st.tuples(st.just("resume"))),
    (1, st.tuples(st.just("bad_risk"), st.integers(0, len(BAD_RISK) - 1))),
    (1, st.tuples(st.just("reject"), st.integers(0, 20))),
    (3, st.tuples(st.just("strategy"), st.integers(0, 1),
                  st.sampled_from(["toggle", "lots", "positions", "news", "symbols", "session"]),
                  st.integers(0, 29))),
    (2, st.tuples(st.just("hostile"), st.sampled_from(
        ["forged", "stale", "future", "unsigned", "replayed", "altered", "broker_kind"]))),
    (1, st.tuples(st.just("redeliver"), st.integers(0, 50))),
    (1, st.tuples(st.just("restart"))),
    (1, st.tuples(st.just("wait"), st.sampled_from([30, 600, 3600]))),
)
# (one_of would drop the repeats of one strategy object: weights go through the index)
step = st.sampled_from([i for i, (weight, _) in enumerate(WEIGHTED) for _ in range(weight)]
                       ).flatmap(lambda i: WEIGHTED[i][1])
sequences = st.lists(step, min_size=60, max_size=200)
starts = st.fixed_dictionaries({
    "min_confidence_threshold": st.sampled_from(["0", "40", "60", "75", "90"]),
    "max_concurrent_trades": st.integers(2, 5),
})


def _play(start: dict[str, Any], steps: Sequence[Step], skew: timedelta = timedelta(0),
          roundtrip: bool = True) -> World:
    world = World(skew=skew, restart_roundtrip=roundtrip)
    world.start(**start)
    interpret(world, steps)
    return world


def _encoded(world: World) -> list[tuple[str, str, bytes]]:
    catalog = Catalog("")
    return [(topic, key, catalog.codec(topic).encode(record))
            for topic, key, record in world.run.outputs]


def _decided(world: World) -> list[tuple[str, str, bytes]]:
    """Every output but the replies (whose `replied_at` is the wall clock's)."""
    return [o for o in _encoded(world) if o[0] != "control.replies.v1"]


def _first_difference(a: list[tuple[str, str, bytes]], b: list[tuple[str, str, bytes]],
                      world: World) -> str | None:
    """Where two output streams part, in words (None when they are identical)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"output {i} ({x[0]}): {world.run.outputs[i][2]} / {x[2]!r} != {y[2]!r}"
    if len(a) != len(b):
        return f"{len(a)} outputs != {len(b)}"
    return None


def _reply_statuses(world: World) -> list[tuple[str, str, str | None]]:
    """Command id, status and refusal code of every reply (a stale refusal's text says how
    old the command was by the wall clock, so only its code is compared)."""
    return [(r["command_id"], r["status"], (r["reason"] or "").split(":")[0])
            for t, _, r in world.run.outputs if t == "control.replies.v1"]


#: Long sequences shrink slowly: a failure is reported as found, with the referee's words.
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, phases=NO_SHRINK,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------- properties


@PROPERTY
@given(start=starts, steps=sequences)
def test_no_order_request_ever_breaks_a_risk_rule(start: dict[str, Any],
                                                  steps: list[Step]) -> None:
    world = _play(start, steps)
    referee = world.referee
    for name, n in referee.counts.items():
        event(f"{name}: {'0' if n == 0 else '1-4' if n < 5 else '5+'}")
    assert referee.violations == [], referee.violations[:5]
    assert referee.orders_while_killed == 0


@PROPERTY
@given(start=starts, steps=sequences)
def test_every_idea_follows_one_path_to_at_most_one_terminal_status(
        start: dict[str, Any], steps: list[Step]) -> None:
    world = _play(start, steps)
    assert world.referee.status_problems() == []
    request_ids = [r["request_id"] for r in world.referee.requests]
    assert len(request_ids) == len(set(request_ids))


@PROPERTY
@given(start=starts, steps=sequences)
def test_the_decision_log_is_always_one_unbroken_hash_chain(
        start: dict[str, Any], steps: list[Step]) -> None:
    world = _play(start, steps)
    decisions = world.referee.decisions
    report = verify_chain(ACCOUNT, decisions)
    assert report.ok, report.first_break
    assert report.verified == len(decisions)
    assert len({d["decision_id"] for d in decisions}) == len(decisions)
    assert report.head == world.book.last_hash


@settings(max_examples=40, deadline=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(start=starts, steps=sequences)
def test_the_same_sequence_gives_byte_identical_records_whatever_the_wall_clock(
        start: dict[str, Any], steps: list[Step]) -> None:
    first = _play(start, steps)
    again = _play(start, steps)
    assert _first_difference(_encoded(first), _encoded(again), first) is None
    # The wall clock (commands are checked against it) 90 s later and no restarts:
    # the same decisions, statuses, orders and states byte for byte; only replied_at moves.
    later = _play(start, steps, skew=timedelta(seconds=90), roundtrip=False)
    assert _first_difference(_decided(first), _decided(later), first) is None
    assert _reply_statuses(first) == _reply_statuses(later)


@settings(max_examples=60, deadline=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(start=starts, steps=sequences, cut=st.floats(0, 1))
def test_a_checkpoint_puts_the_book_back_exactly_after_any_events(
        start: dict[str, Any], steps: list[Step], cut: float) -> None:
    """The worker's undo of an event that failed half-way (`Book.checkpoint` /
    `restore`): whatever ran since, the book's record and its gate-state JSON are those
    of the checkpoint again."""
    at = int(cut * len(steps))
    world = _play(start, steps[:at])
    checkpoint, record = world.book.checkpoint(), json.dumps(world.book.to_state(),
                                                             sort_keys=True, default=str)
    gate_json = world.book.gate_state_json()
    book = world.book
    interpret(world, [s for s in steps[at:] if s[0] != "restart"])  # same book object
    assert world.book is book
    moved = json.dumps(book.to_state(), sort_keys=True, default=str) != record
    book.restore(checkpoint)
    assert json.dumps(book.to_state(), sort_keys=True, default=str) == record
    assert book.gate_state_json() == gate_json
    event(f"the book moved after the checkpoint: {moved}")


# ---------------------------------------------------------------- pinned scenarios


def test_after_an_accepted_kill_no_order_until_resume() -> None:
    world = World()
    world.start(min_confidence_threshold="0", max_concurrent_trades=4)
    kill = world.command("kill_switch", reason="hands off")
    assert kill.replies[0]["status"] == "accepted"
    for minute in range(30):
        world.account()
        world.candle(0, minute, 60, 60.0, 0.05)
    assert world.referee.counts.get("orders_auto", 0) == 0
    pending = world.pending_ideas()
    assert pending == []  # halted ideas do not wait for a human either
    world.command("resume", reason="reviewed")
    world.account()
    world.candle(0, 0, 60, 60.0, 0.05)
    assert world.referee.counts.get("orders_auto", 0) == 1
    assert world.referee.violations == []


def test_an_unknown_trading_day_timezone_is_refused_and_the_kill_switch_still_works() -> None:
    """A signed set_risk_config naming a timezone that does not exist must be refused as
    invalid_payload. Accepting it bricks the gate: every later event (the kill switch
    included) raises InvalidTimezone and is dead-lettered without an answer."""
    world = World()
    world.start()
    out = world.command("set_risk_config", payload=risk_payload(trading_day_tz="Mars/Olympus"))
    assert out.replies[0]["status"] == "refused", out.replies[0]
    assert str(out.replies[0]["reason"]).startswith("invalid_payload")
    kill = world.command("kill_switch", reason="hands off")
    assert kill.replies[0]["status"] == "accepted"


def test_an_account_state_from_the_far_future_does_not_disable_drawdown_halts() -> None:
    """One account.state record dated 2099 (inside the validators' 1990-2100 range) must
    not make the gate ignore every real account state after it: a realised loss beyond
    the drawdown limit still halts the AI."""
    world = World()
    world.start(max_drawdown_amount="300.00")
    poison = factories.account_state(
        account=ACCOUNT, captured_at=datetime(2099, 1, 1, tzinfo=UTC), positions=[],
        realized_pl_today=Decimal("0.00"), open_pl=Decimal("0.00"))
    with pytest.raises(InvalidInboxMessage, match="ahead of the gate's clock"):
        world.book.on_account(poison, now=world.now)  # refused at the door (dead letter)
    out = world.account(open_pl=0, realised=-5000)
    assert [d["action"] for d in out.decisions] == ["ai_halted"]
    assert world.book.state.last_halt_reason == "max_drawdown"


def _approve_later(world: World, minutes: int) -> Any:
    """`minutes` later, with a fresh account, a human approves the waiting idea."""
    world._tick(minutes * 60)
    world.account()
    return world.approve(0, None)


def _supervised(world: World, **risk: Any) -> None:
    """Every idea waits for a human (AI trading off), for up to four hours."""
    world.start(min_confidence_threshold="0")
    world.command("set_risk_config", payload=risk_payload(**{
        "ai_trading_enabled": False, "min_confidence_threshold": "0", "max_lot_size": "1.00",
        "max_concurrent_trades": 5, "daily_profit_target": "2000.00",
        "max_drawdown_amount": "1000.00", "watchlist": ["XAUUSD", "EURUSD", "US30"],
        "approval_ttl_minutes": 240, **risk}))


def test_a_checkpoint_puts_back_the_ideas_waiting_and_the_orders_in_flight() -> None:
    """The pinned case of the property above, with the dicts a checkpoint must copy: ideas
    waiting for a human (their expiries) and an approved order in flight."""
    world = World()
    _supervised(world)
    world.candle(0, 0, 60, 60.0, 0.05)
    book = world.book
    checkpoint = book.checkpoint()
    record = json.dumps(book.to_state(), sort_keys=True, default=str)
    assert book.expiries
    assert not book.inflight
    world.candle(0, 1, 60, 60.0, 0.05)
    world.candle(0, 0, 60, 60.0, 0.05)
    approved = world.approve(0, None)
    assert approved is not None
    assert approved.orders
    assert len(book.expiries) == 2  # two more came, one was approved
    assert book.inflight
    book.restore(checkpoint)
    assert json.dumps(book.to_state(), sort_keys=True, default=str) == record


def _scenario_drawdown_without_halt(world: World) -> None:
    world.start(min_confidence_threshold="0", max_drawdown_amount="300.00",
                halt_on_drawdown=False)
    world.account(open_pl=-500)
    world.broker_feed(True)
    world.candle(0, 0, 60, 60.0, 0.05)


def _scenario_target_after_resume(world: World) -> None:
    world.start(min_confidence_threshold="0", daily_profit_target="500.00")
    world.account(open_pl=800)  # the target halts the AI ...
    world.broker_feed(True)  # ... the broker goes quiet, a human resumes
    world.command("resume", reason="one more")
    world.candle(0, 0, 60, 60.0, 0.05)


def _scenario_session_over_at_approval(world: World) -> None:
    _supervised(world)
    world._tick(4 * 3600 + 50 * 60)  # Monday 10:50 UTC: London session until 11:00
    world.candle(1, 0, 60, 30.0, 0.05)
    _approve_later(world, 30)


def _scenario_news_at_approval(world: World) -> None:
    _supervised(world)
    world.add_event(50, "USD", "high")  # in the idea's calendar, 15-minute blackout
    world.candle(0, 0, 60, 60.0, 0.05)
    _approve_later(world, 40)  # the idea waits up to 45 minutes


def _scenario_strategy_disabled_before_approval(world: World) -> None:
    _supervised(world)
    world.candle(0, 0, 60, 60.0, 0.05)
    world.strategy_change(0, "toggle", 0)
    _approve_later(world, 1)


def _scenario_halt_before_approval(world: World) -> None:
    _supervised(world, max_drawdown_amount="300.00")
    world.candle(0, 0, 60, 60.0, 0.05)
    world.account(open_pl=-400)  # halts
    world.account(open_pl=0)  # recovered, but the halt stays until a human resumes
    _approve_later(world, 1)


def _scenario_lots_over_the_cap_on_approval(world: World) -> None:
    _supervised(world)
    world.candle(0, 0, 60, 60.0, 0.05)
    world.approve(0, Decimal("2.00"))


def _scenario_calendar_stale_at_approval(world: World) -> None:
    _supervised(world, calendar_max_age_minutes=10)
    world.candle(0, 0, 60, 60.0, 0.05)
    world.calendar_feed(True)  # the calendar feed stops succeeding
    _approve_later(world, 20)


SCENARIOS = {
    "calendar stale at approval": _scenario_calendar_stale_at_approval,
    "drawdown without halt": _scenario_drawdown_without_halt,
    "daily target after a resume": _scenario_target_after_resume,
    "session over at approval": _scenario_session_over_at_approval,
    "news blackout at approval": _scenario_news_at_approval,
    "strategy disabled before approval": _scenario_strategy_disabled_before_approval,
    "halt before approval": _scenario_halt_before_approval,
    "lots over the cap on approval": _scenario_lots_over_the_cap_on_approval,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_rule_blocks_the_order_in_its_own_scenario(name: str) -> None:
    """Rules that random sequences reach only now and then, each pinned once: no order
    request may come out, and the referee agrees there was none to allow."""
    world = World()
    SCENARIOS[name](world)
    assert world.referee.statuses, "the scenario produced no idea"
    assert world.referee.requests == [], world.referee.requests
    assert world.referee.violations == []


def test_a_command_signed_for_another_account_is_refused() -> None:
    """The signature covers the command's `account`: a command signed for account B and
    delivered on account A's stream (a replay across accounts within its five minutes)
    must not change A. Today the book never compares the two."""
    world = World()
    world.start()
    before = world.snapshot()
    elsewhere = new_command("set_risk_config", "acct-paper-demo", ISSUER, KEY, now=world.now,
                            payload=risk_payload(ai_trading_enabled=True, max_lot_size="50.00",
                                                 min_confidence_threshold="0"))
    out = world.send_command(elsewhere)
    assert out.replies[0]["status"] == "refused", out.replies[0]
    assert world.snapshot()["book"]["state"] == before["book"]["state"]
