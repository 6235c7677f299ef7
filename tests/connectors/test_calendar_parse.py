"""Calendar exports: ForexFactory JSON and XML, CSV with actuals; raw strings and numbers kept."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.calendar.parse import (
    MissingTimezone,
    event_id,
    parse_calendar_csv,
    parse_ff_json,
    parse_ff_xml,
    parse_number,
)
from tests.connectors.factories import fixture
from topics.catalog import Catalog

NOW = datetime(2024, 1, 6, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def _encodable(events: list[dict]) -> None:
    codec = Catalog().codec("calendar.events.v1")
    for event in events:
        assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize(("raw", "number"), [
    ("0.3%", 0.3), ("-1.2K", -1200.0), ("215K", 215_000.0), ("1.5M", 1_500_000.0),
    ("<0.50%", 0.5), ("17.7B", 17.7e9), ("1,234.5", 1234.5), ("\u22120.2%", -0.2),
    ("", None), (None, None), ("n/a", None), ("<4.50%|2.4", None),
])
def test_provider_values_parse_to_numbers(raw: str | None, number: float | None) -> None:
    assert parse_number(raw) == number


def test_ff_json_keeps_raw_strings_and_parsed_numbers_in_utc() -> None:
    parsed = parse_ff_json(fixture("ff_calendar_thisweek.json"), "forexfactory", NOW)

    nfp = parsed.events[0]
    assert nfp["event_time"] == datetime(2024, 1, 5, 13, 30, tzinfo=UTC)
    assert (nfp["currency"], nfp["impact"]) == ("USD", "high")
    assert (nfp["forecast_raw"], nfp["forecast"]) == ("168K", 168_000.0)
    assert (nfp["previous_raw"], nfp["previous"]) == ("199K", 199_000.0)
    assert nfp["actual_raw"] is None
    assert nfp["actual"] is None
    adp = next(e for e in parsed.events if e["title"].startswith("ADP"))
    assert adp["forecast"] == -1200.0
    _encodable(parsed.events)


def test_ff_json_holiday_and_non_economic_impacts_are_understood() -> None:
    parsed = parse_ff_json(fixture("ff_calendar_thisweek.json"), "forexfactory", NOW)

    impacts = {e["title"]: e["impact"] for e in parsed.events}
    assert impacts["Bank Holiday"] == "holiday"
    assert impacts["FOMC Member Speaks"] == "low"


def test_ff_json_malformed_event_is_rejected_with_its_raw_json() -> None:
    parsed = parse_ff_json(fixture("ff_calendar_thisweek.json"), "forexfactory", NOW)

    assert len(parsed.rejects) == 1
    raw, reason = parsed.rejects[0]
    assert b"Broken Event" in raw
    assert "not a date" in str(reason)


def test_ff_xml_times_are_read_in_the_configured_timezone() -> None:
    parsed = parse_ff_xml(fixture("ff_calendar_thisweek.xml"), "forexfactory", NOW, NEW_YORK)

    by_title = {e["title"]: e for e in parsed.events}
    assert by_title["Non-Farm Employment Change"]["event_time"] == datetime(
        2024, 1, 5, 13, 30, tzinfo=UTC)
    assert by_title["ECB President Lagarde Speaks"]["event_time"] == datetime(
        2024, 1, 8, 17, 15, tzinfo=UTC)  # 12:15pm New York
    assert by_title["Trade Balance"]["event_time"] == datetime(2024, 1, 5, 0, 30, tzinfo=UTC)
    _encodable(parsed.events)


def test_ff_xml_all_day_tentative_and_odd_times_are_all_day_events_at_local_midnight() -> None:
    parsed = parse_ff_xml(fixture("ff_calendar_thisweek.xml"), "forexfactory", NOW, NEW_YORK)

    by_title = {e["title"]: e for e in parsed.events}
    for title in ("Bank Holiday", "OPEC-JMMC Meetings", "French Flash Services PMI"):
        assert by_title[title]["all_day"] is True
        assert by_title[title]["event_time"].astimezone(NEW_YORK).hour == 0
    assert by_title["Non-Farm Employment Change"]["all_day"] is False


def test_ff_xml_without_a_configured_timezone_is_refused_not_guessed() -> None:
    with pytest.raises(MissingTimezone):
        parse_ff_xml(fixture("ff_calendar_thisweek.xml"), "forexfactory", NOW, None)


def test_ff_xml_event_without_date_is_rejected_and_the_rest_parsed() -> None:
    parsed = parse_ff_xml(fixture("ff_calendar_thisweek.xml"), "forexfactory", NOW, NEW_YORK)

    assert len(parsed.events) == 6
    assert [str(r[1]) for r in parsed.rejects] == ["event has no date"]


def test_calendar_csv_carries_actual_values() -> None:
    parsed = parse_calendar_csv(fixture("calendar_actuals.csv"), "csv", NOW)

    nfp = parsed.events[0]
    assert (nfp["actual_raw"], nfp["actual"]) == ("216K", 216_000.0)
    assert parsed.events[1]["actual"] == 0.3
    assert parsed.events[2]["event_time"] == datetime(2024, 1, 11, 13, 30, tzinfo=UTC)
    assert "EURO" in str(parsed.rejects[0][1])
    _encodable(parsed.events)


def test_event_id_is_the_same_for_the_same_release_from_any_format() -> None:
    json_nfp = parse_ff_json(fixture("ff_calendar_thisweek.json"), "ff", NOW).events[0]
    xml_nfp = parse_ff_xml(fixture("ff_calendar_thisweek.xml"), "ff", NOW, NEW_YORK).events[0]
    csv_nfp = parse_calendar_csv(fixture("calendar_actuals.csv"), "csv", NOW).events[0]

    assert json_nfp["event_id"] == xml_nfp["event_id"] == csv_nfp["event_id"]
    assert json_nfp["event_id"] == event_id("usd", "Non-Farm Employment Change",
                                            datetime(2024, 1, 5, 13, 30, tzinfo=UTC))
