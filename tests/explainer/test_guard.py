"""The number guard: what counts as a number, and when a written number matches a fact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.explainer.guard import check_numbers, index_facts

FACTS = """{
 "symbol": "XAUUSD", "timeframe": "M15", "strategy": {"id": "gold", "version": 1},
 "entry_price": 2385.2, "stop_loss": 2378.5, "atr_14": 2.41, "equity": 1950.5,
 "pct_move_today": 0.26, "balance": 12000, "today_pl": -120.0, "confidence": 91.3,
 "threshold": "80.00", "checks": {"total": 25},
 "event": {"time": "2026-03-02 14:30 UTC", "title": "US30 futures open"}
}"""


def _ok(text: str, facts: str = FACTS) -> bool:
    return check_numbers(text, index_facts(facts)).ok


@pytest.mark.parametrize("text", [
    "ATR is 2.4 today",                       # 2.4 rounds 2.41
    "ATR is 2.41",
    "equity 1,950.5 USD",                     # thousands separator
    "entry near 2385",                        # integer rounding of 2385.2
    "the day moved 0.26%",                    # a percentage is its number
    "confidence 91.30 against a threshold of 80",
    "a loss of 120 so far",                   # magnitude of -120.0
    "the release at 14:30 UTC on 2026-03-02",  # a time and a date from the facts
    "on the M15 chart of US30",               # identifiers that are in the facts
    "strategy v1",                            # identifier whose digits are a fact
    "a balance of 12k",                       # k = thousand
    "all twenty-five checks ran",             # number words
    "one of the checks failed",               # "one" is prose, not checked
])
def test_numbers_from_the_facts_pass(text: str) -> None:
    assert _ok(text), check_numbers(text, index_facts(FACTS))


@pytest.mark.parametrize(("text", "culprit"), [
    ("ATR is 2.40", "2.40"),                  # more decimals claim more precision
    ("a 72% win rate", "72"),
    ("entry at 2386", "2386"),
    ("the release at 14:35 UTC", "14:35"),    # a time not in the facts
    ("on 2026-03-03", "2026-03-03"),          # a date not in the facts
    ("on the H4 chart", "h4"),                # identifier not in the facts, 4 not a fact
    ("a balance of 13k", "13k"),
    ("twenty-six checks", "twenty-six"),
    ("worth 1,950.6", "1,950.6"),
])
def test_numbers_not_in_the_facts_fail(text: str, culprit: str) -> None:
    result = check_numbers(text, index_facts(FACTS))
    assert not result.ok
    assert culprit in result.unsupported


def test_date_and_time_digits_are_not_numbers_on_either_side() -> None:
    facts = index_facts('{"at": "2026-03-02 14:30 UTC"}')
    assert Decimal(2026) not in facts.numbers
    assert Decimal(14) not in facts.numbers
    assert not _ok("14 minutes later", '{"at": "2026-03-02 14:30 UTC"}')
    assert _ok("at 14:30", '{"at": "2026-03-02 14:30 UTC"}')


def test_text_without_numbers_passes_and_empty_facts_reject_any_number() -> None:
    assert _ok("The gate asked for approval because the symbol is off the watchlist.")
    assert not _ok("3 checks", "{}")


@given(value=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999"), places=3),
       decimals=st.integers(min_value=0, max_value=3))
def test_any_fact_written_rounded_passes(value: Decimal, decimals: int) -> None:
    facts = f'{{"x": {value}}}'
    written = f"{value:,.{decimals}f}"
    assert _ok(f"the value is {written}", facts)


@given(value=st.decimals(min_value=Decimal("1"), max_value=Decimal("9999"), places=2),
       shift=st.decimals(min_value=Decimal("0.02"), max_value=Decimal("50"), places=2))
def test_a_number_off_by_more_than_its_rounding_fails(value: Decimal, shift: Decimal) -> None:
    facts = f'{{"x": {value}}}'
    assert not _ok(f"the value is {value + shift:.2f}", facts)
