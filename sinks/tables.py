"""The tables the sinks write: their columns as staged, their keys and merge rules.

Rows reach a table in two steps (sinks/writer.py): a binary COPY into a temporary staging
table whose columns have the *wire* types below (what the Python values are: `float8`
for Avro doubles, `numeric` for decimals, `text` for JSON text and enum labels), then
one `INSERT ... SELECT` that casts each column to the real table's type and resolves
conflicts on the table's natural key or event id:

- `newer == ()`: events. `ON CONFLICT DO NOTHING`: re-delivery never duplicates a row.
- `newer != ()`: latest-state tables (compacted topics, re-sent forming candles).
  `ON CONFLICT DO UPDATE ... WHERE (stored newer) <= (incoming newer)`, and only when
  something differs, so an old record re-delivered after a new one changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Wire types a staging column may have; psycopg dumps Python values to them in binary.
WIRE_TYPES = frozenset({"text", "float8", "int8", "int4", "bool", "timestamptz", "numeric",
                        "bytea", "text[]", "float8[]"})


@dataclass(frozen=True)
class TableSpec:
    """One table as the sinks see it."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (column, wire type), in row order
    key: tuple[str, ...]                   # ON CONFLICT target
    newer: tuple[str, ...] = ()            # version columns of latest-state tables

    def __post_init__(self) -> None:
        names = self.names
        for _, wire in self.columns:
            if wire not in WIRE_TYPES:
                raise ValueError(f"{self.table}: unknown wire type {wire}")
        for col in (*self.key, *self.newer):
            if col not in names:
                raise ValueError(f"{self.table}: {col} is not a column")

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in row order."""
        return tuple(name for name, _ in self.columns)

    @property
    def upsert(self) -> bool:
        """True for latest-state tables."""
        return bool(self.newer)


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """`"a:text b:int8"` -> (("a", "text"), ("b", "int8")): keeps declarations readable."""
    out = []
    for item in spec.split():
        name, _, wire = item.partition(":")
        out.append((name, wire))
    return tuple(out)


SNAPSHOT_MARKET = TableSpec(
    "snapshot_market",
    _cols("symbol:text timeframe:text open_time:timestamptz open:float8 high:float8 "
          "low:float8 close:float8 volume:int8 spread:float8 source:text closed:bool "
          "captured_at:timestamptz"),
    key=("symbol", "timeframe", "open_time"),
    newer=("closed",),  # a closed bar replaces a forming one, never the reverse
)

SNAPSHOT_INDICATORS = TableSpec(
    "snapshot_indicators",
    _cols("symbol:text timeframe:text open_time:timestamptz close:float8 rsi_14:float8 "
          "sma_50:float8 sma_200:float8 macd:text atr:float8 pct_move_today:float8 "
          "spread:float8 values:text captured_at:timestamptz"),
    key=("symbol", "timeframe", "open_time"),
)

SNAPSHOT_CALENDAR = TableSpec(
    "snapshot_calendar",
    _cols("event_id:text event_time:timestamptz currency:text impact_level:text title:text "
          "previous_value:text forecast_value:text actual_value:text previous_num:float8 "
          "forecast_num:float8 actual_num:float8 all_day:bool source:text "
          "captured_at:timestamptz"),
    key=("event_id", "event_time", "captured_at"),
)

SNAPSHOT_NEWS = TableSpec(
    "snapshot_news",
    _cols("item_id:text headline:text source:text url:text summary:text symbols:text[] "
          "currencies:text[] published_at:timestamptz captured_at:timestamptz"),
    key=("item_id", "published_at"),
)

SNAPSHOT_ACCOUNT = TableSpec(
    "snapshot_account",
    _cols("account:text broker:text currency:text balance:numeric equity:numeric "
          "margin_used:numeric margin_free:numeric open_pl:numeric realized_pl_today:numeric "
          "open_positions:int4 positions:text reconciled:bool captured_at:timestamptz"),
    key=("account", "captured_at"),
)

SNAPSHOT_BUNDLES = TableSpec(
    "snapshot_bundles",
    _cols("snapshot_id:text account:text symbol:text timeframe:text strategy_id:text "
          "strategy_version:int4 strategy_hash:text captured_at:timestamptz bundle:text "
          "raw:bytea"),
    key=("snapshot_id",),
)

TRADE_IDEAS = TableSpec(
    "trade_ideas",
    _cols("id:text account:text symbol:text timeframe:text direction:text entry_price:float8 "
          "entry_range:float8[] stop_loss:float8 take_profit:float8[] lot_size:numeric "
          "expected_hold:text rationale:text rationale_bullets:text[] "
          "confidence_score:numeric confidence:text status:text pipeline_status:text "
          "status_reason:text decision_id:text strategy_id:text strategy_version:int4 "
          "strategy_hash:text snapshot_ref:text expires_at:timestamptz "
          "created_at:timestamptz updated_at:timestamptz"),
    key=("id",),
)

IDEA_STATUS_HISTORY = TableSpec(
    "idea_status_history",
    _cols("idea_id:text account:text pipeline_status:text status:text reason:text "
          "decision_id:text changed_at:timestamptz source_partition:int4 source_offset:int8"),
    key=("idea_id", "pipeline_status", "changed_at"),
)

DECISION_HISTORY = TableSpec(
    "decision_history",
    _cols("id:text account:text occurred_at:timestamptz symbol:text action:text outcome:text "
          "rationale:text confidence_score:numeric confidence:text risk_check_result:text "
          "checks:text strategy_id:text strategy_hash:text trade_idea_id:text "
          "snapshot_ref:text command_id:text human_override:bool issuer:text inputs:text "
          "risk_config_hash:text gate_state:text code_version:text prev_hash:text hash:text "
          "source_topic:text source_partition:int4 source_offset:int8 raw:bytea"),
    key=("id", "occurred_at"),
)

STRATEGIES = TableSpec(
    "strategies",
    _cols("id:text name:text version:int4 is_active:bool allowed_symbols:text[] "
          "session_windows:text entry_conditions:text exit_rules:text "
          "forbidden_conditions:text risk_caps:text rr_expectation:numeric definition:text "
          "definition_hash:text updated_by:text updated_at:timestamptz"),
    key=("id",),
    newer=("version", "updated_at"),
)

STRATEGY_VERSIONS = TableSpec(
    "strategy_versions",
    _cols("strategy_id:text version:int4 definition:text definition_hash:text "
          "updated_by:text updated_at:timestamptz"),
    key=("strategy_id", "version"),
)

RISK_CONFIG = TableSpec(
    "risk_config",
    _cols("account:text ai_trading_enabled:bool min_confidence_threshold:numeric "
          "max_lot_size:numeric max_concurrent_trades:int4 daily_profit_target:numeric "
          "stop_after_target:bool max_drawdown_amount:numeric halt_on_drawdown:bool "
          "allow_off_watchlist_autotrade:bool last_halt_reason:text config:text "
          "config_hash:text version:int8 updated_by:text updated_at:timestamptz"),
    key=("account",),
    newer=("version", "updated_at"),
)

ORDER_REQUESTS = TableSpec(
    "order_requests",
    _cols("request_id:text idea_id:text decision_id:text account:text symbol:text "
          "direction:text order_type:text lot_size:numeric price:float8 stop_loss:float8 "
          "take_profit:float8[] strategy_id:text human_override:bool "
          "requested_at:timestamptz expires_at:timestamptz"),
    key=("request_id",),
)

ORDER_RESULTS = TableSpec(
    "order_results",
    _cols("request_id:text idea_id:text account:text status:text broker:text "
          "broker_order_id:int8 broker_deal_id:int8 position_ticket:int8 filled_price:float8 "
          "filled_volume:numeric retcode:int4 error_code:text message:text "
          "executed_at:timestamptz"),
    key=("request_id", "status", "executed_at"),
)

CONTROL_COMMANDS = TableSpec(
    "control_commands",
    _cols("command_id:text kind:text account:text issuer:text issued_at:timestamptz "
          "idea_id:text strategy_id:text lot_size:numeric reason:text payload:text"),
    key=("command_id",),
)

COMMAND_REPLIES = TableSpec(
    "command_replies",
    _cols("command_id:text account:text kind:text status:text reason:text result:text "
          "replied_at:timestamptz"),
    key=("command_id",),
)

EXPLANATIONS = TableSpec(
    "explanations",
    _cols("explanation_id:text subject_kind:text subject_id:text account:text status:text "
          "text:text model:text error:text prompt_tokens:int4 completion_tokens:int4 "
          "created_at:timestamptz"),
    key=("explanation_id",),
)

FEED_HEALTH = TableSpec(
    "feed_health",
    _cols("feed:text status:text last_success:timestamptz last_error:text "
          "last_error_at:timestamptz items_total:int8 dead_letters_total:int8 "
          "reported_at:timestamptz"),
    key=("feed",),
    newer=("reported_at",),
)

DEAD_LETTERS = TableSpec(
    "dead_letters",
    _cols("dlq_topic:text dlq_partition:int4 dlq_offset:int8 source_topic:text "
          "source_partition:int4 source_offset:int8 error_class:text error_message:text "
          "stage:text consumer:text key:bytea value:bytea headers:text "
          "received_at:timestamptz"),
    key=("dlq_topic", "dlq_partition", "dlq_offset"),
)

#: Every table, in the order a flush writes them (ideas before their status history).
ALL: tuple[TableSpec, ...] = (
    SNAPSHOT_MARKET, SNAPSHOT_INDICATORS, SNAPSHOT_CALENDAR, SNAPSHOT_NEWS, SNAPSHOT_ACCOUNT,
    SNAPSHOT_BUNDLES, STRATEGIES, STRATEGY_VERSIONS, RISK_CONFIG, TRADE_IDEAS,
    IDEA_STATUS_HISTORY, DECISION_HISTORY, ORDER_REQUESTS, ORDER_RESULTS, CONTROL_COMMANDS,
    COMMAND_REPLIES, EXPLANATIONS, FEED_HEALTH, DEAD_LETTERS,
)

#: SQL run after the tables of a flush are merged, when one of the named tables got rows.
#: trade_ideas.status follows the latest entry of idea_status_history (and decision_id the
#: latest one that names a decision), whichever topic (gate.inbox with the idea,
#: ideas.status with its statuses) was consumed first.
IDEA_STATUS_SQL = """
UPDATE trade_ideas AS t
SET status = h.status::trade_idea_status,
    pipeline_status = h.pipeline_status,
    status_reason = h.reason,
    decision_id = COALESCE(h.decision_id, t.decision_id),
    updated_at = h.changed_at
FROM (
    SELECT DISTINCT ON (idea_id) idea_id, status, pipeline_status, reason, changed_at,
           (SELECT d.decision_id FROM idea_status_history AS d
            WHERE d.idea_id = s.idea_id AND d.decision_id IS NOT NULL
            ORDER BY d.changed_at DESC, d.source_offset DESC LIMIT 1) AS decision_id
    FROM idea_status_history AS s
    WHERE idea_id IN (SELECT idea_id FROM _stage_idea_status_history
                      UNION SELECT id FROM _stage_trade_ideas)
    ORDER BY idea_id, changed_at DESC, source_offset DESC
) AS h
WHERE t.id = h.idea_id
  AND (t.pipeline_status, t.status_reason, t.decision_id, t.updated_at)
      IS DISTINCT FROM (h.pipeline_status, h.reason,
                        COALESCE(h.decision_id, t.decision_id), h.changed_at)
"""

FINALIZERS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"trade_ideas", "idea_status_history"}), IDEA_STATUS_SQL),
)
