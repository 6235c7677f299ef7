"""RSS 2.0 and Atom with odd encodings and missing fields: items or rejects, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.news.config import Tags
from connectors.news.parse import Tagger, UnreadableFeed, parse_feed
from tests.connectors.factories import fixture
from topics.catalog import Catalog

NOW = datetime(2024, 1, 6, tzinfo=UTC)


def _encodable(items: list[dict]) -> None:
    codec = Catalog().codec("news.items.v1")
    for item in items:
        assert codec.decode(codec.encode(item)) == item


def test_rss_declared_windows_1252_decodes_dashes_euro_and_entities() -> None:
    parsed = parse_feed(fixture("rss2_windows1252.xml"), "wire", NOW)

    first = parsed.items[0]
    assert first["headline"] == (
        "Gold hits record as traders bet on Fed cuts \u2013 bullion up 2\u20ac")
    assert first["summary"] == "Spot gold & futures rallied; the \u201cdollar\u201d fell."
    assert parsed.items[1]["headline"] == "Euro slips after ECB's Lagarde comments & weak PMI"
    _encodable(parsed.items)


def test_rss_ids_come_from_guid_then_link_then_a_hash() -> None:
    parsed = parse_feed(fixture("rss2_windows1252.xml"), "wire", NOW)

    ids = [i["item_id"] for i in parsed.items]
    assert ids[0] == "wire-0001"
    assert ids[1] == "https://news.example.test/a/euro-slips"  # no guid
    assert ids[3].startswith("sha256:")  # neither guid nor link
    assert parse_feed(fixture("rss2_windows1252.xml"), "wire", NOW).items[3]["item_id"] == ids[3]


def test_rss_missing_or_broken_pubdate_falls_back_to_the_feed_time() -> None:
    parsed = parse_feed(fixture("rss2_windows1252.xml"), "wire", NOW)

    assert parsed.items[0]["published_at"] == datetime(2024, 1, 2, 9, 30, tzinfo=UTC)
    assert parsed.items[2]["published_at"] == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert parsed.items[3]["published_at"] == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)


def test_rss_item_without_title_is_rejected_with_its_raw_form() -> None:
    parsed = parse_feed(fixture("rss2_windows1252.xml"), "wire", NOW)

    assert len(parsed.rejects) == 1
    raw, reason = parsed.rejects[0]
    assert b"wire-0004" in raw
    assert str(reason) == "item has no title"


def test_headlines_are_tagged_with_symbols_and_currencies() -> None:
    parsed = parse_feed(fixture("rss2_windows1252.xml"), "wire", NOW)

    tags = [(i["symbols"], i["currencies"]) for i in parsed.items]
    assert tags[0] == (["XAUUSD"], ["USD", "XAU"])
    assert tags[1] == (["EURUSD"], ["EUR"])
    assert tags[2] == (["US30"], ["USD"])
    assert tags[3] == ([], [])  # "fed up" is not the Fed


def test_atom_html_titles_become_plain_text_and_unicode_survives() -> None:
    parsed = parse_feed(fixture("atom_commentary.xml"), "broker", NOW)

    assert parsed.items[0]["headline"] == "XAU/USD outlook: gold consolidates below $2,080"
    assert parsed.items[0]["url"] == "https://broker.example.test/commentary/xau-outlook"
    assert "\U0001F4C8" in parsed.items[1]["headline"]
    assert parsed.items[1]["published_at"] == datetime(2024, 1, 3, 8, 0, tzinfo=UTC)
    assert len(parsed.rejects) == 1  # the empty title
    _encodable(parsed.items)


def test_alias_map_is_configurable() -> None:
    tagger = Tagger({"silver": Tags(("XAGUSD",), ("XAG",)), "Fed": Tags((), ("USD",))})

    assert tagger.tag("Silver and the Fed") == (["XAGUSD"], ["USD", "XAG"])
    assert tagger.tag("gold rallies") == ([], [])


def test_a_document_that_is_not_a_feed_raises_for_the_runner_to_back_off() -> None:
    with pytest.raises(UnreadableFeed):
        parse_feed(b"\x00\x01 definitely not xml <<<", "wire", NOW)
