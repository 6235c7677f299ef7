"""The sink on the real bus and database: every topic lands in its table, idempotently."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from sinks.audit import verify_database
from tests import factories as f
from tests.connectors.factories import order_request
from tests.factories import T0
from tests.sinks import factories as sf
from tests.sinks.conftest import count, fetch, lag_of, publish, running_sink, wait_for
from topics.bus import BusProducer
from topics.catalog import Catalog
from topics.settings import Settings

#: One record for every catalog topic, and the table (and count) it must produce.
ONE_OF_EACH = [
    ("market.candles.v1", "XAUUSD", f.candle(), "snapshot_market"),
    ("market.indicators.v1", "XAUUSD", f.indicator_snapshot(), "snapshot_indicators"),
    ("calendar.events.v1", "USD", f.calendar_event(), "snapshot_calendar"),
    ("news.items.v1", "test", f.news_item(), "snapshot_news"),
    ("account.state.v1", "paper-1", f.account_state(), "snapshot_account"),
    ("gate.inbox.v1", "paper-1", sf.inbox_idea("idea-inbox"), "trade_ideas"),
    ("gate.inbox.v1", "paper-1", sf.inbox_command(command_id="cmd-inbox"), "control_commands"),
    ("snapshots.bundles.v1", "paper-1", f.snapshot_bundle(), "snapshot_bundles"),
    ("decisions.log.v1", "paper-1", sf.sealed_chain(1)[0], "decision_history"),
    ("ideas.status.v1", "idea-1",
     sf.idea_status("idea-1", idea=f.trade_idea(idea_id="idea-1")), "idea_status_history"),
    ("orders.requests.v1", "paper-1", order_request(request_id="idea-1"), "order_requests"),
    ("orders.results.v1", "paper-1", sf.order_result(), "order_results"),
    ("control.replies.v1", "paper-1", sf.command_reply(), "command_replies"),
    ("broker.commands.v1", "paper-1",
     f.control_command(command_id="cmd-broker", kind="refresh_account"), "control_commands"),
    ("state.risk_config.v1", "paper-1", sf.risk_config_state(), "risk_config"),
    ("state.strategies.v1", "gold", sf.strategy_state(), "strategies"),
    ("explanations.v1", "paper-1", sf.explanation(), "explanations"),
    ("feeds.health.v1", "calendar", sf.feed_health(), "feed_health"),
]


def _publish_each(settings: Settings, catalog: Catalog) -> None:
    producer = BusProducer(settings, catalog)
    for topic, key, record, _ in ONE_OF_EACH:
        producer.send(topic, key, record)
    producer.flush()


def test_every_topic_lands_in_its_table(bus: Settings, catalog: Catalog,
                                        sink_db: Settings) -> None:
    _publish_each(bus, catalog)
    with running_sink(sink_db, catalog):
        wait_for("every table written", lambda: all(
            count(sink_db, table) > 0 for _, _, _, table in ONE_OF_EACH))
        wait_for("the strategy versions", lambda: count(sink_db, "strategy_versions") == 1)
    assert count(sink_db, "control_commands") == 2
    assert count(sink_db, "trade_ideas") == 2  # from the inbox and from the first status
    assert count(sink_db, "dead_letters") == 0
    candle = fetch(sink_db, "SELECT open, close, volume, closed, source, spread FROM"
                            " snapshot_market")[0]
    assert candle == (2380.0, 2380.5, 100, True, "test", 0.3)  # the doubles as sent
    ideas = dict(fetch(sink_db, "SELECT id, status::text || '/' || coalesce(pipeline_status, '')"
                                " FROM trade_ideas"))
    assert ideas == {"idea-inbox": "waiting/", "idea-1": "needs_approval/pending_approval"}
    risk = fetch(sink_db, "SELECT daily_profit_target, max_lot_size, config -> 'kill_switch'"
                          " ->> 'active', version FROM risk_config")[0]
    assert risk == (None, Decimal("1.00"), "false", 1)
    strategy = fetch(sink_db, "SELECT name, allowed_symbols, rr_expectation, is_active"
                              " FROM strategies")[0]
    assert strategy == ("Gold Pullback Buy", ["XAUUSD"], Decimal("2.00"), True)
    bundle_raw = fetch(sink_db, "SELECT raw FROM snapshot_bundles")[0][0]
    assert catalog.codec("snapshots.bundles.v1").decode(bytes(bundle_raw))["snapshot_id"] == \
        "snap-1"
    account = fetch(sink_db, "SELECT balance, open_positions, positions -> 0 ->> 'ticket'"
                             " FROM snapshot_account")[0]
    assert account == (Decimal("12000.00"), 1, "1001")
    assert verify_database(sink_db).ok


def test_redelivery_from_offset_zero_with_a_new_group_duplicates_nothing(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    _publish_each(bus, catalog)
    publish(bus, catalog, "market.candles.v1", [(c["symbol"], c) for c in f.random_candles(300)])
    publish(bus, catalog, "decisions.log.v1",
            [("paper-1", e) for e in sf.sealed_chain(20, start=5)])
    tables = sorted({table for _, _, _, table in ONE_OF_EACH}
                    | {"strategy_versions", "dead_letters", "snapshot_market"})

    def counts() -> dict[str, int]:
        return {table: count(sink_db, table) for table in tables}

    with running_sink(sink_db, catalog) as first:
        wait_for("the first group to catch up", lambda: lag_of(
            bus, catalog, first.config.group_id, "market.candles.v1") == 0
            and count(sink_db, "snapshot_market") == 300)  # i=0 is ONE_OF_EACH's candle
        wait_for("decisions", lambda: count(sink_db, "decision_history") == 21)
    before = counts()
    with running_sink(sink_db, catalog) as second:  # a new group: everything again from 0
        wait_for("the second group to catch up", lambda: sum(
            x.lag for x in second.lag()) == 0, timeout=60)
        consumed = sum(v for v in _samples(second, "sink_records_consumed_total"))
        written = sum(v for v in _samples(second, "sink_rows_written_total"))
    assert counts() == before
    assert consumed == 300 + 20 + len(ONE_OF_EACH)
    assert written == 0  # every row was already there: nothing inserted, nothing updated


def _samples(service: object, name: str) -> list[float]:
    registry = service.metrics.registry  # type: ignore[attr-defined]
    return [s.value for m in registry.collect() for s in m.samples if s.name == name]


def test_state_topics_keep_the_latest_and_every_strategy_version(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    v1, v2 = sf.strategy_state(1), sf.strategy_state(2, is_active=False)
    # the old version re-delivered after the new one (a producer retry, a replay)
    publish(bus, catalog, "state.strategies.v1", [("gold", v1), ("gold", v2), ("gold", v1)])
    r1, r2 = sf.risk_config_state(1), sf.risk_config_state(2, config={"max_lot_size": "0.50"})
    publish(bus, catalog, "state.risk_config.v1", [("paper-1", r2), ("paper-1", r1)])
    h_old = sf.feed_health(status="ok", reported_at=T0)
    h_new = sf.feed_health(status="stale", reported_at=T0 + timedelta(minutes=5))
    publish(bus, catalog, "feeds.health.v1", [("calendar", h_new), ("calendar", h_old)])
    with running_sink(sink_db, catalog, max_batch=1):  # one record per transaction
        wait_for("feed health", lambda: count(sink_db, "feed_health") == 1
                 and count(sink_db, "strategy_versions") == 2
                 and count(sink_db, "risk_config") == 1)
        wait_for("all consumed", lambda: count(sink_db, "sink_lag", "lag = 0") > 0)
    assert fetch(sink_db, "SELECT version, is_active FROM strategies") == [(2, False)]
    assert fetch(sink_db, "SELECT version FROM strategy_versions ORDER BY 1") == [(1,), (2,)]
    assert fetch(sink_db, "SELECT version, max_lot_size FROM risk_config") == \
        [(2, Decimal("0.50"))]
    assert fetch(sink_db, "SELECT status FROM feed_health") == [("stale",)]


def test_latest_state_wins_inside_one_batch(bus: Settings, catalog: Catalog,
                                            sink_db: Settings) -> None:
    states = [sf.strategy_state(v) for v in (1, 3, 2)]
    publish(bus, catalog, "state.strategies.v1", [("gold", s) for s in states])
    with running_sink(sink_db, catalog, linger_seconds=2.0):
        wait_for("three versions", lambda: count(sink_db, "strategy_versions") == 3)
    assert fetch(sink_db, "SELECT version FROM strategies") == [(3,)]


def test_a_forming_candle_is_replaced_by_its_close_never_the_reverse(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    forming = f.candle(0, close=2380.1, closed=False)
    later = f.candle(0, close=2380.2, closed=False)
    closed = f.candle(0, close=2380.4, closed=True)
    publish(bus, catalog, "market.candles.v1",
            [("XAUUSD", forming), ("XAUUSD", later), ("XAUUSD", closed), ("XAUUSD", forming)])
    with running_sink(sink_db, catalog, max_batch=1) as sink:
        wait_for("all consumed", lambda: lag_of(
            bus, catalog, sink.config.group_id, "market.candles.v1") == 0)
    assert fetch(sink_db, "SELECT close, closed FROM snapshot_market") == \
        [(2380.4, True)]


def test_idea_status_follows_the_latest_whichever_topic_comes_first(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    idea = f.trade_idea(idea_id="idea-9")
    first = sf.idea_status("idea-9", "pending_approval", idea=idea, changed_at=T0)
    approved = sf.idea_status("idea-9", "approved", decision_id="dec-a",
                              changed_at=T0 + timedelta(minutes=1))
    executed = sf.idea_status("idea-9", "executed", reason="filled",
                              changed_at=T0 + timedelta(minutes=2))
    # statuses before the inbox message that carries the idea
    publish(bus, catalog, "ideas.status.v1", [("idea-9", approved), ("idea-9", executed)])
    with running_sink(sink_db, catalog) as sink:
        wait_for("history", lambda: count(sink_db, "idea_status_history") == 2)
        publish(bus, catalog, "gate.inbox.v1", [("paper-1", sf.inbox_idea("idea-9"))])
        wait_for("the idea", lambda: count(sink_db, "trade_ideas") == 1)
        publish(bus, catalog, "ideas.status.v1", [("idea-9", first)])  # late and old
        wait_for("all consumed", lambda: lag_of(
            bus, catalog, sink.config.group_id, "ideas.status.v1") == 0
            and count(sink_db, "idea_status_history") == 3)
    row = fetch(sink_db, "SELECT status::text, pipeline_status, status_reason, decision_id,"
                         " updated_at FROM trade_ideas")[0]
    assert row == ("executed", "executed", "filled", "dec-a", T0 + timedelta(minutes=2))


def test_bad_records_go_to_dead_letters_and_the_rest_is_written(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    producer = BusProducer(bus, catalog)
    producer.send_raw(catalog.name("market.candles.v1"), b"XAUUSD", b"not avro at all")
    # valid Avro and valid for the topic, but PostgreSQL text cannot hold a NUL
    producer.send("market.candles.v1", "XAUUSD", f.candle(1, source="feed\x00"))
    for i in range(2, 6):
        producer.send("market.candles.v1", "XAUUSD", f.candle(i))
    producer.flush()
    with running_sink(sink_db, catalog, linger_seconds=1.0):
        wait_for("two dead letters", lambda: count(sink_db, "dead_letters") == 2)
        wait_for("the good candles", lambda: count(sink_db, "snapshot_market") == 4)
    rows = fetch(sink_db, "SELECT dlq_topic, source_topic, source_offset, stage, error_class"
                          " FROM dead_letters ORDER BY source_offset")
    assert [r[:4] for r in rows] == [
        ("market.candles.v1.dlq", "market.candles.v1", 0, "decode"),
        ("market.candles.v1.dlq", "market.candles.v1", 1, "sink"),
    ]
    assert rows[1][4] == "CharacterNotInRepertoire"


def test_decision_rows_keep_every_field_of_the_event(bus: Settings, catalog: Catalog,
                                                     sink_db: Settings) -> None:
    chain = sf.sealed_chain(3, account="acc-a") + sf.sealed_chain(2, account="acc-b")
    publish(bus, catalog, "decisions.log.v1", [(e["account"], e) for e in chain])
    with running_sink(sink_db, catalog):
        wait_for("decisions", lambda: count(sink_db, "decision_history") == 5)
    report = verify_database(sink_db)
    assert [(r.account, r.verified, r.ok) for r in report.reports] == [
        ("acc-a", 3, True), ("acc-b", 2, True)]
    row = fetch(sink_db, "SELECT gate_state, checks -> 0 -> 'detail', inputs, raw FROM"
                         " decision_history WHERE id = %s", (chain[0]["decision_id"],))[0]
    assert row[0] == json.loads(chain[0]["gate_state_json"])
    assert row[1] == {"lots": "0.50", "cap": "1.00"}
    assert row[2] == [{"topic": "market.candles.v1", "partition": 0, "offset": 40}]
    assert catalog.codec("decisions.log.v1").decode(bytes(row[3]))["hash"] == chain[0]["hash"]


@pytest.mark.parametrize("method", ["copy", "executemany"])
def test_both_write_methods_store_the_same_rows(bus: Settings, catalog: Catalog,
                                                sink_db: Settings, method: str) -> None:
    candles = f.random_candles(50)
    publish(bus, catalog, "market.candles.v1", [(c["symbol"], c) for c in candles])
    with running_sink(sink_db, catalog, method=method):
        wait_for("candles", lambda: count(sink_db, "snapshot_market") == 50)
    got = fetch(sink_db, "SELECT symbol, open_time, close FROM snapshot_market"
                         " ORDER BY open_time")
    assert got == [(c["symbol"], c["open_time"], c["close"]) for c in candles]


def test_the_sink_commits_offsets_only_for_what_it_wrote(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    group = f"sink-{uuid.uuid4().hex[:8]}"
    publish(bus, catalog, "news.items.v1",
            [("test", f.news_item(item_id=f"n-{i}")) for i in range(7)])
    assert lag_of(bus, catalog, group, "news.items.v1") == 7
    with running_sink(sink_db, catalog, group_id=group):
        wait_for("news", lambda: count(sink_db, "snapshot_news") == 7)
        wait_for("lag 0", lambda: lag_of(bus, catalog, group, "news.items.v1") == 0)


def test_two_sinks_in_one_group_share_the_partitions_and_lose_nothing(
        bus: Settings, catalog: Catalog, sink_db: Settings) -> None:
    group = f"sink-{uuid.uuid4().hex[:8]}"
    candles = f.random_candles(6000, seed=3, symbols=("XAUUSD", "EURUSD", "US30", "GBPUSD",
                                                      "USDJPY", "BTCUSD"))
    publish(bus, catalog, "market.candles.v1", [(c["symbol"], c) for c in candles[:3000]])
    with running_sink(sink_db, catalog, group_id=group, max_batch=100):
        wait_for("the first rows", lambda: count(sink_db, "snapshot_market") > 0)
        with running_sink(sink_db, catalog, group_id=group, max_batch=100):  # a rebalance
            publish(bus, catalog, "market.candles.v1",
                    [(c["symbol"], c) for c in candles[3000:]])
            wait_for("every row", lambda: count(sink_db, "snapshot_market") == 6000)
            wait_for("lag 0", lambda: lag_of(bus, catalog, group, "market.candles.v1") == 0)
    assert count(sink_db, "snapshot_market") == 6000
