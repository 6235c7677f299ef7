"""Feeds on the real bus, polling a local HTTP server: dedupe, backoff, health, dead letters."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.calendar.data import CalendarFeed, CsvCalendarProvider, HttpCalendarProvider
from connectors.core.backoff import Backoff
from connectors.core.clock import ManualClock
from connectors.core.feed import FeedRunner
from connectors.core.health import Health
from connectors.factories import build_feeds
from connectors.market.data import ReplayFeed, SyntheticFeed
from connectors.market.parse import parse_mt5_history
from connectors.news.data import RssFeed
from tests.connectors.bus import headers, read, read_dlq
from tests.connectors.factories import FIXTURES, T0, fixture
from tests.connectors.httpserver import Script, serve
from topics.bus import ERR_CLASS, ERR_CONSUMER, ERR_MESSAGE, ERR_STAGE, ERR_TOPIC, BusProducer
from topics.catalog import Catalog
from topics.settings import Settings

CALENDAR = "/ff_calendar_thisweek.json"


def _calendar_runner(bus: Settings, catalog: Catalog, url: str, clock: ManualClock,
                     backoff: Backoff | None = None) -> FeedRunner:
    provider = HttpCalendarProvider(url + CALENDAR, clock)
    feed = CalendarFeed("calendar", provider, url + CALENDAR)
    return FeedRunner(feed, BusProducer(bus, catalog), clock, interval=60.0,
                      backoff=backoff or Backoff(base=1.0, cap=30.0, jitter=0.0),
                      health_every=0.0)


def test_calendar_polling_publishes_new_events_once_and_an_updated_actual_again(
        bus: Settings, catalog: Catalog) -> None:
    body = fixture("ff_calendar_thisweek.json")
    updated = json.loads(body)
    updated[0]["actual"] = "216K"
    script = Script()
    script.then(CALENDAR, 200, body)
    script.then(CALENDAR, 200, body)
    script.always(CALENDAR, 200, json.dumps(updated).encode())
    clock = ManualClock(T0)
    with serve(script) as url:
        runner = _calendar_runner(bus, catalog, url, clock)
        waits = [runner.step() for _ in range(3)]

    events = read(bus, catalog, "calendar.events.v1", 8, settle=1.0)
    assert waits == [60.0, 60.0, 60.0]
    assert len(events) == 8  # 7 good events, then only the NFP with its actual
    last = events[-1].value
    assert (last["title"], last["actual_raw"], last["actual"]) == (
        "Non-Farm Employment Change", "216K", 216_000.0)
    assert last["event_id"] == events[0].value["event_id"]
    assert {e.key for e in events} >= {"USD", "EUR", "JPY"}


def test_calendar_malformed_item_goes_to_the_dlq_with_reason_and_the_feed_goes_on(
        bus: Settings, catalog: Catalog) -> None:
    script = Script()
    script.always(CALENDAR, 200, fixture("ff_calendar_thisweek.json"))
    with serve(script) as url:
        runner = _calendar_runner(bus, catalog, url, ManualClock(T0))
        runner.step()
        runner.step()

    letters = read_dlq(bus, catalog, "calendar.events.v1", 1)
    events = read(bus, catalog, "calendar.events.v1", 7)
    assert len(letters) == 1  # dead-lettered once, not on every poll
    h = headers(letters[0])
    assert h[ERR_TOPIC] == (url + CALENDAR).encode()
    assert h[ERR_STAGE] == b"parse"
    assert h[ERR_CLASS] == b"ItemError"
    assert b"not a date" in h[ERR_MESSAGE]
    assert h[ERR_CONSUMER] == b"calendar"
    assert b"Broken Event" in letters[0].value()
    assert len(events) == 7
    assert runner.health.dead_letters_total == 1


def test_server_errors_back_off_and_recover_with_health_reported(
        bus: Settings, catalog: Catalog) -> None:
    script = Script()
    script.then(CALENDAR, 500, b"oops")
    script.then(CALENDAR, 500, b"oops")
    script.then(CALENDAR, 503, b"busy")
    script.always(CALENDAR, 200, fixture("ff_calendar_thisweek.json"))
    clock = ManualClock(T0)
    with serve(script) as url:
        runner = _calendar_runner(bus, catalog, url, clock)
        waits = []
        statuses = []
        for _ in range(4):
            waits.append(runner.step())
            statuses.append(runner.health.status)
            clock.advance(timedelta(seconds=waits[-1]))

    assert waits == [1.0, 2.0, 4.0, 60.0]  # bounded exponential backoff, then the interval
    assert statuses == ["error", "error", "error", "ok"]
    health = read(bus, catalog, "feeds.health.v1", 4)
    values = [h.value for h in health]
    assert all(h.key == "calendar" for h in health)
    assert [v["status"] for v in values] == ["error", "error", "error", "ok"]
    assert "HTTP 500" in values[0]["last_error"]
    assert values[-1]["last_success"] == T0 + timedelta(seconds=7)
    assert values[-1]["items_total"] == 7
    assert script.hits[CALENDAR] == 4


def test_backoff_jitter_is_seeded_and_bounded() -> None:
    delays = [Backoff(base=1.0, cap=10.0, jitter=0.2, seed=3) for _ in range(2)]
    runs = [[b.next_delay() for _ in range(8)] for b in delays]

    assert runs[0] == runs[1]
    assert all(d <= 10.0 for d in runs[0])
    assert 0.8 <= runs[0][0] <= 1.2


def test_rss_polling_dedupes_on_guid_or_link_and_dead_letters_a_titleless_item(
        bus: Settings, catalog: Catalog) -> None:
    script = Script()
    script.then("/rss", 200, fixture("rss2_windows1252.xml"), "application/rss+xml")
    script.always("/rss", 200, fixture("rss2_windows1252.xml"), "application/rss+xml")
    clock = ManualClock(T0)
    with serve(script) as url:
        feed = RssFeed("wire", url + "/rss", clock)
        runner = FeedRunner(feed, BusProducer(bus, catalog), clock, 30.0, health_every=0.0)
        runner.step()
        runner.step()

    items = read(bus, catalog, "news.items.v1", 4, settle=1.0)
    letters = read_dlq(bus, catalog, "news.items.v1", 1)
    assert [i.value["item_id"] for i in items][:2] == [
        "wire-0001", "https://news.example.test/a/euro-slips"]
    assert len(items) == 4
    assert all(i.key == "wire" for i in items)
    assert items[0].value["symbols"] == ["XAUUSD"]
    assert len(letters) == 1
    assert headers(letters[0])[ERR_MESSAGE] == b"item has no title"
    assert headers(letters[0])[ERR_TOPIC] == (url + "/rss").encode()


def test_garbage_instead_of_a_feed_is_a_failed_poll_not_a_crash(
        bus: Settings, catalog: Catalog) -> None:
    script = Script()
    script.then("/rss", 200, b"\x00\x01 <<< not xml", "text/html")
    script.always("/rss", 200, fixture("atom_commentary.xml"), "application/atom+xml")
    clock = ManualClock(T0)
    with serve(script) as url:
        runner = FeedRunner(RssFeed("broker", url + "/rss", clock), BusProducer(bus, catalog),
                            clock, 30.0, Backoff(jitter=0.0), health_every=0.0)
        first, second = runner.step(), runner.step()

    assert (first, second) == (1.0, 30.0)
    assert len(read(bus, catalog, "news.items.v1", 2)) == 2


def test_mt5_export_replay_publishes_candles_in_order_and_bad_rows_to_the_dlq(
        bus: Settings, catalog: Catalog) -> None:
    source = str(FIXTURES / "XAUUSD_M1_mt5_export_utf16.csv")
    parsed = parse_mt5_history(Path(source).read_bytes(), "XAUUSD", "M1", 0.01)
    feed = ReplayFeed("replay", parsed, source, speed=600.0)  # 10x faster than 1 min/min
    runner = FeedRunner(feed, BusProducer(bus, catalog), ManualClock(T0), 0.0)
    waits = []
    while not runner.done:
        waits.append(runner.step())

    candles = read(bus, catalog, "market.candles.v1", 4)
    assert [c.value["open_time"].minute for c in candles] == [0, 1, 2, 4]
    assert waits == [0.1, 0.1, 0.2, 0.0]  # bar gaps / speed
    letters = read_dlq(bus, catalog, "market.candles.v1", 1)
    assert headers(letters[0])[ERR_TOPIC] == source.encode()
    assert b"line 5" in headers(letters[0])[ERR_MESSAGE]


def test_calendar_csv_import_publishes_actuals(bus: Settings, catalog: Catalog) -> None:
    clock = ManualClock(T0)
    provider = CsvCalendarProvider(FIXTURES / "calendar_actuals.csv", clock, ZoneInfo("UTC"))
    runner = FeedRunner(CalendarFeed("calendar-csv", provider, "calendar_actuals.csv"),
                        BusProducer(bus, catalog), clock, 60.0)
    runner.step()

    events = read(bus, catalog, "calendar.events.v1", 4)
    assert [e.value["actual_raw"] for e in events] == ["216K", "0.3%", "202K", "15.2"]


def test_demo_feeds_publish_market_calendar_and_news_then_stop_on_request(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    settings = Settings(AI_TRADER_STATE_DIR=str(tmp_path), SYNTHETIC_WARMUP_BARS="50",
                        SYNTHETIC_SPEED="600")  # type: ignore[call-arg]
    clock = ManualClock(T0)
    specs = build_feeds(settings, demo=True, clock=clock)
    producer = BusProducer(bus, catalog)
    runners = [FeedRunner(s.feed, producer, clock, s.interval) for s in specs]
    stop = threading.Event()
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in runners]
    for t in threads:
        t.start()
    candles = read(bus, catalog, "market.candles.v1", 150)
    events = read(bus, catalog, "calendar.events.v1", 3)
    news = read(bus, catalog, "news.items.v1", 2)
    stop.set()
    for t in threads:
        t.join(timeout=10)

    assert not any(t.is_alive() for t in threads)
    assert {c.value["symbol"] for c in candles} == {"XAUUSD", "EURUSD", "US30"}
    assert any(e.value["currency"] == "USD" and e.value["impact"] == "high" for e in events)
    assert all(n.value["source"] == "demo-news" for n in news)


def test_demo_feeds_stamp_their_data_with_the_demo_markets_time(tmp_path: Path) -> None:
    """The demo market runs SYNTHETIC_SPEED times faster than the wall clock; the gate
    judges the calendar's freshness (1 h by default) in the market's time. Stamped
    with the wall clock, the demo calendar was stale after a minute of `make run` and
    every strategy stood in a news blackout: no idea at all."""
    settings = Settings(AI_TRADER_STATE_DIR=str(tmp_path), SYNTHETIC_WARMUP_BARS="5",
                        SYNTHETIC_SPEED="60")  # type: ignore[call-arg]
    clock = ManualClock(T0)
    market, calendar, news = build_feeds(settings, demo=True, clock=clock)
    assert isinstance(market.feed, SyntheticFeed)
    while market.feed.event_time() < T0 + timedelta(hours=3):  # three hours ahead
        clock.advance(1)  # a demo minute
        market.feed.poll()
    wall = clock()  # three wall minutes later
    world = market.feed.event_time() + timedelta(minutes=1)  # the last bar's close

    events = calendar.feed.poll().records
    items = news.feed.poll().records
    health = Health("demo-calendar", clock, calendar.world)
    health.success()

    assert events
    assert items
    assert {o.record["captured_at"] for o in events + items} == {world}
    assert (market.world, calendar.world, news.world) != (None, None, None)
    assert health.record()["last_success"] == world
    assert health.record()["reported_at"] == wall  # the operator's view stays the wall clock
    clock.advance(timedelta(days=1))  # the wall clock overtakes the market: it wins
    assert calendar.world is not None
    assert calendar.world() == wall + timedelta(days=1)
