"""Higher-timeframe bars resampled from M1 bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.market.resample import Resampler

M1 = timedelta(minutes=1)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def bar(i: int, close: float, high: float | None = None, low: float | None = None) -> dict:
    return {"symbol": "XAUUSD", "timeframe": "M1", "open_time": T0 + i * M1, "open": close - 1,
            "high": high if high is not None else close + 1,
            "low": low if low is not None else close - 2, "close": close, "volume": 10,
            "source": "t", "spread": 0.2 + i / 100, "closed": True}


def test_five_m1_bars_make_one_m5_bar_with_their_extremes() -> None:
    r = Resampler(M1, {"M5": 5 * M1})
    out = [r.add(bar(i, 100 + i, high=110 if i == 2 else None, low=90 if i == 3 else None))
           for i in range(5)]
    assert out[:4] == [[], [], [], []]
    (m5,) = out[4]
    assert (m5["timeframe"], m5["open_time"]) == ("M5", T0)
    assert (m5["open"], m5["high"], m5["low"], m5["close"]) == (99, 110, 90, 104)
    assert m5["volume"] == 50
    assert m5["spread"] == pytest.approx(0.24)


def test_a_gap_closes_the_unfinished_bucket_and_buckets_align_to_the_clock() -> None:
    r = Resampler(M1, {"M5": 5 * M1, "M15": 15 * M1})
    assert r.add(bar(1, 100)) == []  # 09:01: bucket 09:00
    out = r.add(bar(7, 101))  # 09:07: a new M5 bucket, the 09:00 one ends short
    assert [(b["timeframe"], b["open_time"]) for b in out] == [("M5", T0)]
    m15 = [b for i in range(8, 15) for b in r.add(bar(i, 102)) if b["timeframe"] == "M15"]
    assert [(b["open_time"], b["close"]) for b in m15] == [(T0, 102)]


def test_a_timeframe_that_is_not_a_multiple_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple"):
        Resampler(5 * M1, {"M7": 7 * M1})
