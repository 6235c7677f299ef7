"""The synthetic market: deterministic per seed, valid bars, measurable sessions and regimes."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from connectors.market.schedule import DemoSchedule
from connectors.market.synthetic import SyntheticBar, SyntheticMarket, is_closed
from streams.core.market import Candle
from topics.catalog import Catalog

START = datetime(2026, 3, 2, tzinfo=UTC)  # Monday 00:00 UTC


def _bars(days: int, seed: int = 42, timeframe: str = "M5") -> list[SyntheticBar]:
    market = SyntheticMarket(seed=seed, start=START, timeframe=timeframe)
    steps = int(timedelta(days=days) / market.step)
    return [bar for _ in range(steps) for bar in market.next_bars()]


def _range(bar: SyntheticBar) -> float:
    rec = bar.record
    return (rec["high"] - rec["low"]) / rec["close"]


def test_same_seed_gives_the_same_bars_and_another_seed_does_not() -> None:
    first = [b.record for b in _bars(2, seed=7)]
    again = [b.record for b in _bars(2, seed=7)]
    other = [b.record for b in _bars(2, seed=8)]

    assert first == again
    assert first != other


def test_every_bar_is_a_valid_candle_and_encodes_for_the_topic() -> None:
    codec = Catalog().codec("market.candles.v1")
    for bar in _bars(3):
        rec = bar.record
        Candle(**{k: rec[k] for k in ("symbol", "timeframe", "open_time", "open", "high", "low",
                                      "close", "volume", "spread")}).validate()
        codec.encode(rec)


def test_event_time_advances_one_bar_at_a_time_and_skips_the_weekend() -> None:
    market = SyntheticMarket(seed=1, start=datetime(2026, 3, 6, 21, 55, tzinfo=UTC),
                             timeframe="M5")  # Friday 21:55 UTC
    times = [market.next_bars()[0].record["open_time"] for _ in range(3)]

    assert times[0] == datetime(2026, 3, 6, 21, 55, tzinfo=UTC)
    assert times[1] == datetime(2026, 3, 8, 22, 0, tzinfo=UTC)  # Sunday open
    assert times[2] - times[1] == timedelta(minutes=5)
    assert not any(is_closed(t) for t in times)


def test_symbols_keep_their_price_scale_and_point_size() -> None:
    last = {b.record["symbol"]: b.record for b in _bars(5)}

    assert 1500 < last["XAUUSD"]["close"] < 3500
    assert 0.8 < last["EURUSD"]["close"] < 1.4
    assert 25_000 < last["US30"]["close"] < 55_000
    assert round(last["EURUSD"]["close"], 5) == last["EURUSD"]["close"]
    assert round(last["US30"]["close"], 1) == last["US30"]["close"]


def test_london_new_york_overlap_is_more_volatile_than_asia() -> None:
    by_session: dict[str, list[float]] = defaultdict(list)
    for bar in _bars(20):
        if bar.record["symbol"] == "EURUSD" and bar.news == 1.0:
            by_session[bar.session].append(_range(bar))

    assert statistics.mean(by_session["overlap"]) > 1.8 * statistics.mean(by_session["asia"])
    assert statistics.mean(by_session["london"]) > statistics.mean(by_session["asia"])


def test_volatile_regime_has_wider_bars_than_calm_regime() -> None:
    by_regime: dict[str, list[float]] = defaultdict(list)
    for bar in _bars(20):
        if bar.session == "london" and bar.news == 1.0:
            by_regime[bar.regime].append(_range(bar))

    assert by_regime["calm"]
    assert by_regime["volatile"]
    assert statistics.mean(by_regime["volatile"]) > 2 * statistics.mean(by_regime["calm"])


def test_spread_widens_at_rollover_and_around_high_impact_news() -> None:
    bars = [b for b in _bars(10) if b.record["symbol"] == "XAUUSD"]
    rollover = [b.record["spread"] for b in bars if b.record["open_time"].hour == 21]
    london_quiet = [b.record["spread"] for b in bars if b.session == "london" and b.news == 1.0
                    and b.regime != "volatile"]
    news = [b.record["spread"] for b in bars if b.news >= 4.0]

    assert news, "the demo schedule has high-impact USD releases on weekdays"
    assert statistics.mean(rollover) > 2 * statistics.mean(london_quiet)
    assert statistics.mean(news) > 2 * statistics.mean(london_quiet)


def test_trends_and_pullbacks_both_happen() -> None:
    closes = [b.record["close"] for b in _bars(20, timeframe="M15")
              if b.record["symbol"] == "XAUUSD"]
    moves = [closes[i + 16] - closes[i] for i in range(0, len(closes) - 16, 16)]  # 4-hour moves

    assert sum(m > 0 for m in moves) > len(moves) * 0.25
    assert sum(m < 0 for m in moves) > len(moves) * 0.25
    assert max(closes) / min(closes) > 1.01


def test_demo_schedule_has_high_impact_usd_events_every_weekday_only() -> None:
    schedule = DemoSchedule(42)
    for offset in range(7):
        day = (START + timedelta(days=offset)).date()
        events = schedule.events_on(day)
        usd_high = [e for e in events if e.currency == "USD" and e.impact == "high"]
        assert bool(usd_high) == (day.weekday() < 5)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        SyntheticMarket(start=datetime(2026, 3, 2))  # noqa: DTZ001
