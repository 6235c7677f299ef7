"""Topic -> rows, without the stack: every topic routed, every row shaped like its table."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from sinks import tables
from sinks.routes import (
    IDEA_STATUS,
    ROUTES,
    DeadLetter,
    Record,
    blueprint_status,
    dead_letter_row,
    rows_of,
)
from tests import factories as f
from tests.connectors.factories import order_request
from tests.factories import T0
from tests.sinks import factories as sf
from topics.catalog import TOPICS, Catalog

SAMPLES: dict[str, dict[str, Any]] = {
    "market.candles.v1": f.candle(),
    "market.indicators.v1": f.indicator_snapshot(),
    "calendar.events.v1": f.calendar_event(),
    "news.items.v1": f.news_item(),
    "account.state.v1": f.account_state(),
    "gate.inbox.v1": sf.inbox_idea(),
    "snapshots.bundles.v1": f.snapshot_bundle(),
    "decisions.log.v1": sf.sealed_chain(1)[0],
    "ideas.status.v1": sf.idea_status(idea=f.trade_idea()),
    "orders.requests.v1": order_request(),
    "orders.results.v1": sf.order_result(),
    "control.replies.v1": sf.command_reply(),
    "broker.commands.v1": f.control_command(kind="refresh_account"),
    "state.risk_config.v1": sf.risk_config_state(),
    "state.strategies.v1": sf.strategy_state(),
    "explanations.v1": sf.explanation(),
    "feeds.health.v1": sf.feed_health(),
}

#: Python types binary COPY accepts for each wire type.
ACCEPTS: dict[str, tuple[type, ...]] = {
    "text": (str,), "float8": (float,), "int8": (int,), "int4": (int,), "bool": (bool,),
    "timestamptz": (datetime,), "numeric": (Decimal,), "bytea": (bytes,),
    "text[]": (list,), "float8[]": (list,),
}


def _record(topic: str, value: dict[str, Any]) -> Record:
    """Through the codec, as the sink sees it: decoded from the exact bytes."""
    raw = Catalog().codec(topic).encode(value)
    return Record(topic, 0, 7, Catalog().codec(topic).decode(raw), raw, T0)


def test_every_catalog_topic_has_routes() -> None:
    assert set(ROUTES) == {spec.name for spec in TOPICS}
    assert set(SAMPLES) == set(ROUTES)


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_rows_have_the_columns_and_types_of_their_table(topic: str) -> None:
    specs = {spec.table: spec for spec in tables.ALL}
    rows = rows_of(_record(topic, SAMPLES[topic]))
    assert rows, topic
    for table, row in rows:
        spec = specs[table]
        assert len(row) == len(spec.columns), table
        for (name, wire), value in zip(spec.columns, row, strict=True):
            if value is not None:
                assert isinstance(value, ACCEPTS[wire]), (table, name, value)
            if wire == "float8" and value is not None:
                assert not isinstance(value, bool)
        for name, value in zip(spec.names, row, strict=True):
            if name in spec.key:
                assert value is not None, (table, name)


def test_json_columns_hold_valid_json() -> None:
    rows = dict(rows_of(_record("decisions.log.v1", SAMPLES["decisions.log.v1"])))
    row = dict(zip(tables.DECISION_HISTORY.names, rows["decision_history"], strict=True))
    for name in ("confidence", "checks", "inputs", "gate_state"):
        json.loads(row[name])
    assert json.loads(row["checks"])[0]["detail"] == {"lots": "0.50", "cap": "1.00"}


def test_every_gate_idea_status_maps_to_the_blueprint_enum() -> None:
    contract = {"pending_approval", "auto_executing", "approved", "rejected_by_human",
                "rejected_by_risk", "halted_by_risk", "expired", "executed", "failed"}
    assert set(IDEA_STATUS) == contract
    assert set(IDEA_STATUS.values()) <= {
        "waiting", "needs_approval", "approved", "auto_executed", "rejected",
        "halted_by_risk", "expired", "executed", "execution_failed"}
    with pytest.raises(ValueError, match="unknown idea status 'teleported'"):
        blueprint_status("teleported")


def test_an_inbox_command_is_a_command_row_and_no_idea() -> None:
    rows = rows_of(_record("gate.inbox.v1", sf.inbox_command(command_id="c-9")))
    assert [(table, row[0]) for table, row in rows] == [("control_commands", "c-9")]


def test_a_later_status_without_the_idea_only_adds_history() -> None:
    rows = rows_of(_record("ideas.status.v1", sf.idea_status(status="executed")))
    assert [table for table, _ in rows] == ["idea_status_history"]
    assert rows[0][1][2:4] == ("executed", "executed")


def test_a_dead_letter_row_reads_the_kafka_connect_headers() -> None:
    letter = DeadLetter(
        "market.candles.v1.dlq", 0, 12, b"XAUUSD", b"\x00bad",
        [("trace", b"abc"), ("__connect.errors.topic", b"pfx.market.candles.v1"),
         ("__connect.errors.partition", b"3"), ("__connect.errors.offset", b"41"),
         ("__connect.errors.exception.class.name", b"CorruptRecord"),
         ("__connect.errors.exception.message", b"missing marker \xff"),
         ("__connect.errors.stage", b"decode"), ("__connect.errors.connector.name", b"gate")],
        T0)
    row = dead_letter_row(letter, lambda name: name.removeprefix("pfx."))
    named = dict(zip(tables.DEAD_LETTERS.names, row, strict=True))
    assert named["source_topic"] == "market.candles.v1"
    assert (named["source_partition"], named["source_offset"]) == (3, 41)
    assert (named["error_class"], named["stage"], named["consumer"]) == (
        "CorruptRecord", "decode", "gate")
    assert named["error_message"] == "missing marker \ufffd"
    assert named["value"] == b"\x00bad"
    assert json.loads(named["headers"])[0] == ["trace", "abc"]


def test_a_dead_letter_without_headers_keeps_its_bytes() -> None:
    row = dead_letter_row(DeadLetter("news.items.v1.dlq", 0, 0, None, b"x", [], T0), str)
    named = dict(zip(tables.DEAD_LETTERS.names, row, strict=True))
    assert named["source_topic"] is None
    assert named["value"] == b"x"


def test_table_specs_refuse_unknown_wire_types_and_keys() -> None:
    with pytest.raises(ValueError, match="unknown wire type"):
        tables.TableSpec("t", (("a", "jsonb"),), key=("a",))
    with pytest.raises(ValueError, match="b is not a column"):
        tables.TableSpec("t", (("a", "text"),), key=("b",))
