"""The bytes a decision's hash covers: `canonical_decision` writes them field by field
for speed; every hash already in a decision log was computed over the form built as one
structure and dumped (`reference` below, the implementation before 2026-12-02). A hash
chain outlives the code that wrote it, so the two must agree on every event."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import records
from streams.core.audit import HASHED_FIELDS, canonical_decision, decision_hash
from streams.core.gate import CheckResult

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The reference is a copy on purpose, helpers included: were it to import them from
# streams.core.audit, a change there would move the reference along with what it checks.


def _micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _decimal(value: Decimal) -> str:
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


def _canonical_json(value: Any) -> Any:
    if value is None:
        return None
    return _plain(json.loads(value) if isinstance(value, str) else value)


def reference(event: Mapping[str, Any]) -> bytes:
    out: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = event.get(name)
        if name.endswith("_json"):
            out[name] = _canonical_json(value)
        elif name == "checks":
            out[name] = [{"name": c["name"], "passed": bool(c["passed"]), "code": c["code"],
                          "detail_json": _canonical_json(c["detail_json"])} for c in value or ()]
        elif name == "inputs":
            out[name] = [{"topic": i["topic"], "partition": int(i["partition"]),
                          "offset": int(i["offset"])} for i in value or ()]
        else:
            out[name] = _plain(value)
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


texts = st.text(st.characters(codec="utf-8"), max_size=12)  # any character, escapes too
scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | texts
           | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(texts, inner, max_size=4), max_leaves=12)
# hypothesis takes naive bounds and attaches the time zone itself
times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                     timezones=st.just(UTC))
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4,
                       min_value=-10**9, max_value=10**9)
# What a *_json field holds: text as the gate writes it (sorted, compact, ASCII), text as
# a database gives it back (any order, spaces, raw unicode), or a parsed structure.
json_fields = st.one_of(
    st.none(),
    json_values.map(records.canonical),
    json_values.map(lambda v: json.dumps(v, indent=1, ensure_ascii=False)),
    st.dictionaries(texts, json_values | times | decimals, max_size=4),
)
checks = st.lists(st.fixed_dictionaries({
    "name": texts, "passed": st.booleans(), "code": texts, "detail_json": json_fields}),
    max_size=5)
inputs = st.lists(st.fixed_dictionaries({
    "topic": texts, "partition": st.integers(0, 64), "offset": st.integers(0, 2**62)}),
    max_size=4)
other = st.one_of(st.none(), texts, st.booleans(), times, decimals, st.integers(-5, 10**6))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        if draw(st.integers(0, 9)) == 0:
            continue  # a field left out reads as null
        if name.endswith("_json"):
            event[name] = draw(json_fields)
        elif name == "checks":
            event[name] = draw(checks)
        elif name == "inputs":
            event[name] = draw(inputs)
        else:
            event[name] = draw(other)
    return event


@settings(max_examples=600, deadline=None)
@given(events())
def test_the_hashed_bytes_are_those_of_the_reference_form(event: dict[str, Any]) -> None:
    assert canonical_decision(event) == reference(event)


def test_a_recorded_hash_still_verifies() -> None:
    # computed by the reference implementation (d5c0195 and before), stored in logs
    event = {
        "decision_id": "d-1", "account": "acct-1",
        "occurred_at": datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC),
        "symbol": "XAUUSD", "action": "ai_proposed", "outcome": "needs_approval",
        "rationale": "Gold pullback — RSI 38.2 < 40, “quoted” \\ tab\t",
        "confidence": Decimal("72.50"),
        "confidence_json": '{"score":"72.50","parts":{"b":1.5,"a":[1,2.25e-07,"x"]},'
                           '"note":"caf\\u00e9"}',
        "risk_check_result": "passed",
        "checks": [{"name": "lot_size", "passed": True, "code": "pass",
                    "detail_json": '{"lots":"0.10","cap":"1.00"}'},
                   {"name": "news", "passed": False, "code": "fail:news_blackout",
                    "detail_json": '{ "event" : "NFP", "at": "2026-12-04T13:30:00+00:00" }'}],
        "strategy_id": "s-1", "strategy_hash": "ab" * 32, "trade_idea_id": "i-1",
        "snapshot_ref": "snap-1", "command_id": None, "human_override": False, "issuer": None,
        "inputs": [{"topic": "market.candles.v1", "partition": 3, "offset": 41}],
        "risk_config_hash": "cd" * 32,
        "gate_state_json": '{"gate":{"kill":{"active":false}},"account":null,"z":1e400,'
                           '"n":NaN}',
        "code_version": "dev", "prev_hash": "ef" * 32,
    }
    assert decision_hash(event) == ("d711ece81461992c862025db7a0f9122"
                                    "0d84ddb57ede2990d1eb01d1fbc13a85")
    assert decision_hash({**event, "occurred_at": event["occurred_at"]
                          + timedelta(microseconds=1)}) != decision_hash(event)


@settings(max_examples=200, deadline=None)
@given(events(), st.text(max_size=9000))
def test_the_hash_is_the_sha256_of_the_canonical_bytes_whatever_their_length(
        event: dict[str, Any], rationale: str) -> None:
    # decision_hash feeds the digest in pieces (to keep the GIL): the same digest as one
    # pass over the bytes, across piece boundaries included
    event["rationale"] = rationale
    data = canonical_decision(event)
    assert decision_hash(event) == hashlib.sha256(data).hexdigest()


def test_a_long_decision_hashes_as_one_pass_over_its_bytes() -> None:
    event = {"decision_id": "d-long", "rationale": "x" * 2046 + "é" * 3000}
    data = canonical_decision(event)
    assert len(data) > 3 * 2047
    assert decision_hash(event) == hashlib.sha256(data).hexdigest()


_COMPARED = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(timezones=st.just(UTC)), st.dates(),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(), _COMPARED), max_size=6))
def test_a_checks_values_are_written_as_json_dumps_writes_them(
        compared: list[tuple[str, object]]) -> None:
    check = CheckResult("a_check", False, "reject", "a_reason", tuple(compared))
    expected = json.dumps(dict(check.values), sort_keys=True, separators=(",", ":"))
    assert check.detail_json() == expected
    assert json.loads(check.detail_json()) == dict(check.values)
    swapped = CheckResult("a_check", False, "reject", "a_reason", tuple(compared[::-1]))
    assert swapped.detail_json() == json.dumps(dict(swapped.values), sort_keys=True,
                                               separators=(",", ":"))


def test_a_checks_values_as_text() -> None:
    check = CheckResult("window", True, "reject", "r", (
        ("at", datetime(2026, 1, 5, tzinfo=UTC)), ("lots", Decimal("0.10")), ("n", 3),
        ("none", None), ("on", True), ("ttl", timedelta(minutes=15)), ("é", "ü")))
    assert check.detail_json() == (
        '{"at":"2026-01-05T00:00:00+00:00","lots":"0.10","n":"3","none":"null","on":"true",'
        '"ttl":"900s","\\u00e9":"\\u00fc"}')


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(), st.booleans(), st.text(),
                          st.lists(st.tuples(st.text(), _COMPARED), max_size=5)), max_size=6),
       events())
def test_the_gates_own_check_details_hash_as_any_other_text(
        drawn: list[tuple[str, bool, str, list[tuple[str, object]]]],
        event: dict[str, Any]) -> None:
    # what the gate seals: each check's detail as CheckResult.detail_json writes it
    # (gatekeeper._check_record), not parsed again where it is already canonical
    gate_checks = [CheckResult(name, passed, "reject", reason, tuple(compared))
                   for name, passed, reason, compared in drawn]
    event["checks"] = [{"name": c.name, "passed": c.passed, "code": c.code,
                        "detail_json": c.detail_json()} for c in gate_checks]
    assert canonical_decision(event, gate_written=True) == reference(event)
    assert decision_hash(event, gate_written=True) == decision_hash(event)
