"""Strategy definitions: the shipped examples validate, malformed ones are refused with paths."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.strategy import (
    SCHEMA,
    Strategy,
    StrategyError,
    canonical_json,
    definition_hash,
    parse_strategy,
    parse_strategy_json,
)
from tests.streams.core.decision_factories import (
    EXAMPLES,
    STRATEGIES_DIR,
    example_definition,
    strategy_dict,
    with_path,
    without_path,
)


def _errors(definition: object) -> tuple[tuple[str, str], ...]:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(definition)
    return caught.value.errors


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("name", EXAMPLES)
def test_shipped_example_strategy_validates(name: str) -> None:
    parsed = parse_strategy(example_definition(name))

    assert parsed.definition_hash == definition_hash(example_definition(name))


def test_every_json_file_in_strategies_is_a_shipped_example() -> None:
    assert sorted(p.stem for p in STRATEGIES_DIR.glob("*.json")) == sorted(EXAMPLES)


def test_blueprint_gold_pullback_buy_is_shipped_with_its_rules() -> None:
    gold = parse_strategy(example_definition("gold_pullback_buy"))

    assert gold.name == "Gold Pullback Buy"
    assert gold.allowed_symbols == ("XAUUSD",)
    assert gold.direction == "buy"
    assert {c.name: c.param for c in gold.conditions}["rsi_below"] == 40
    assert gold.news.block_minutes == 5
    assert gold.news.currencies == frozenset({"USD"})
    assert gold.exit.expected_hold == "scalp_30m"


def test_schema_forbids_additional_properties_on_every_object() -> None:
    def objects(node: Any) -> list[dict[str, Any]]:
        found = []
        if isinstance(node, dict):
            if node.get("type") == "object":
                found.append(node)
            for value in node.values():
                found += objects(value)
        elif isinstance(node, list):
            for value in node:
                found += objects(value)
        return found

    schemas = objects(SCHEMA)

    assert len(schemas) >= 9
    assert all(schema.get("additionalProperties") is False for schema in schemas)


# ---------------------------------------------------------------------- malformed


def test_rsi_out_of_range_is_refused_with_its_json_path() -> None:
    errors = _errors(with_path(strategy_dict(), "entry_conditions.rsi_below", 140))

    assert errors == (("$.entry_conditions.rsi_below", "140 is greater than the maximum of 100"),)


MALFORMED = [
    ("unknown top-level field", with_path(strategy_dict(), "colour", "red"), "$", "'colour'"),
    ("unknown condition", with_path(strategy_dict(), "entry_conditions.rsi_under", 30),
     "$.entry_conditions", "'rsi_under' was unexpected"),
    ("id is not a uuid", strategy_dict(id="gold-1"), "$.id", "does not match"),
    ("version zero", strategy_dict(version=0), "$.version", "less than the minimum of 1"),
    ("version is a bool", strategy_dict(version=True), "$.version", "not of type 'integer'"),
    ("missing exit rules", without_path(strategy_dict(), "exit_rules"), "$",
     "'exit_rules' is a required property"),
    ("no symbols", strategy_dict(allowed_symbols=[]), "$.allowed_symbols", "should be non-empty"),
    ("bad clock", with_path(strategy_dict(), "session_windows.0.start", "7:00"),
     "$.session_windows[0].start", "does not match"),
    ("bad day", with_path(strategy_dict(), "session_windows.0.days", ["Funday"]),
     "$.session_windows[0].days[0]", "'Funday' is not one of"),
    ("unknown timezone", with_path(strategy_dict(), "session_windows.0",
                                   {"start": "07:00", "end": "11:00", "days": ["Mon"],
                                    "tz": "Mars/Olympus"}),
     "$.session_windows[0].tz", "unknown IANA timezone 'Mars/Olympus'"),
    ("Z time with another tz", with_path(strategy_dict(), "session_windows.0.tz",
                                         "Europe/London"),
     "$.session_windows[0]", "'Z' times are UTC"),
    ("empty window", with_path(strategy_dict(), "session_windows.0.end", "07:00Z"),
     "$.session_windows[0]", "start equals end"),
    ("no session", strategy_dict(session_windows=[]), "$.session_windows", "non-empty"),
    ("direction missing", without_path(strategy_dict(), "entry_conditions.direction"),
     "$.entry_conditions", "'direction' is a required property"),
    ("only a direction", with_path(strategy_dict(), "entry_conditions", {"direction": "buy"}),
     "$.entry_conditions", "at least one condition"),
    ("contradictory rsi", with_path(strategy_dict(), "entry_conditions.rsi_above", 60),
     "$.entry_conditions", "rsi_above (60) and rsi_below (40) can never both hold"),
    ("bad higher timeframe", with_path(
        strategy_dict(), "entry_conditions.nice_to_have.higher_timeframe_trend.timeframe", "H2"),
     "$.entry_conditions.nice_to_have.higher_timeframe_trend.timeframe", "'H2' is not one of"),
    ("atr stop without multiple", with_path(strategy_dict(), "exit_rules.stop_loss",
                                            {"type": "atr"}),
     "$.exit_rules.stop_loss", "'multiple' is a required property"),
    ("atr stop with a swing offset", with_path(strategy_dict(), "exit_rules.stop_loss",
                                               {"type": "atr", "multiple": 1, "offset": 1}),
     "$.exit_rules.stop_loss.offset", "not used by a 'atr' stop"),
    ("decreasing take-profits", with_path(strategy_dict(), "exit_rules.take_profit_rr", [3, 2]),
     "$.exit_rules.take_profit_rr", "strictly increasing"),
    ("no take-profit", with_path(strategy_dict(), "exit_rules.take_profit_rr", []),
     "$.exit_rules.take_profit_rr", "non-empty"),
    ("lowercase currency", with_path(
        strategy_dict(), "forbidden_conditions.blocked_symbols_during_news", ["usd"]),
     "$.forbidden_conditions.blocked_symbols_during_news[0]", "does not match"),
    ("negative news window", with_path(
        strategy_dict(), "forbidden_conditions.block_high_impact_news_minutes", -5),
     "$.forbidden_conditions.block_high_impact_news_minutes", "less than the minimum of 0"),
    ("lot above its cap", with_path(strategy_dict(), "risk_caps.lot_size", 2),
     "$.risk_caps.lot_size", "greater than max_lot_size"),
    ("cap below the lot step", with_path(strategy_dict(), "risk_caps",
                                         {"max_lot_size": 0.001, "max_concurrent_positions": 1}),
     "$.risk_caps.max_lot_size", "below the lot step"),
    ("not finite", with_path(strategy_dict(), "entry_conditions.rsi_below", float("nan")),
     "$.entry_conditions.rsi_below", "not a finite number"),
    ("not JSON", with_path(strategy_dict(), "rr_expectation", {1, 2}),
     "$.rr_expectation", "set is not a JSON value"),
    ("not an object", ["a", "list"], "$", "is not of type 'object'"),
    ("null", None, "$", "is not of type 'object'"),
]


@pytest.mark.parametrize(
    ("definition", "path", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_strategy_is_refused_with_the_json_path(
    definition: object, path: str, fragment: str
) -> None:
    errors = _errors(definition)

    assert any(p == path and fragment in message for p, message in errors), errors


def test_every_problem_is_reported_at_once_sorted_by_path() -> None:
    broken = with_path(strategy_dict(version=0), "entry_conditions.rsi_below", 140)

    errors = _errors(broken)

    assert [path for path, _ in errors] == ["$.entry_conditions.rsi_below", "$.version"]


def test_error_message_joins_path_and_message() -> None:
    with pytest.raises(StrategyError, match=r"\$\.version: 0 is less than the minimum of 1"):
        parse_strategy(strategy_dict(version=0))


def test_nan_literal_in_json_text_is_refused() -> None:
    text = json.dumps(strategy_dict()).replace('"rsi_below": 40', '"rsi_below": NaN')

    with pytest.raises(StrategyError, match="NaN is not valid JSON"):
        parse_strategy_json(text)


def test_broken_json_text_is_refused() -> None:
    with pytest.raises(StrategyError, match="not valid JSON"):
        parse_strategy_json('{"id": ')


def test_deeply_nested_value_is_refused_without_recursion_error() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]

    definition = strategy_dict()
    definition["name"] = deep

    errors = _errors(definition)

    assert errors[0][0].startswith("$.name")


# ------------------------------------------------------------------------------ hash


def test_definition_hash_is_sha256_of_the_canonical_json() -> None:
    definition = strategy_dict()

    expected = hashlib.sha256(canonical_json(definition).encode()).hexdigest()

    assert parse_strategy(definition).definition_hash == expected


def test_definition_hash_ignores_key_order_and_integral_float_spelling() -> None:
    definition = strategy_dict()
    reordered = dict(reversed(list(strategy_dict(rr_expectation=2).items())))

    assert definition_hash(definition) == definition_hash(reordered)


def test_definition_hash_changes_with_any_rule() -> None:
    changed = with_path(strategy_dict(), "entry_conditions.rsi_below", 39)

    assert definition_hash(changed) != definition_hash(strategy_dict())


# ------------------------------------------------------------------------- property


def _parse_or_error(value: object) -> Strategy | StrategyError:
    """Anything other than a Strategy or a StrategyError propagates and fails the test."""
    try:
        return parse_strategy(value)
    except StrategyError as error:
        return error


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
VALID = strategy_dict()
PATHS = [
    "id", "name", "version", "is_active", "allowed_symbols", "allowed_symbols.0",
    "session_windows", "session_windows.0", "session_windows.0.start", "session_windows.0.days",
    "entry_conditions", "entry_conditions.direction", "entry_conditions.rsi_below",
    "entry_conditions.nice_to_have", "exit_rules.stop_loss", "exit_rules.stop_loss.type",
    "exit_rules.take_profit_rr", "exit_rules.time_limit_minutes", "forbidden_conditions",
    "risk_caps.max_lot_size", "risk_caps.lot_size", "rr_expectation",
]


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_any_json_value_is_refused_or_parsed_never_crashes(value: object) -> None:
    outcome = _parse_or_error(value)

    assert isinstance(outcome, Strategy) or outcome.errors


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(PATHS), value=JSON_VALUES)
def test_a_mutated_valid_strategy_is_refused_or_parsed_never_crashes(
    path: str, value: object
) -> None:
    outcome = _parse_or_error(with_path(VALID, path, value))

    if isinstance(outcome, StrategyError):
        assert outcome.errors
        assert all(p.startswith("$") for p, _ in outcome.errors)
    else:
        assert outcome.strategy_id == VALID["id"]


def test_the_demo_probe_validates_trades_every_weekday_hour_and_is_not_seeded() -> None:
    """`strategies/demo/any_hour_probe.json`: the README's way to see an idea proposed,
    approved or auto-executed, and halted, within minutes at any weekday hour (the
    shipped strategies trade 07:00-17:00 UTC); applied by hand, never by the seed."""
    from datetime import UTC, datetime, timedelta

    from streams.app import seed_commands

    path = STRATEGIES_DIR / "demo" / "any_hour_probe.json"
    probe = parse_strategy(json.loads(path.read_text()))
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    seeded = {c["strategy_id"] for c in seed_commands("acct", b"k" * 32)
              if c.get("strategy_id")}

    assert all(any(w.contains(monday + timedelta(minutes=m)) for w in probe.sessions)
               for m in range(0, 5 * 24 * 60, 7))
    assert not any(w.contains(monday - timedelta(days=1)) for w in probe.sessions)  # Sunday
    assert probe.strategy_id not in seeded
    assert seeded  # the shipped ones are
