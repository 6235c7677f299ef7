"""Which rows each topic's records become: one small function per (topic, table).

`ROUTES[logical topic]` lists the routes of a topic; a route turns one decoded record
into zero or more rows of one table (tuples in the order of `TableSpec.columns`). A
builder raising (a missing field, JSON that does not parse) dead-letters the record
with stage `transform`; nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sinks import tables as t

Row = tuple[Any, ...]


class Record(NamedTuple):
    """One consumed record: where it came from, its decoded value and its exact bytes.

    A NamedTuple (not a frozen dataclass): one is built per record on the hot path.
    """

    topic: str              # logical topic name (catalog name, no prefix)
    partition: int
    offset: int
    value: dict[str, Any]
    raw: bytes
    timestamp: datetime     # the Kafka record timestamp (when it was produced)


Builder = Callable[[Record], Iterable[Row]]


@dataclass(frozen=True)
class Route:
    """Rows for one table from one topic's records."""

    table: t.TableSpec
    build: Builder


def to_json(value: Any) -> str:
    """JSON text of a decoded record: datetimes ISO 8601, decimals as exact strings."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dec(value: Any) -> Decimal | None:
    """A numeric column from a JSON number/string or an Avro decimal."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    return Decimal(str(value))


# ---------------------------------------------------------------------------- market data


def candle_rows(r: Record) -> Iterable[Row]:
    """market.candles -> snapshot_market (captured = when the feed produced it)."""
    v = r.value
    return ((v["symbol"], v["timeframe"], v["open_time"], v["open"], v["high"], v["low"],
             v["close"], v["volume"], v["spread"], v["source"], v["closed"], r.timestamp),)


def indicator_rows(r: Record) -> Iterable[Row]:
    """market.indicators -> snapshot_indicators; every value also kept in `values`."""
    v = r.value
    macd = None
    if v["macd"] is not None:
        macd = to_json({"macd": v["macd"], "signal": v["macd_signal"], "hist": v["macd_hist"],
                        "prev_hist": v["prev_macd_hist"]})
    return ((v["symbol"], v["timeframe"], v["open_time"], v["close"], v["rsi_14"], v["sma_50"],
             v["sma_200"], macd, v["atr_14"], v["pct_move_today"], v["spread"], to_json(v),
             r.timestamp),)


def calendar_rows(r: Record) -> Iterable[Row]:
    """calendar.events -> snapshot_calendar (an updated actual is a new capture)."""
    v = r.value
    return ((v["event_id"], v["event_time"], v["currency"], v["impact"], v["title"],
             v["previous_raw"], v["forecast_raw"], v["actual_raw"], v["previous"],
             v["forecast"], v["actual"], v["all_day"], v["source"], v["captured_at"]),)


def news_rows(r: Record) -> Iterable[Row]:
    """news.items -> snapshot_news."""
    v = r.value
    return ((v["item_id"], v["headline"], v["source"], v["url"], v["summary"],
             list(v["symbols"]), list(v["currencies"]), v["published_at"], v["captured_at"]),)


def account_rows(r: Record) -> Iterable[Row]:
    """account.state -> snapshot_account, positions as JSON."""
    v = r.value
    return ((v["account"], v["broker"], v["currency"], v["balance"], v["equity"],
             v["margin_used"], v["margin_free"], v["open_pl"], v["realized_pl_today"],
             len(v["positions"]), to_json(v["positions"]), v["reconciled"], v["captured_at"]),)


# ---------------------------------------------------------------------- ideas and bundles

#: ideas.status.v1 status -> the blueprint's trade_idea_status (pipeline_status keeps the
#: exact one).
IDEA_STATUS = {
    "pending_approval": "needs_approval",
    "auto_executing": "auto_executed",
    "approved": "approved",
    "rejected_by_human": "rejected",
    "rejected_by_risk": "rejected",
    "halted_by_risk": "halted_by_risk",
    "expired": "expired",
    "executed": "executed",
    "failed": "execution_failed",
}


def blueprint_status(pipeline_status: str) -> str:
    """The trade_idea_status of a pipeline status; unknown statuses are refused."""
    try:
        return IDEA_STATUS[pipeline_status]
    except KeyError:
        raise ValueError(f"unknown idea status {pipeline_status!r}") from None


def _idea_row(idea: dict[str, Any], pipeline_status: str | None, reason: str | None,
              decision_id: str | None, changed_at: datetime) -> Row:
    status = "waiting" if pipeline_status is None else blueprint_status(pipeline_status)
    low, high = idea["entry_low"], idea["entry_high"]
    entry_range = [low, high] if low is not None and high is not None else None
    return (idea["idea_id"], idea["account"], idea["symbol"], idea["timeframe"],
            idea["direction"], idea["entry_price"], entry_range, idea["stop_loss"],
            list(idea["take_profit"]), idea["lot_size"], idea["expected_hold"],
            idea["rationale"], list(idea["rationale_bullets"]), idea["confidence"],
            idea["confidence_json"], status, pipeline_status, reason, decision_id,
            idea["strategy_id"], idea["strategy_version"], idea["strategy_hash"],
            idea["snapshot_id"], idea["expires_at"], idea["created_at"], changed_at)


def inbox_idea_rows(r: Record) -> Iterable[Row]:
    """gate.inbox idea -> trade_ideas, `waiting` until the gate publishes a status."""
    idea = r.value["idea"]
    if idea is None:
        return ()
    return (_idea_row(idea, None, None, None, idea["created_at"]),)


def status_idea_rows(r: Record) -> Iterable[Row]:
    """ideas.status carrying the idea (its first status) -> trade_ideas."""
    v = r.value
    if v["idea"] is None:
        return ()
    return (_idea_row(v["idea"], v["status"], v["reason"], v["decision_id"], v["changed_at"]),)


def status_history_rows(r: Record) -> Iterable[Row]:
    """ideas.status -> idea_status_history (every status of every idea)."""
    v = r.value
    return ((v["idea_id"], v["account"], v["status"], blueprint_status(v["status"]),
             v["reason"], v["decision_id"], v["changed_at"], r.partition, r.offset),)


def bundle_rows(r: Record) -> Iterable[Row]:
    """snapshots.bundles -> snapshot_bundles with the exact Avro bytes for replay."""
    v = r.value
    return ((v["snapshot_id"], v["account"], v["symbol"], v["timeframe"], v["strategy_id"],
             v["strategy_version"], v["strategy_hash"], v["captured_at"], to_json(v), r.raw),)


# ----------------------------------------------------------------------------- decisions


def _check(check: dict[str, Any]) -> dict[str, Any]:
    return {"name": check["name"], "passed": check["passed"], "code": check["code"],
            "detail": json.loads(check["detail_json"])}


def decision_rows(r: Record) -> Iterable[Row]:
    """decisions.log -> decision_history, every DecisionEvent field kept (audit chain)."""
    v = r.value
    checks = to_json([_check(c) for c in v["checks"]])
    inputs = to_json([{"topic": i["topic"], "partition": i["partition"], "offset": i["offset"]}
                      for i in v["inputs"]])
    return ((v["decision_id"], v["account"], v["occurred_at"], v["symbol"], v["action"],
             v["outcome"], v["rationale"], v["confidence"], v["confidence_json"],
             v["risk_check_result"], checks, v["strategy_id"], v["strategy_hash"],
             v["trade_idea_id"], v["snapshot_ref"], v["command_id"], v["human_override"],
             v["issuer"], inputs, v["risk_config_hash"], v["gate_state_json"],
             v["code_version"], v["prev_hash"], v["hash"], r.topic, r.partition, r.offset,
             r.raw),)


# ------------------------------------------------------------------- configuration state


def strategy_rows(r: Record) -> Iterable[Row]:
    """state.strategies -> strategies (latest version wins)."""
    v = r.value
    d = json.loads(v["definition_json"])
    return ((v["strategy_id"], d["name"], v["version"], v["is_active"],
             list(d["allowed_symbols"]), to_json(d["session_windows"]),
             to_json(d["entry_conditions"]), to_json(d["exit_rules"]),
             to_json(d["forbidden_conditions"]), to_json(d["risk_caps"]),
             _dec(d["rr_expectation"]), v["definition_json"], v["definition_hash"],
             v["updated_by"], v["updated_at"]),)


def strategy_version_rows(r: Record) -> Iterable[Row]:
    """state.strategies -> strategy_versions (every version ever applied)."""
    v = r.value
    return ((v["strategy_id"], v["version"], v["definition_json"], v["definition_hash"],
             v["updated_by"], v["updated_at"]),)


def risk_config_rows(r: Record) -> Iterable[Row]:
    """state.risk_config -> risk_config; the full JSON (kill switch included) in `config`."""
    v = r.value
    c = json.loads(v["config_json"])
    return ((v["account"], bool(c.get("ai_trading_enabled", False)),
             _dec(c.get("min_confidence_threshold", "90")), _dec(c["max_lot_size"]),
             int(c["max_concurrent_trades"]), _dec(c.get("daily_profit_target")),
             bool(c.get("stop_after_target", True)), _dec(c["max_drawdown_amount"]),
             bool(c.get("halt_on_drawdown", True)),
             bool(c.get("allow_off_watchlist_autotrade", False)), c.get("last_halt_reason"),
             v["config_json"], v["config_hash"], v["version"], v["updated_by"],
             v["updated_at"]),)


def feed_health_rows(r: Record) -> Iterable[Row]:
    """feeds.health -> feed_health (latest report wins)."""
    v = r.value
    return ((v["feed"], v["status"], v["last_success"], v["last_error"], v["last_error_at"],
             v["items_total"], v["dead_letters_total"], v["reported_at"]),)


# ---------------------------------------------------------------- orders and commands


def order_request_rows(r: Record) -> Iterable[Row]:
    """orders.requests -> order_requests."""
    v = r.value
    return ((v["request_id"], v["idea_id"], v["decision_id"], v["account"], v["symbol"],
             v["direction"], v["order_type"], v["lot_size"], v["price"], v["stop_loss"],
             list(v["take_profit"]), v["strategy_id"], v["human_override"],
             v["requested_at"], v["expires_at"]),)


def order_result_rows(r: Record) -> Iterable[Row]:
    """orders.results -> order_results."""
    v = r.value
    return ((v["request_id"], v["idea_id"], v["account"], v["status"], v["broker"],
             v["broker_order_id"], v["broker_deal_id"], v["position_ticket"],
             v["filled_price"], v["filled_volume"], v["retcode"], v["error_code"],
             v["message"], v["executed_at"]),)


def _command_row(c: dict[str, Any]) -> Row:
    return (c["command_id"], c["kind"], c["account"], c["issuer"], c["issued_at"],
            c["idea_id"], c["strategy_id"], c["lot_size"], c["reason"], c["payload_json"])


def inbox_command_rows(r: Record) -> Iterable[Row]:
    """gate.inbox command -> control_commands (the signature is not stored)."""
    command = r.value["command"]
    return () if command is None else (_command_row(command),)


def broker_command_rows(r: Record) -> Iterable[Row]:
    """broker.commands -> control_commands."""
    return (_command_row(r.value),)


def reply_rows(r: Record) -> Iterable[Row]:
    """control.replies -> command_replies (one per command id; duplicates ignored)."""
    v = r.value
    return ((v["command_id"], v["account"], v["kind"], v["status"], v["reason"],
             v["result_json"], v["replied_at"]),)


def explanation_rows(r: Record) -> Iterable[Row]:
    """explanations -> explanations."""
    v = r.value
    return ((v["explanation_id"], v["subject_kind"], v["subject_id"], v["account"],
             v["status"], v["text"], v["model"], v["error"], v["prompt_tokens"],
             v["completion_tokens"], v["created_at"]),)


ROUTES: dict[str, tuple[Route, ...]] = {
    "market.candles.v1": (Route(t.SNAPSHOT_MARKET, candle_rows),),
    "market.indicators.v1": (Route(t.SNAPSHOT_INDICATORS, indicator_rows),),
    "calendar.events.v1": (Route(t.SNAPSHOT_CALENDAR, calendar_rows),),
    "news.items.v1": (Route(t.SNAPSHOT_NEWS, news_rows),),
    "account.state.v1": (Route(t.SNAPSHOT_ACCOUNT, account_rows),),
    "gate.inbox.v1": (Route(t.TRADE_IDEAS, inbox_idea_rows),
                      Route(t.CONTROL_COMMANDS, inbox_command_rows)),
    "snapshots.bundles.v1": (Route(t.SNAPSHOT_BUNDLES, bundle_rows),),
    "decisions.log.v1": (Route(t.DECISION_HISTORY, decision_rows),),
    "ideas.status.v1": (Route(t.TRADE_IDEAS, status_idea_rows),
                        Route(t.IDEA_STATUS_HISTORY, status_history_rows)),
    "orders.requests.v1": (Route(t.ORDER_REQUESTS, order_request_rows),),
    "orders.results.v1": (Route(t.ORDER_RESULTS, order_result_rows),),
    "control.replies.v1": (Route(t.COMMAND_REPLIES, reply_rows),),
    "broker.commands.v1": (Route(t.CONTROL_COMMANDS, broker_command_rows),),
    "state.risk_config.v1": (Route(t.RISK_CONFIG, risk_config_rows),),
    "state.strategies.v1": (Route(t.STRATEGIES, strategy_rows),
                            Route(t.STRATEGY_VERSIONS, strategy_version_rows)),
    "explanations.v1": (Route(t.EXPLANATIONS, explanation_rows),),
    "feeds.health.v1": (Route(t.FEED_HEALTH, feed_health_rows),),
}


_BUILDERS: dict[str, tuple[tuple[str, Builder], ...]] = {
    topic: tuple((route.table.table, route.build) for route in routes)
    for topic, routes in ROUTES.items()
}


def rows_of(record: Record) -> list[tuple[str, Row]]:
    """Every (table, row) a record becomes."""
    return rows_by(_BUILDERS[record.topic], record)


def builders(topic: str) -> tuple[tuple[str, Builder], ...]:
    """(table, builder) of every route of a logical topic (KeyError when it has none)."""
    return _BUILDERS[topic]


def rows_by(routes: tuple[tuple[str, Builder], ...], record: Record) -> list[tuple[str, Row]]:
    """The (table, row) pairs `routes` make of a record (plain loops: per-record hot path)."""
    out = []
    for table, build in routes:
        for row in build(record):
            out.append((table, row))
    return out


# ---------------------------------------------------------------------------- dead letters

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a `<topic>.dlq` topic, as the bus put it there."""

    topic: str                # logical DLQ name, e.g. market.candles.v1.dlq
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]
    timestamp: datetime


def _header_text(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8", "replace")


def dead_letter_row(d: DeadLetter, logical: Callable[[str], str]) -> Row:
    """A `.dlq` record -> dead_letters; `logical` strips the deployment's topic prefix."""
    texts = [(name, _header_text(value)) for name, value in d.headers]
    found = dict(texts)  # the last header of a name wins, as Kafka Connect reads them
    source = found.get("__connect.errors.topic")
    partition = found.get("__connect.errors.partition")
    offset = found.get("__connect.errors.offset")
    return (d.topic, d.partition, d.offset, logical(source) if source else None,
            int(partition) if partition and partition.lstrip("-").isdigit() else None,
            int(offset) if offset and offset.lstrip("-").isdigit() else None,
            found.get("__connect.errors.exception.class.name"),
            found.get("__connect.errors.exception.message"),
            found.get("__connect.errors.stage"), found.get("__connect.errors.connector.name"),
            d.key, d.value, to_json([[name, text] for name, text in texts]), d.timestamp)
