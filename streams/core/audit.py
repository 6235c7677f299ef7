"""Tamper evidence for the decision log: a hash chain per account.

Every `DecisionEvent` carries `prev_hash` (the `hash` of the account's previous event,
null for the first) and `hash` = SHA-256 of the event's canonical form, `prev_hash`
included. Editing, removing or reordering any event breaks the chain after it.

The canonical form must come out the same from every place an event can be read back:
the record as the gate built it, the Avro record decoded from `decisions.log`, and the
row the sink stored (where `*_json` strings became JSONB and lost their key order and
whitespace). So:

- timestamps are integer microseconds since the epoch (UTC);
- decimals are their normalized plain string (`87.50` and `87.5` are the same);
- fields named `*_json` (and `detail_json` of each check) are parsed and re-serialized
  with sorted keys;
- the whole is JSON with sorted keys and no whitespace.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Every field of ai_trader.audit.DecisionEvent that the hash covers (all but `hash`).
HASHED_FIELDS = (
    "decision_id", "account", "occurred_at", "symbol", "action", "outcome", "rationale",
    "confidence", "confidence_json", "risk_check_result", "checks", "strategy_id",
    "strategy_hash", "trade_idea_id", "snapshot_ref", "command_id", "human_override",
    "issuer", "inputs", "risk_config_hash", "gate_state_json", "code_version", "prev_hash",
)


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime in a decision event")
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"non-finite decimal {value} in a decision event")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _micros(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_dumps = _ENCODER.encode
#: what `_dumps` writes for a string (its own fast path, without the method call)
_string = json.encoder.encode_basestring


def _scalar(value: Any) -> str | None:
    """`_dumps(value)` for text, null, booleans and integers (what most fields hold);
    None for anything else. The encoder builds its machinery on every call that is not
    a string: half the cost of a decision's canonical form was that, 20 times."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return None


def _json_text(value: str | Mapping[str, Any] | list[Any] | None) -> str:
    """A `*_json` field in canonical form. Parsed JSON holds only string keys and JSON
    values, which `_plain` would return unchanged: only a structure goes through it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _text_json(value)
    return _dumps(_plain(value))


@functools.lru_cache(maxsize=4096)
def _text_json(text: str) -> str:
    # The same texts come back event after event: most checks' values, the gate's state
    # between two changes of it.
    return _dumps(json.loads(text))


def _text_of(value: Any) -> str:
    text = _scalar(value)
    return _dumps(_plain(value)) if text is None else text


def _check_text(check: Mapping[str, Any], gate_written: bool = False) -> str:
    detail = check["detail_json"]
    # The gate's own detail text (`CheckResult.detail_json`) is canonical JSON with ASCII
    # escapes; where it has no \u escape it is its own canonical form: not parsed again.
    text = (detail if gate_written and type(detail) is str and "\\u" not in detail
            else _json_text(detail))
    return (f'{{"code":{_text_of(check["code"])},'
            f'"detail_json":{text},'
            f'"name":{_text_of(check["name"])},"passed":{"true" if check["passed"] else "false"}}}')


def _input_text(ref: Mapping[str, Any]) -> str:
    return (f'{{"offset":{int(ref["offset"])},"partition":{int(ref["partition"])},'
            f'"topic":{_text_of(ref["topic"])}}}')


_SORTED_FIELDS = tuple(sorted(HASHED_FIELDS))


def canonical_decision(event: Mapping[str, Any], *, gate_written: bool = False) -> bytes:
    """The bytes the hash is computed over: one JSON object, keys sorted, no whitespace.

    Written out field by field rather than built as one structure and dumped: the same
    bytes (tests/streams/core/test_audit_canonical.py holds the structure-and-dump form
    as the reference and compares on generated events), without re-walking every parsed
    `*_json` value in Python, which was most of the gate's cost per decision.

    `gate_written`: the checks' `detail_json` texts are those `CheckResult.detail_json`
    wrote (the gate sealing its own event), so most need no parsing; any other source
    (a log read back, a database row) leaves it False."""
    parts = []
    for name in _SORTED_FIELDS:
        value = event.get(name)
        if name.endswith("_json"):
            text = _json_text(value)
        elif name == "checks":
            text = "[" + ",".join([_check_text(c, gate_written) for c in value or ()]) + "]"
        elif name == "inputs":
            text = "[" + ",".join(_input_text(i) for i in value or ()) + "]"
        else:
            text = _text_of(_micros(value) if type(value) is datetime else value)
        parts.append(f'"{name}":{text}')
    return ("{" + ",".join(parts) + "}").encode()


#: hashlib releases the GIL while it hashes more than 2,047 bytes at once (as its
#: documentation says); a decision's canonical form is ~5 KB. Hashing it takes ~4 us, but
#: handing the GIL over cost the gate its turn: the worker's other threads (faust's
#: consumer, the delivery reports) took it and the gate waited for it back. py-spy on
#: `bench_pipeline.py`, 2026-12-03: 2.5-3.8 % of the event loop thread's samples on that
#: line, none once the hash is fed in pieces that keep the GIL.
_GIL_KEPT_BELOW = 2048


def decision_hash(event: Mapping[str, Any], *, gate_written: bool = False) -> str:
    """SHA-256 (hex) of the event's canonical form; `event["prev_hash"]` is part of it."""
    data = memoryview(canonical_decision(event, gate_written=gate_written))
    digest = hashlib.sha256()
    step = _GIL_KEPT_BELOW - 1
    for at in range(0, len(data), step):
        digest.update(data[at:at + step])
    return digest.hexdigest()


def seal(event: Mapping[str, Any], prev_hash: str | None, *,
         gate_written: bool = False) -> dict[str, Any]:
    """The event linked to its predecessor: `prev_hash` and `hash` filled in
    (`gate_written`: see `canonical_decision`)."""
    sealed = dict(event)
    sealed["prev_hash"] = prev_hash
    sealed["hash"] = decision_hash(sealed, gate_written=gate_written)
    return sealed


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a chain does not hold."""

    account: str
    decision_id: str | None
    problem: str

    def describe(self) -> str:
        where = f"decision {self.decision_id}" if self.decision_id else "chain"
        return f"account {self.account}: {where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What walking one account's chain found."""

    account: str
    verified: int
    head: str | None
    first_break: ChainBreak | None
    redelivered: int = 0  # byte-identical copies of an event (at-least-once delivery)

    @property
    def ok(self) -> bool:
        return self.first_break is None


def verify_chain(account: str, events: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Walk an account's events from the first (`prev_hash` null) by following the links.

    The events may come in any order (database rows sorted by time tie on equal
    timestamps); the chain itself gives the order. A topic delivers at least once, so an
    event seen again byte for byte (same hash) is one event, counted in `redelivered`.
    Reported, first found wins: an event whose content does not match its hash (edited),
    two different events claiming the same predecessor (fork), a link to a hash that no
    event has (missing event), and events left over that the chain never reaches.
    """
    by_prev: dict[str | None, Mapping[str, Any]] = {}
    total = redelivered = 0
    for event in events:
        ident = str(event.get("decision_id"))
        if decision_hash(event) != event.get("hash"):
            return ChainReport(account, 0, None, ChainBreak(
                account, ident, "content does not match its hash (edited after it was written)"))
        prev = event.get("prev_hash")
        if prev in by_prev and by_prev[prev].get("hash") == event.get("hash"):
            redelivered += 1
            continue
        total += 1
        if prev in by_prev:
            other = by_prev[prev].get("decision_id")
            return ChainReport(account, 0, None, ChainBreak(
                account, ident, f"same predecessor {prev} as decision {other} (fork)"))
        by_prev[prev] = event
    verified, head = 0, None
    while head in by_prev:
        head = str(by_prev[head]["hash"])
        verified += 1
    if verified < total:
        hashes = {e.get("hash") for e in by_prev.values()}
        dangling = sorted(str(e.get("decision_id")) for p, e in by_prev.items()
                          if p is not None and p not in hashes)
        if None not in by_prev:
            problem = "no first event (prev_hash null): the start of the chain is missing"
        else:
            problem = (f"{total - verified} event(s) not reachable from the start of the "
                       "chain: the event before them is missing")
        return ChainReport(account, verified, head,
                           ChainBreak(account, next(iter(dangling), None), problem),
                           redelivered)
    return ChainReport(account, verified, head, None, redelivered)
