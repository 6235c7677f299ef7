"""The topic catalog: the only place that knows topic names, keys, partitions and retention.

Names say what the data is, lowercase and dotted, with a version suffix. Every
topic has a dead-letter topic `<name>.dlq` that receives the original bytes of
records that could not be decoded or processed, with `__connect.errors.*`
headers saying where they came from and why.

A `Catalog` may carry a prefix so that tests (and several deployments sharing a
cluster) get their own set of topics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from topics import validators as v
from topics.codec import AvroCodec, SchemaRegistry, default_registry

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    """One topic: what it carries, how it is keyed and how long it keeps data."""

    name: str
    value_schema: str
    key: str
    doc: str
    partitions: int = 3
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    #: the broker stamps each record with its append time (producers cannot set it)
    log_append_time: bool = False
    validator: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)

    @property
    def dlq(self) -> str:
        """Name of its dead-letter topic."""
        return f"{self.name}.dlq"

    def configs(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        conf = {"cleanup.policy": "compact" if self.compacted else "delete"}
        conf["retention.ms"] = str(self.retention_ms)
        if self.log_append_time:
            conf["message.timestamp.type"] = "LogAppendTime"
        return conf


def _spec(name: str, schema: str, key: str, doc: str, **kw: Any) -> TopicSpec:
    return TopicSpec(name=name, value_schema=schema, key=key, doc=doc, **kw)


TOPICS: tuple[TopicSpec, ...] = (
    _spec("market.candles.v1", "ai_trader.market.Candle", "symbol",
          "OHLCV bars from the market feeds.", partitions=6, validator=v.candle),
    _spec("market.indicators.v1", "ai_trader.market.IndicatorSnapshot", "symbol",
          "Indicator values per closed candle.", partitions=6, validator=v.indicator_snapshot),
    _spec("calendar.events.v1", "ai_trader.calendar.CalendarEvent", "currency",
          "Economic calendar releases.", partitions=1, retention_ms=90 * DAY_MS,
          validator=v.calendar_event),
    _spec("news.items.v1", "ai_trader.news.NewsItem", "source",
          "Headlines from news and RSS/Atom feeds.", partitions=1, retention_ms=30 * DAY_MS,
          validator=v.news_item),
    _spec("account.state.v1", "ai_trader.account.AccountState", "account",
          "Account snapshots from the active broker.", retention_ms=30 * DAY_MS,
          validator=v.account_state),
    _spec("gate.inbox.v1", "ai_trader.gate.GateInboxMessage", "account",
          "Ideas and control commands, one ordered stream per account.",
          # a command's freshness is judged at the time the broker appended it, the
          # same on every redelivery and replay (streams.gatekeeper.Book.on_command)
          retention_ms=FOREVER, log_append_time=True, validator=v.gate_inbox),
    _spec("snapshots.bundles.v1", "ai_trader.audit.SnapshotBundle", "account",
          "Frozen inputs of every idea (audit).", retention_ms=FOREVER,
          validator=v.with_times("captured_at")),
    _spec("decisions.log.v1", "ai_trader.audit.DecisionEvent", "account",
          "Append-only decision history; never compacted.", retention_ms=FOREVER,
          validator=v.with_times("occurred_at")),
    _spec("ideas.status.v1", "ai_trader.gate.IdeaStatus", "idea_id",
          "Latest status of every idea.", compacted=True, retention_ms=FOREVER,
          validator=v.with_times("changed_at")),
    _spec("orders.requests.v1", "ai_trader.orders.OrderRequest", "account",
          "Orders the gate allowed, keyed by account so they execute in order.",
          retention_ms=30 * DAY_MS, validator=v.order_request),
    _spec("orders.results.v1", "ai_trader.orders.OrderResult", "account",
          "What the broker did with each order request.", retention_ms=FOREVER,
          validator=v.with_times("executed_at")),
    _spec("control.replies.v1", "ai_trader.control.CommandReply", "account",
          "Replies to control commands, awaited by command id.",
          validator=v.with_times("replied_at")),
    _spec("broker.commands.v1", "ai_trader.control.ControlCommand", "account",
          "Commands for the broker service (refresh account).", partitions=1,
          validator=v.control_command),
    _spec("state.risk_config.v1", "ai_trader.control.RiskConfigState", "account",
          "Risk configuration as applied by the gate.", partitions=1, compacted=True,
          retention_ms=FOREVER, validator=v.with_times("updated_at")),
    _spec("state.strategies.v1", "ai_trader.control.StrategyState", "strategy_id",
          "Strategy definitions as applied by the pipeline.", partitions=1, compacted=True,
          retention_ms=FOREVER, validator=v.with_times("updated_at")),
    _spec("explanations.v1", "ai_trader.llm.Explanation", "account",
          "LLM-written explanations of ideas and decisions.", retention_ms=90 * DAY_MS,
          validator=v.with_times("created_at")),
    _spec("feeds.health.v1", "ai_trader.feeds.FeedHealth", "feed",
          "Health of every feed and connector.", partitions=1, compacted=True,
          retention_ms=FOREVER, validator=v.with_times("reported_at", "last_success")),
)

DLQ_RETENTION_MS = 30 * DAY_MS


class Catalog:
    """The topics of one deployment (or one test), with their codecs."""

    def __init__(self, prefix: str = "", registry: SchemaRegistry | None = None) -> None:
        self.prefix = prefix
        self.registry = registry or default_registry()
        self._specs = {spec.name: spec for spec in TOPICS}
        self._codecs: dict[str, AvroCodec] = {}

    def __iter__(self) -> Iterator[TopicSpec]:
        return iter(self._specs.values())

    def spec(self, logical: str) -> TopicSpec:
        """The declaration of a topic by its catalog name (without prefix)."""
        try:
            return self._specs[logical]
        except KeyError:
            raise KeyError(f"topic {logical!r} is not in the catalog") from None

    def name(self, logical: str) -> str:
        """The topic's name on the cluster."""
        return self.prefix + self.spec(logical).name

    def dlq(self, logical: str) -> str:
        """The dead-letter topic's name on the cluster."""
        return self.prefix + self.spec(logical).dlq

    def logical(self, physical: str) -> str:
        """The catalog name of a cluster topic name."""
        name = physical[len(self.prefix):] if physical.startswith(self.prefix) else physical
        self.spec(name)
        return name

    def codec(self, logical: str) -> AvroCodec:
        """The value codec of a topic (validated with the topic's own rules)."""
        codec = self._codecs.get(logical)
        if codec is None:
            spec = self.spec(logical)
            codec = AvroCodec(self.registry, spec.value_schema, spec.validator)
            self._codecs[logical] = codec
        return codec

    def physical_topics(self) -> dict[str, tuple[int, dict[str, str]]]:
        """Every topic and dead-letter topic to create: name -> (partitions, configs)."""
        out: dict[str, tuple[int, dict[str, str]]] = {}
        for spec in self:
            out[self.prefix + spec.name] = (spec.partitions, spec.configs())
            out[self.prefix + spec.dlq] = (
                1,
                {"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)},
            )
        return out


def encode_key(key: str) -> bytes:
    """Keys are raw UTF-8 so any client (and any language) partitions them alike."""
    return key.encode("utf-8")
