"""Session windows, DST, news blackout edges, symbol currencies and the trading day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from streams.core.calendar import (
    DEFAULT_SYMBOLS,
    NewsVerdict,
    SessionWindow,
    news_verdict,
    trading_day,
    trading_week,
)
from streams.core.model import CalendarEvent, CalendarStatus
from tests.streams.core.decision_factories import T0, calendar, event, window

LONDON_MORNING = ("07:00", "11:00", ("Mon", "Tue", "Wed", "Thu", "Fri"), "Europe/London")


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0,
         micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --------------------------------------------------------------------------- sessions


def test_session_admits_the_exact_start() -> None:
    assert window("07:00Z", "11:00Z", ("Tue",)).contains(_utc(2024, 4, 2, 7, 0))


def test_session_refuses_the_exact_end() -> None:
    session = window("07:00Z", "11:00Z", ("Tue",))

    assert not session.contains(_utc(2024, 4, 2, 11, 0))
    assert session.contains(_utc(2024, 4, 2, 10, 59, 59, 999999))


def test_session_refuses_a_day_not_listed() -> None:
    assert not window("07:00Z", "11:00Z", ("Mon", "Tue")).contains(_utc(2024, 4, 3, 8, 0))


def test_z_suffix_and_utc_tz_are_the_same_window() -> None:
    assert window("07:00Z", "11:00Z", ("Tue",)) == window("07:00", "11:00", ("Tue",), "UTC")


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (_utc(2024, 4, 1, 21, 59), False),  # Monday before the start
        (_utc(2024, 4, 1, 22, 0), True),  # Monday start
        (_utc(2024, 4, 1, 23, 30), True),
        (_utc(2024, 4, 2, 1, 59), True),  # Tuesday morning, still Monday's window
        (_utc(2024, 4, 2, 2, 0), False),  # end is exclusive
        (_utc(2024, 4, 1, 1, 0), False),  # Monday morning belongs to Sunday's window
        (_utc(2024, 4, 2, 22, 30), False),  # Tuesday's window is not listed
    ],
)
def test_window_crossing_midnight_belongs_to_the_day_it_starts(at: datetime, inside: bool) -> None:
    assert window("22:00", "02:00", ("Mon",)).contains(at) is inside


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        # Friday 29 March 2024: GMT, London 07:00 = 07:00 UTC
        (_utc(2024, 3, 29, 6, 59), False),
        (_utc(2024, 3, 29, 7, 0), True),
        (_utc(2024, 3, 29, 10, 59), True),
        (_utc(2024, 3, 29, 11, 0), False),
        # Monday 1 April 2024: BST, London 07:00 = 06:00 UTC
        (_utc(2024, 4, 1, 5, 59), False),
        (_utc(2024, 4, 1, 6, 0), True),
        (_utc(2024, 4, 1, 9, 59), True),
        (_utc(2024, 4, 1, 10, 0), False),
    ],
)
def test_london_window_follows_the_march_dst_switch(at: datetime, inside: bool) -> None:
    assert window(*LONDON_MORNING).contains(at) is inside


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        # Friday 25 October 2024: BST
        (_utc(2024, 10, 25, 6, 0), True),
        (_utc(2024, 10, 25, 10, 0), False),
        # Monday 28 October 2024: GMT again
        (_utc(2024, 10, 28, 6, 0), False),
        (_utc(2024, 10, 28, 7, 0), True),
        (_utc(2024, 10, 28, 10, 59), True),
        (_utc(2024, 10, 28, 11, 0), False),
    ],
)
def test_london_window_follows_the_october_dst_switch(at: datetime, inside: bool) -> None:
    assert window(*LONDON_MORNING).contains(at) is inside


def test_overnight_london_window_is_an_hour_shorter_on_the_spring_forward_night() -> None:
    # Saturday 30 March 22:00 GMT to Sunday 31 March 02:00 BST = 01:00 UTC.
    overnight = window("22:00", "02:00", ("Sat",), "Europe/London")

    assert overnight.contains(_utc(2024, 3, 30, 22, 0))
    assert overnight.contains(_utc(2024, 3, 31, 0, 59))
    assert not overnight.contains(_utc(2024, 3, 31, 1, 0))


# ---------------------------------------------------------------------- news blackout

NEWS_MINUTES = 5


def _verdict(
    *events: CalendarEvent,
    at: datetime = T0,
    symbol: str = "XAUUSD",
    extra: tuple[str, ...] = ("USD",),
    minutes: int = NEWS_MINUTES,
    status: CalendarStatus | None = None,
) -> NewsVerdict:
    """The gold strategy's news rule (5 min, USD listed) against a 1 h calendar age."""
    return news_verdict(symbol, extra, minutes, status or calendar(*events), at, timedelta(hours=1))


@pytest.mark.parametrize("offset", [NEWS_MINUTES, -NEWS_MINUTES, 0, 2.5])
def test_news_within_the_window_is_blocked_including_its_edges(offset: float) -> None:
    verdict = _verdict(event(offset))

    assert verdict.blocked
    assert verdict.reason == "news_blackout"


@pytest.mark.parametrize("offset", [NEWS_MINUTES + 1, -(NEWS_MINUTES + 1)])
def test_news_one_minute_beyond_the_window_is_allowed(offset: float) -> None:
    assert not _verdict(event(offset)).blocked


@pytest.mark.parametrize("impact", ["medium", "low", "holiday"])
def test_only_high_impact_news_blocks(impact: str) -> None:
    assert not _verdict(event(1, impact=impact)).blocked


def test_news_of_an_unrelated_currency_does_not_block() -> None:
    assert not _verdict(event(1, currency="JPY")).blocked


def test_news_of_the_symbols_own_currency_blocks_even_if_not_listed() -> None:
    verdict = _verdict(event(1, currency="EUR"), symbol="EURUSD", extra=())

    assert verdict.blocked


def test_listed_currency_blocks_a_symbol_that_does_not_contain_it() -> None:
    assert _verdict(event(1, currency="GBP"), extra=("USD", "GBP")).blocked


def test_all_day_event_blocks_its_whole_utc_day() -> None:
    holiday = event(0, at=_utc(2024, 4, 2, 0, 0), all_day=True)
    late, next_day = _utc(2024, 4, 2, 23, 0), _utc(2024, 4, 3, 0, 6)

    assert _verdict(at=late, status=calendar(holiday, last_success_at=late)).blocked
    assert not _verdict(at=next_day, status=calendar(holiday, last_success_at=next_day)).blocked


def test_unknown_symbol_is_blocked_by_any_currency() -> None:
    verdict = _verdict(event(1, currency="JPY"), symbol="FOOBAR", extra=())

    assert verdict.blocked
    assert verdict.currencies is None


def test_stale_calendar_blacks_out_covered_currencies() -> None:
    stale = calendar(last_success_at=T0 - timedelta(hours=1, seconds=1))

    verdict = _verdict(status=stale)

    assert verdict.blocked
    assert verdict.reason == "calendar_stale"


def test_calendar_that_never_succeeded_is_stale() -> None:
    verdict = _verdict(status=calendar(last_success_at=None))

    assert verdict.reason == "calendar_stale"


def test_calendar_exactly_at_its_max_age_is_fresh() -> None:
    assert not _verdict(status=calendar(last_success_at=T0 - timedelta(hours=1))).blocked


def test_stale_calendar_does_not_block_a_symbol_it_does_not_cover() -> None:
    stale = calendar(last_success_at=None)

    assert not _verdict(status=stale, symbol="XAUXAG", extra=()).blocked


def test_zero_minutes_switches_the_news_rule_off_even_when_stale() -> None:
    verdict = _verdict(event(0), status=calendar(event(0), last_success_at=None), minutes=0)

    assert not verdict.blocked


# ----------------------------------------------------------------- symbol currencies


@pytest.mark.parametrize(
    ("symbol", "currencies"),
    [
        ("XAUUSD", {"XAU", "USD"}),
        ("EURUSD", {"EUR", "USD"}),
        ("US30", {"USD"}),
        ("GER40", {"EUR"}),
        ("EURUSD.m", {"EUR", "USD"}),
        ("EURUSDm", {"EUR", "USD"}),
        ("US30.cash", {"USD"}),
        ("#US30", {"USD"}),
    ],
)
def test_symbols_map_to_their_currencies(symbol: str, currencies: set[str]) -> None:
    assert DEFAULT_SYMBOLS.currencies(symbol) == frozenset(currencies)


def test_unknown_symbol_has_no_currencies() -> None:
    assert DEFAULT_SYMBOLS.currencies("FOOBAR") is None


def test_alias_map_is_configurable() -> None:
    symbols = DEFAULT_SYMBOLS.with_aliases({"DAX": ["EUR"], "US30": ["USD", "CAD"]})

    assert symbols.currencies("DAX") == frozenset({"EUR"})
    assert symbols.currencies("US30") == frozenset({"USD", "CAD"})
    assert DEFAULT_SYMBOLS.currencies("DAX") is None


# ------------------------------------------------------------------------ trading day

FX_START = time(22, 0)


@pytest.mark.parametrize(
    ("at", "label"),
    [
        (_utc(2024, 3, 31, 22, 0), date(2024, 4, 1)),  # Sunday 22:00 starts Monday
        (_utc(2024, 4, 1, 21, 59), date(2024, 4, 1)),
        (_utc(2024, 4, 1, 22, 0), date(2024, 4, 2)),
    ],
)
def test_trading_day_starts_at_22_utc_and_is_named_after_the_next_date(
    at: datetime, label: date
) -> None:
    assert trading_day(at, FX_START, "UTC") == label


def test_trading_day_can_start_in_new_york_time_across_dst() -> None:
    # 17:00 New York is 21:00 UTC in summer (EDT) and 22:00 UTC in winter (EST).
    assert trading_day(_utc(2024, 7, 1, 21, 0), time(17, 0), "America/New_York") == date(2024, 7, 2)
    assert trading_day(_utc(2024, 1, 8, 21, 0), time(17, 0), "America/New_York") == date(2024, 1, 8)


def test_midnight_trading_day_is_the_calendar_date() -> None:
    assert trading_day(_utc(2024, 4, 2, 0, 0), time(0, 0), "UTC") == date(2024, 4, 2)


def test_trading_week_of_the_sunday_evening_session_is_the_new_week() -> None:
    sunday_evening = trading_day(_utc(2024, 3, 31, 23, 0), FX_START, "UTC")
    friday = trading_day(_utc(2024, 3, 29, 12, 0), FX_START, "UTC")

    assert trading_week(sunday_evening) == "2024-W14"
    assert trading_week(friday) == "2024-W13"


def test_a_window_describes_itself_by_its_own_fields() -> None:
    london = SessionWindow(time(7), time(11), frozenset({1, 0}), "Europe/London")
    assert london.describe() == "Mon,Tue 07:00-11:00 Europe/London"
    assert SessionWindow(time(7), time(11), frozenset({0, 1}), "Europe/London").describe() \
        == london.describe()
    for other, text in [
        (SessionWindow(time(7), time(11), frozenset({0, 1}), "UTC"), "Mon,Tue 07:00-11:00 UTC"),
        (SessionWindow(time(7, 30), time(11), frozenset({0, 1}), "Europe/London"),
         "Mon,Tue 07:30-11:00 Europe/London"),
        (SessionWindow(time(22), time(2), frozenset({6}), "Europe/London"),
         "Sun 22:00-02:00 Europe/London"),
    ]:
        assert other.describe() == text
    assert london.describe() == "Mon,Tue 07:00-11:00 Europe/London"
