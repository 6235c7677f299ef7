"""From a closed candle to a trade idea with its frozen snapshot bundle.

`propose` matches a strategy against the live context; on a match it freezes the
inputs into a SnapshotBundle record and then derives the idea *from the bundle alone*
(`from_bundle`). The gate and `replay --verify` call `from_bundle` too, so an idea that
reaches the gate is by construction reproducible from its bundle: a bundle that missed
an input would fail here, live, rather than years later in an audit.
"""

from __future__ import annotations

import functools
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from streams import records
from streams.core.confidence import ConfidenceResult, ScoreInputs, score_confidence
from streams.core.ids import uuid5_text
from streams.core.model import TradeIdea
from streams.core.strategy import (
    EvaluationContext,
    NoMatch,
    Strategy,
    decision_time,
    evaluate,
    parse_strategy_json,
)

SNAPSHOT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ai-trader.local/snapshots")
#: Calendar events frozen into a bundle: wider than any blackout a strategy can ask for.
CALENDAR_BEFORE = timedelta(hours=6)
CALENDAR_AFTER = timedelta(hours=36)
NEWS_WINDOW = timedelta(hours=24)
NEWS_MAX = 20


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What the strategy agent knows besides the candle, as bus records."""

    account_id: str
    code_version: str
    calendar: Sequence[Mapping[str, Any]] = ()
    calendar_last_success: datetime | None = None
    news: Sequence[Mapping[str, Any]] = ()
    account: Mapping[str, Any] | None = None
    #: latest IndicatorSnapshot record per (symbol, timeframe)
    latest: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    #: where each input came from: logical topic -> (partition, offset) of the last record
    positions_of_inputs: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Proposal:
    """A matched idea, its score, and the records to publish."""

    idea: TradeIdea
    strategy: Strategy
    confidence: ConfidenceResult
    idea_record: dict[str, Any]
    bundle: dict[str, Any]


class BundleMismatch(RuntimeError):
    """The idea re-derived from its bundle differs from the live one: an input is missing."""


@functools.lru_cache(maxsize=512)
def strategy_from_json(text: str) -> Strategy:
    """Parse (and schema-validate) a strategy definition once per distinct text.

    Validation costs about a millisecond and the same few definitions arrive with every
    bundle; a Strategy is immutable, so sharing one is safe.
    """
    return parse_strategy_json(text)


def snapshot_id_for(idea_id: str) -> str:
    """One bundle per idea, with an id derived from the idea's."""
    return uuid5_text(SNAPSHOT_NAMESPACE, idea_id)


def higher_timeframes(strategy: Strategy) -> tuple[str, ...]:
    """The timeframes a strategy's conditions read besides the candle's own."""
    out = []
    for cond in (*strategy.conditions, *strategy.nice_to_have):
        if cond.name == "higher_timeframe_trend" and isinstance(cond.param, Mapping):
            out.append(str(cond.param.get("timeframe")))
    return tuple(dict.fromkeys(out))


def _calendar_window(events: Iterable[Mapping[str, Any]], at: datetime) -> list[dict[str, Any]]:
    low, high = at - CALENDAR_BEFORE, at + CALENDAR_AFTER
    kept = [dict(e) for e in events if low <= e["event_time"] <= high]
    return sorted(kept, key=lambda e: (e["event_time"], e["currency"], e["title"]))


def _news_window(items: Iterable[Mapping[str, Any]], at: datetime) -> list[dict[str, Any]]:
    kept = [dict(n) for n in items if at - NEWS_WINDOW <= n["published_at"] <= at]
    kept.sort(key=lambda n: (n["published_at"], n["item_id"]), reverse=True)
    return kept[:NEWS_MAX]


def _context(
    calendar: Sequence[Mapping[str, Any]], last_success: datetime | None,
    higher: Mapping[str, Mapping[str, Any]], snapshot_ref: str | None,
) -> EvaluationContext:
    return EvaluationContext(
        calendar=records.calendar(calendar, last_success),
        higher_timeframes={tf: records.indicators(r) for tf, r in higher.items()},
        snapshot_ref=snapshot_ref,
    )


def propose(
    strategy: Strategy,
    candle: Mapping[str, Any],
    indicators: Mapping[str, Any],
    ctx: MarketContext,
) -> Proposal | None:
    """Evaluate one strategy on one closed candle; on a match, freeze and derive."""
    values = records.indicators(indicators)
    at = decision_time(values)
    higher = {
        tf: ctx.latest[(values.symbol, tf)]
        for tf in higher_timeframes(strategy) if (values.symbol, tf) in ctx.latest
    }
    calendar = _calendar_window(ctx.calendar, at)
    live = evaluate(strategy, values, _context(calendar, ctx.calendar_last_success, higher, None))
    if isinstance(live, NoMatch):
        return None
    snapshot_id = snapshot_id_for(live.idea.idea_id)
    bundle = {
        "snapshot_id": snapshot_id,
        "account": ctx.account_id,
        "symbol": values.symbol,
        "timeframe": values.timeframe,
        "captured_at": at,
        "candle": dict(candle),
        "indicators": dict(indicators),
        "higher_timeframe": dict(next(iter(higher.values()))) if higher else None,
        "calendar": calendar,
        "calendar_last_success": ctx.calendar_last_success,
        "news": _news_window(ctx.news, at),
        "account_state": dict(ctx.account) if ctx.account is not None else None,
        "strategy_id": strategy.strategy_id,
        "strategy_version": strategy.version,
        "strategy_hash": strategy.definition_hash,
        "strategy_json": strategy.canonical_json,
        "inputs": [
            {"topic": t, "partition": p, "offset": o}
            for t, (p, o) in sorted(ctx.positions_of_inputs.items())
        ],
        "code_version": ctx.code_version,
    }
    proposal = from_bundle(bundle)
    if isinstance(proposal, NoMatch) or proposal.idea.idea_id != live.idea.idea_id:
        raise BundleMismatch(f"bundle {snapshot_id} does not reproduce idea {live.idea.idea_id}")
    return proposal


def from_bundle(bundle: Mapping[str, Any]) -> Proposal | NoMatch:
    """The idea and confidence that a bundle's inputs give: the single derivation path."""
    strategy = strategy_from_json(bundle["strategy_json"])
    values = records.indicators(bundle["indicators"])
    higher_record = bundle.get("higher_timeframe")
    higher = {higher_record["timeframe"]: higher_record} if higher_record else {}
    ctx = _context(bundle["calendar"], bundle.get("calendar_last_success"), higher,
                   bundle["snapshot_id"])
    result = evaluate(strategy, values, ctx)
    if isinstance(result, NoMatch):
        return result
    account = (records.account(bundle["account_state"])
               if bundle.get("account_state") is not None else None)
    confidence = score_confidence(result.idea, strategy, ScoreInputs(
        indicators=values, now=result.idea.created_at, context=ctx, account=account,
        positions=account.positions if account is not None else (),
    ))
    idea_record = records.idea_record(
        result.idea, bundle["account"], confidence.score,
        records.canonical(confidence.to_dict()),
    )
    return Proposal(result.idea, strategy, confidence, idea_record, dict(bundle))


def confidence_score(record: Mapping[str, Any]) -> Decimal:
    """The confidence carried by a TradeIdea record."""
    return Decimal(record["confidence"])


class Derived(NamedTuple):
    """An idea as the market agent sent it: its gate-inbox message and its derivation."""

    message: dict[str, Any]
    proposal: Proposal


class Derivations:
    """The ideas this process derived, by the exact bytes of the gate-inbox record that
    carries each one: the gate, reading those bytes back, takes the message and its
    derivation instead of decoding the record and running `from_bundle` a second time
    (about 40 + 80 us an idea, a tenth of the worker's time in a burst of ideas).

    Sound because both are pure functions of the bytes: the bytes are the encoding of
    that message, and the codec's round trip is lossless (`replay --verify` depends on it
    already; `tests/reliability/world.py` checks it on every idea it draws), so decoding
    them gives that message back and deriving its bundle gives that proposal. Any other
    record (another worker's, a redelivered one, one written by hand) is decoded and
    derived as before. Kept for the last `capacity` ideas only: where the gate's
    partition is another worker's, the entries are never taken and simply age out.
    """

    __slots__ = ("_capacity", "_by_bytes")

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._by_bytes: OrderedDict[bytes, Derived] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_bytes)

    def put(self, inbox_record: bytes, message: dict[str, Any], proposal: Proposal) -> None:
        """`inbox_record` is `message` encoded; `proposal` is what its bundle derives."""
        self._by_bytes[inbox_record] = Derived(message, proposal)
        if len(self._by_bytes) > self._capacity:
            self._by_bytes.popitem(last=False)

    def take(self, inbox_record: bytes | None) -> Derived | None:
        """The message and derivation sent as exactly these bytes, once; else None."""
        if inbox_record is None:
            return None
        return self._by_bytes.pop(inbox_record, None)
