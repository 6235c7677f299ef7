"""Bad input on the real bus, against the real `ai-trader worker`.

Fuzzed bytes and valid Avro carrying hostile values (NaN, infinities, huge, negative,
empty strings, timestamps in 1900 or 2150) go to every topic the worker consumes
(market.candles, gate.inbox, account.state, orders.results): each must land on the
topic's dead-letter twin with the reason, and the worker must go on deciding correctly.
Forged, replayed, stale, future and altered control commands must be refused (and
logged) with nothing else changing.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests import factories
from tests.reliability.bus import (
    OUT_TOPICS,
    WORKER_INPUTS,
    Stage,
    dead_letters,
    decisions_are_sound,
    fuzzed_bytes,
    module_catalog,
    unvalidated,
)
from tests.reliability.procs import Service, service_env
from tests.streams.harness import (
    ACCOUNT,
    ANY_BAR_BUY,
    KEY,
    Bus,
    fresh_context,
    minute_floor,
    now,
)
from topics.catalog import Catalog
from topics.codec import CodecError
from topics.commands import new_command
from topics.settings import Settings

FAR_FUTURE = datetime(2150, 1, 1, tzinfo=UTC)
FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
OTHER = "acct-fuzz"  # hostile records that might still decode go to another account's book


@pytest.fixture(scope="module")
def topics(bus: Settings) -> Iterator[Catalog]:
    yield from module_catalog(bus)


@pytest.fixture(scope="module")
def stage(bus: Settings, topics: Catalog, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stage]:
    """One worker for the module, seeded, with the any-bar strategy and a fresh context."""
    workdir = tmp_path_factory.mktemp("worker")
    worker = Service("worker", ["worker"], service_env(bus, topics, ACCOUNT, KEY, workdir),
                     workdir)
    worker.start()
    io = Bus(bus, topics)
    io.follow(OUT_TOPICS)
    try:
        io.wait(lambda rs: sum(r.topic == "control.replies.v1" for r in rs) >= 4, 90,
                "the seed commands' replies")
        put = io.command("put_strategy", strategy_id=ANY_BAR_BUY["id"],
                         payload={"definition": ANY_BAR_BUY})
        assert io.reply(put["command_id"])["status"] == "accepted"
        start = minute_floor(now()) - timedelta(minutes=180)
        fresh_context(io, start + timedelta(minutes=180))
        yield Stage(io=io, worker=worker, catalog=topics, start=start)
    finally:
        io.close()
        worker.stop()


# ---------------------------------------------------------------- hostile records


def _candle(**kw: Any) -> dict[str, Any]:
    return {**factories.candle(0, "XAGUSD", open_time=datetime(2026, 1, 5, tzinfo=UTC)), **kw}


def _hostile_candles() -> list[dict[str, Any]]:
    nan, inf = math.nan, math.inf
    return [
        _candle(close=nan), _candle(high=inf), _candle(open=-5.0), _candle(low=-inf),
        _candle(low=3000.0, high=2000.0), _candle(symbol=""), _candle(symbol="XAG\x00USD"),
        _candle(timeframe="M7"), _candle(timeframe=""), _candle(open_time=FAR_FUTURE),
        _candle(open_time=FAR_PAST), _candle(volume=-1), _candle(spread=nan),
        _candle(spread=-0.5), _candle(close=1e9),  # close above the high
    ]


def _idea_message(**idea: Any) -> dict[str, Any]:
    return {"account": OTHER, "idea": factories.trade_idea(account=OTHER, **idea),
            "bundle": factories.snapshot_bundle(account=OTHER), "command": None}


def _hostile_inbox() -> list[dict[str, Any]]:
    signed = new_command("kill_switch", OTHER, "fuzz@example.com", KEY, reason="fuzz")
    return [
        _idea_message(entry_price=math.nan), _idea_message(stop_loss=-1.0),
        _idea_message(take_profit=[math.inf]), _idea_message(idea_id=""),
        _idea_message(lot_size=Decimal("-1.00")), _idea_message(confidence=Decimal("999.99")),
        _idea_message(created_at=FAR_FUTURE), _idea_message(direction="sideways"),
        _idea_message(symbol="X" * 300),
        {**_idea_message(), "command": signed},  # both an idea and a command
        {"account": OTHER, "idea": None, "bundle": None, "command": None},  # neither
        {**_idea_message(), "bundle": None},  # an idea without its bundle
        {"account": OTHER, "idea": None, "bundle": None, "command": {**signed, "signature": ""}},
        {"account": OTHER, "idea": None, "bundle": None,
         "command": {**signed, "issued_at": FAR_PAST}},
        {"account": OTHER, "idea": None, "bundle": None,
         "command": {**signed, "reason": "x" * 70_000}},
    ]


def _hostile_accounts() -> list[dict[str, Any]]:
    def acct(**kw: Any) -> dict[str, Any]:
        return factories.account_state(**{"account": OTHER, **kw})
    return [
        acct(account=""), acct(broker=""), acct(captured_at=FAR_FUTURE),
        acct(captured_at=FAR_PAST), acct(positions=[factories.position(direction="up")]),
        acct(positions=[factories.position(entry_price=math.nan)]),
        acct(positions=[factories.position(volume=Decimal("0.00"))]),
        acct(positions=[factories.position(volume=Decimal("-1.00"))]),
    ]


def _result(**kw: Any) -> dict[str, Any]:
    return {"request_id": "r-1", "idea_id": "r-1", "account": OTHER, "status": "filled",
            "broker": "paper", "broker_order_id": 1, "broker_deal_id": 1, "position_ticket": 1,
            "filled_price": 1.0, "filled_volume": Decimal("0.10"), "retcode": None,
            "error_code": None, "message": "", "executed_at": now(), **kw}


def _hostile_results() -> list[dict[str, Any]]:
    return [_result(executed_at=FAR_FUTURE), _result(executed_at=FAR_PAST)]


HOSTILE = {
    "market.candles.v1": ("XAGUSD", _hostile_candles, _candle),
    "gate.inbox.v1": (OTHER, _hostile_inbox, _idea_message),
    "account.state.v1": (OTHER, _hostile_accounts,
                         lambda: factories.account_state(account=OTHER)),
    "orders.results.v1": (OTHER, _hostile_results, _result),
}


def _publish_hostile(stage: Stage) -> Counter[tuple[str, bytes]]:
    """Send every hostile record; return what must come back as dead letters."""
    catalog, producer = stage.catalog, stage.io.producer
    expected: Counter[tuple[str, bytes]] = Counter()
    for seed, (topic, (key, hostile, valid)) in enumerate(HOSTILE.items()):
        raw = unvalidated(catalog, topic)
        payloads = [raw.encode(r) for r in hostile()]
        payloads += fuzzed_bytes(seed, raw, raw.encode(valid()))
        for value in payloads:
            try:
                catalog.codec(topic).decode(value)
            except CodecError:
                expected[(topic, value)] += 1
            producer.send_raw(catalog.name(topic), key.encode(), value)
        producer.send_raw(catalog.name(topic), key.encode(), None)  # a tombstone
        expected[(topic, b"")] += 1  # (a null value reads back as empty bytes)
    producer.flush()
    return expected


def test_hostile_records_on_every_input_are_dead_lettered_and_decisions_go_on(
        stage: Stage) -> None:
    io = stage.io
    stage.feed(20)
    io.wait(lambda rs: len(stage.ideas_since(0)) >= 3, 60, "ideas before the garbage")

    expected = _publish_hostile(stage)
    # extreme but valid values: no dead letter required, but nothing may break
    io.producer.send("market.candles.v1", "XAGUSD", _candle(
        open_time=datetime(2026, 1, 5, 0, 1, tzinfo=UTC), open=1e308, high=1e308, low=1e308,
        close=1e308))
    io.producer.send("account.state.v1", OTHER, factories.account_state(
        account=OTHER, balance=Decimal("9" * 16), equity=Decimal("-" + "9" * 16)))
    io.producer.send("orders.results.v1", OTHER, _result(status="filled", idea_id="nobody"))
    io.producer.flush()

    total = sum(expected.values())
    letters = dead_letters(io.settings, stage.catalog, WORKER_INPUTS, total, timeout=90)
    got = Counter((letter.topic, letter.value or b"") for letter in letters)
    missing = expected - got
    assert not missing, [(t, v[:40]) for t, v in missing]
    for letter in letters:
        assert letter.headers.get("__connect.errors.exception.class.name"), letter
        assert letter.headers.get("__connect.errors.exception.message"), letter
        assert letter.headers.get("__connect.errors.topic") == stage.catalog.name(letter.topic)
        assert letter.headers.get("__connect.errors.stage") in ("decode", "process")
    print(f"{total} hostile records -> {len(letters)} dead letters on "
          f"{dict(Counter(letter.topic for letter in letters))}")

    # The worker is alive and still decides, correctly, on what follows.
    before = len(io.of("ideas.status.v1"))
    stage.feed(10)
    io.wait(lambda rs: len(stage.ideas_since(before)) >= 8, 90, "ideas after the garbage")
    assert stage.alive(), stage.worker.output()[-3000:]
    assert decisions_are_sound(io) == []
    assert all(s["status"] == "pending_approval" for s in stage.ideas_since(before))


def test_forged_replayed_stale_and_altered_commands_are_refused_and_change_nothing(
        stage: Stage) -> None:
    io = stage.io
    risk_before = len(io.of("state.risk_config.v1"))
    applied = io.command("set_risk_config", payload={"max_lot_size": "0.50",
                                                     "max_concurrent_trades": 2,
                                                     "daily_profit_target": "200.00",
                                                     "max_drawdown_amount": "300.00"})
    assert io.reply(applied["command_id"])["status"] == "accepted"
    io.wait(lambda rs: len(io.of("state.risk_config.v1")) > risk_before, 30, "the new config")
    decisions_before = len(io.of("decisions.log.v1"))
    risk_before = len(io.of("state.risk_config.v1"))

    at = now()
    kill = new_command("kill_switch", ACCOUNT, "mallory@example.com", b"x" * 32,
                       reason="forged")
    stale = new_command("kill_switch", ACCOUNT, "ops@example.com", KEY, reason="old",
                        now=at - timedelta(minutes=10))
    future = new_command("kill_switch", ACCOUNT, "ops@example.com", KEY, reason="later",
                         now=at + timedelta(minutes=5))
    signed = new_command("set_risk_config", ACCOUNT, "ops@example.com", KEY, payload={
        "max_lot_size": "0.50", "max_concurrent_trades": 2, "daily_profit_target": "200.00",
        "max_drawdown_amount": "300.00", "ai_trading_enabled": False})
    altered = {**signed, "payload_json": json.dumps({**json.loads(signed["payload_json"]),
                                                     "ai_trading_enabled": True,
                                                     "max_lot_size": "50.00"})}
    wrong_kind = new_command("refresh_account", ACCOUNT, "ops@example.com", KEY)
    expected = {kill["command_id"]: "bad_signature", stale["command_id"]: "stale",
                future["command_id"]: "from_future", altered["command_id"]: "bad_signature",
                wrong_kind["command_id"]: "unknown_kind"}
    for command in (kill, stale, future, altered, wrong_kind, applied):  # applied: a replay
        io.send("gate.inbox.v1", ACCOUNT, {"account": ACCOUNT, "idea": None, "bundle": None,
                                           "command": command})

    def answered(rs: list[Any]) -> bool:
        ids = [r.value["command_id"] for r in rs if r.topic == "control.replies.v1"]
        return all(c in ids for c in expected) and ids.count(applied["command_id"]) >= 2
    io.wait(answered, 60, "the refusals")
    replies = {r["command_id"]: r for r in io.of("control.replies.v1")}
    for command_id, code in expected.items():
        assert replies[command_id]["status"] == "refused", replies[command_id]
        assert replies[command_id]["reason"].startswith(f"{code}: "), replies[command_id]
    replay = [r for r in io.of("control.replies.v1") if r["command_id"] == applied["command_id"]]
    assert [r["status"] for r in replay] == ["accepted", "refused"]
    assert replay[1]["reason"].startswith("replayed: ")

    # Nothing changed: no decision, no new risk state, the kill switch is still off.
    before = len(io.of("ideas.status.v1"))
    stage.feed(6)
    io.wait(lambda rs: len(stage.ideas_since(before)) >= 4, 60, "ideas after the refusals")
    assert [s["status"] for s in stage.ideas_since(before)] == ["pending_approval"] * len(
        stage.ideas_since(before))
    new_decisions = io.of("decisions.log.v1")[decisions_before:]
    assert {d["action"] for d in new_decisions} == {"ai_proposed"}
    assert len(io.of("state.risk_config.v1")) == risk_before
    log = stage.worker.output()
    for code in ("bad_signature", "stale", "from_future", "unknown_kind", "replayed"):
        assert f"command refused for account {ACCOUNT}: {code}" in log, code


def test_schema_valid_records_dated_2099_are_dead_lettered_not_trusted(stage: Stage) -> None:
    """Timestamps inside the validators' 1990-2100 range but decades ahead of the clock.

    An account state captured in 2099 makes the gate ignore every real account state
    after it (they are "older"), which switches off drawdown and target halts for that
    account (see test_book_invariants); a result executed in 2099 opens a position the
    account sync never removes. Both must be refused at the door, like 2150 is."""
    poisoned = "acct-poison"
    records = {
        "account.state.v1": factories.account_state(
            account=poisoned, captured_at=datetime(2099, 1, 1, tzinfo=UTC)),
        "orders.results.v1": _result(account=poisoned, executed_at=datetime(2099, 1, 1,
                                                                           tzinfo=UTC)),
    }
    # Behind each, on the same partition, a record dated 2150 that is surely refused:
    # once its dead letter is there, the worker has judged the 2099 one.
    markers = {
        "account.state.v1": factories.account_state(account=poisoned, captured_at=FAR_FUTURE),
        "orders.results.v1": _result(account=poisoned, executed_at=FAR_FUTURE),
    }
    raw = {t: unvalidated(stage.catalog, t) for t in records}
    for topic, record in records.items():
        stage.io.producer.send(topic, poisoned, record)
        stage.io.producer.send_raw(stage.catalog.name(topic), poisoned.encode(),
                                   raw[topic].encode(markers[topic]))
    stage.io.producer.flush()
    marker_bytes = {raw[t].encode(m) for t, m in markers.items()}

    def judged() -> list[Any]:
        letters = dead_letters(stage.io.settings, stage.catalog, tuple(records), 1, timeout=5)
        return [x for x in letters if x.key == poisoned.encode()]
    letters = judged()
    for _ in range(12):
        if {x.value for x in letters} >= marker_bytes:
            break
        letters = judged()
    assert {x.value for x in letters} >= marker_bytes, "the worker never got to the markers"
    refused = sorted(x.topic for x in letters if x.value not in marker_bytes)
    assert refused == sorted(records), f"dead-lettered besides the markers: {refused}"
