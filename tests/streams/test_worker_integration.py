"""The streams worker on the real broker: candles in, ideas, decisions, orders out.

Each test runs `ai-trader worker` as a subprocess on its own topics and speaks to it
only through the bus, with signed commands, as the API and the CLI do.
"""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from decimal import Decimal
from typing import Any

from streams.core.audit import verify_chain
from streams.proposals import from_bundle
from tests import factories
from tests.streams.harness import (
    ACCOUNT,
    ANY_BAR_BUY,
    Bus,
    WorkerProcess,
    feed,
    fresh_context,
    minute_floor,
    now,
    statuses,
)
from topics.catalog import Catalog

STRATEGY_ID = ANY_BAR_BUY["id"]


def test_candles_become_ideas_waiting_for_approval_with_reproducible_bundles(io: Bus) -> None:
    start = minute_floor(now()) - timedelta(minutes=31)
    fresh_context(io, start + timedelta(minutes=30))
    feed(io, 30, start=start)

    io.wait(lambda rs: len(statuses(io, "pending_approval")) >= 10, 60, "pending ideas")
    io.wait(lambda rs: len(io.of("market.indicators.v1")) == 30, 30, "30 indicator records")

    def proposed() -> list[dict[str, Any]]:
        return [d for d in io.of("decisions.log.v1") if d["action"] == "ai_proposed"]

    # a decision and its status are two records on two topics: wait until both are in
    io.wait(lambda rs: {p["idea_id"] for p in statuses(io, "pending_approval")}
            == {d["trade_idea_id"] for d in proposed()}, 30, "a status for every proposal")
    pending = statuses(io, "pending_approval")
    assert len(pending) == len(proposed()) >= 10
    # Supervised by default: AI trading off, every idea waits, no order goes out.
    assert io.of("orders.requests.v1") == []
    # Every idea is reproducible from its frozen bundle alone.
    bundles = {b["snapshot_id"]: b for b in io.of("snapshots.bundles.v1")}
    for status in pending:
        idea = status["idea"]
        again = from_bundle(bundles[idea["snapshot_id"]])
        assert again.idea_record["idea_id"] == idea["idea_id"]
        assert again.idea_record["confidence"] == idea["confidence"]
    # The decision log is a valid hash chain.
    report = verify_chain(ACCOUNT, io.of("decisions.log.v1"))
    assert report.ok, report.first_break
    assert report.verified == len(io.of("decisions.log.v1"))


def test_approve_sends_exactly_one_order_and_refuses_everything_after(io: Bus) -> None:
    start = minute_floor(now()) - timedelta(minutes=21)
    fresh_context(io, start + timedelta(minutes=20))
    feed(io, 20, start=start)
    io.wait(lambda rs: len(statuses(io, "pending_approval")) >= 2, 60, "pending ideas")
    idea_id = statuses(io, "pending_approval")[0]["idea_id"]

    ok = io.command("approve_idea", idea_id=idea_id, lot_size=Decimal("0.05"))
    reply = io.reply(ok["command_id"])
    assert reply["status"] == "accepted", reply
    result = json.loads(reply["result_json"])
    assert result["order_request_id"] == idea_id

    again = io.reply(io.command("approve_idea", idea_id=idea_id)["command_id"])
    assert again["status"] == "refused"
    assert again["reason"].startswith("already_decided")

    forged = io.command("approve_idea", idea_id=statuses(io, "pending_approval")[1]["idea_id"],
                        key=b"not-the-key-0123456789")
    assert io.reply(forged["command_id"])["reason"].startswith("bad_signature")

    io.send("gate.inbox.v1", ACCOUNT, {"account": ACCOUNT, "idea": None, "bundle": None,
                                       "command": ok})  # the same signed command, replayed
    replies = io.wait(lambda rs: sum(r.topic == "control.replies.v1"
                                     and r.value["command_id"] == ok["command_id"]
                                     for r in rs) == 2, 30, "the replay's refusal")
    replayed = [r.value for r in replies if r.topic == "control.replies.v1"
                and r.value["command_id"] == ok["command_id"]][-1]
    assert replayed["reason"].startswith("replayed")

    unknown = io.reply(io.command("approve_idea", idea_id="no-such-idea")["command_id"])
    assert unknown["reason"].startswith("unknown_idea")

    orders = io.of("orders.requests.v1")
    assert [o["request_id"] for o in orders] == [idea_id]
    assert orders[0]["lot_size"] == Decimal("0.05")
    assert orders[0]["human_override"] is True
    assert [s["status"] for s in io.of("ideas.status.v1") if s["idea_id"] == idea_id] == [
        "pending_approval", "approved"]
    assert any(d["action"] == "human_approved" and d["trade_idea_id"] == idea_id
               for d in io.of("decisions.log.v1"))


def test_kill_switch_blocks_the_next_idea_and_survives_a_restart(
    io: Bus, worker: WorkerProcess
) -> None:
    start = minute_floor(now()) - timedelta(minutes=40)
    fresh_context(io, start + timedelta(minutes=40))
    kill = io.command("kill_switch", reason="news spike, hands off")
    assert io.reply(kill["command_id"])["status"] == "accepted"
    feed(io, 20, start=start)  # published right after the kill

    io.wait(lambda rs: len(statuses(io, "halted_by_risk")) >= 5, 60, "halted ideas")
    assert statuses(io, "pending_approval") == []
    halted = [d for d in io.of("decisions.log.v1") if d["action"] == "ai_halted"]
    assert halted[0]["issuer"] == "tester@example.com"
    assert "news spike, hands off" in halted[0]["rationale"]
    risk = json.loads(io.of("state.risk_config.v1")[-1]["config_json"])
    assert risk["kill_switch"]["active"] is True
    assert risk["kill_switch"]["reason"] == "news spike, hands off"

    worker.stop(signal.SIGKILL)  # no goodbye: the table's changelog must carry the kill
    worker.start()
    seen_before = len(statuses(io, "halted_by_risk"))
    feed(io, 10, first=20, start=start)
    # faust can drop records after a restart; the watchdog then stops the worker and
    # the supervisor (here: the harness) starts it again
    worker.wait_supervised(io, lambda rs: len(statuses(io, "halted_by_risk")) >= seen_before + 5,
                           150, "halted ideas after the restart")
    assert statuses(io, "pending_approval") == []
    assert io.of("orders.requests.v1") == []

    resumed = io.reply(io.command("resume", reason="reviewed")["command_id"])
    assert resumed["status"] == "accepted"
    assert json.loads(resumed["result_json"])["kill_switch"]["active"] is False
    assert any(d["action"] == "ai_resumed" for d in io.of("decisions.log.v1"))
    assert verify_chain(ACCOUNT, io.of("decisions.log.v1")).ok


def test_auto_execution_respects_max_concurrent_trades_and_drawdown_halts(io: Bus) -> None:
    start = minute_floor(now()) - timedelta(minutes=26)
    fresh_context(io, start + timedelta(minutes=25))
    config = {"ai_trading_enabled": True, "min_confidence_threshold": "0",
              "max_lot_size": "1.00", "max_concurrent_trades": 2,
              "daily_profit_target": "5000.00", "max_drawdown_amount": "300.00",
              "watchlist": ["XAUUSD"]}
    reply = io.reply(io.command("set_risk_config", payload=config)["command_id"])
    assert reply["status"] == "accepted", reply
    assert any(d["action"] == "ai_resumed" for d in io.of("decisions.log.v1"))

    feed(io, 25, start=start)
    io.wait(lambda rs: len(statuses(io, "rejected_by_risk")) >= 3, 60, "rejected ideas")
    orders = io.of("orders.requests.v1")
    assert len(orders) == 2  # max_concurrent_trades = 2, nothing more however many ideas
    rejected = [d for d in io.of("decisions.log.v1") if d["action"] == "risk_rejected"]
    assert rejected
    assert all(d["risk_check_result"] == "fail:max_concurrent_trades"
                            for d in rejected)

    # The account loses more than the drawdown limit: the gate halts itself.
    fresh_context(io, start + timedelta(minutes=26), realized_pl_today=Decimal("-350.00"))
    io.wait(lambda rs: any(r.topic == "decisions.log.v1" and r.value["action"] == "ai_halted"
                           for r in rs), 60, "the drawdown halt")
    halt = next(d for d in io.of("decisions.log.v1") if d["action"] == "ai_halted")
    assert "max_drawdown" in halt["rationale"]
    risk = json.loads(io.of("state.risk_config.v1")[-1]["config_json"])
    assert risk["ai_trading_enabled"] is False
    assert risk["last_halt_reason"] == "max_drawdown"
    assert verify_chain(ACCOUNT, io.of("decisions.log.v1")).ok


def test_no_idea_inside_a_high_impact_usd_blackout(io: Bus) -> None:
    start = minute_floor(now()) - timedelta(minutes=61)
    fresh_context(io, start + timedelta(minutes=60))
    release = start + timedelta(minutes=35)  # blackout: closes from +20 to +50 minutes
    io.send("calendar.events.v1", "USD", {
        "event_id": "usd-nfp", "event_time": release, "all_day": False, "currency": "USD",
        "impact": "high", "title": "Non-Farm Payrolls", "previous_raw": None,
        "forecast_raw": None, "actual_raw": None, "previous": None, "forecast": None,
        "actual": None, "source": "test", "captured_at": start})
    batch = feed(io, 60, start=start)
    io.wait(lambda rs: len(io.of("market.indicators.v1")) == 60, 60, "60 indicator records")
    io.wait(lambda rs: len(statuses(io, "pending_approval")) >= 10, 30, "ideas")

    def closes(c: dict) -> object:
        return c["open_time"] + timedelta(minutes=1)

    times = {s["idea"]["created_at"] for s in statuses(io, "pending_approval")}
    blackout = {closes(c) for c in batch
                if abs(closes(c) - release) <= timedelta(minutes=15)}
    assert blackout
    assert not (times & blackout)
    assert any(t < release - timedelta(minutes=15) for t in times)  # but before it
    assert any(t > release + timedelta(minutes=15) for t in times)  # and after it


def test_bad_records_go_to_dead_letters_and_the_pipeline_continues(
    io: Bus, catalog: Catalog
) -> None:
    start = minute_floor(now()) - timedelta(minutes=21)
    fresh_context(io, start + timedelta(minutes=20))
    io.producer.send_raw(catalog.name("market.candles.v1"), b"XAUUSD", b"\xc3\x01garbage")
    io.producer.send_raw(catalog.name("gate.inbox.v1"), ACCOUNT.encode(), b"not avro at all")
    # Decodes and validates, but its bundle cannot reproduce it: refused, not decided.
    bad_idea = {"account": ACCOUNT, "idea": factories.trade_idea(account=ACCOUNT),
                "bundle": factories.snapshot_bundle(account=ACCOUNT), "command": None}
    io.send("gate.inbox.v1", ACCOUNT, bad_idea)
    feed(io, 20, start=start)
    io.wait(lambda rs: len(statuses(io, "pending_approval")) >= 3, 60, "ideas after garbage")

    dlq = Bus(io.settings, catalog)
    dlq._consumer = None
    from confluent_kafka import Consumer

    from topics.bus import close_consumer, consumer_config
    consumer = Consumer(consumer_config(io.settings, f"{catalog.prefix}dlq-reader"))
    consumer.subscribe([catalog.dlq("market.candles.v1"), catalog.dlq("gate.inbox.v1")])
    letters = []
    import time
    deadline = time.monotonic() + 30
    while len(letters) < 3 and time.monotonic() < deadline:
        letters.extend(m for m in consumer.consume(10, 0.5) if m.error() is None)
    close_consumer(consumer, "dlq-reader")
    dlq.close()
    stages = sorted((m.topic().rsplit(".", 2)[-3], dict(m.headers())[
        "__connect.errors.stage"].decode()) for m in letters)
    assert len(letters) == 3, stages
    assert sorted(dict(m.headers())["__connect.errors.exception.class.name"].decode()
                  for m in letters) == ["CorruptRecord", "CorruptRecord", "StrategyError"]
    assert not any(d["trade_idea_id"] == "idea-1" for d in io.of("decisions.log.v1"))
