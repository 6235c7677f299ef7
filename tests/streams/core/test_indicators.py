"""The incremental indicator engine: exactness against TA-Lib, bar semantics, state round trips."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import talib
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.core.indicators import (
    ATR,
    MACD,
    RSI,
    SMA,
    DayMove,
    IndicatorEngine,
    IndicatorUpdate,
    SwingRange,
    UpdateStatus,
)
from streams.core.market import Candle, IndicatorValues, InvalidCandle
from tests.streams.core.factories import (
    T0,
    candle,
    forming_version,
    noisy_stream,
    random_walk,
)

LONG = 20_000  # candles in the exactness series


# --- helpers ---------------------------------------------------------------------------------


def arrays(bars: Sequence[Candle]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High, low and close as float64 arrays, the way TA-Lib takes them."""
    return (
        np.array([bar.high for bar in bars], dtype=np.float64),
        np.array([bar.low for bar in bars], dtype=np.float64),
        np.array([bar.close for bar in bars], dtype=np.float64),
    )


def mismatches(
    ours: Sequence[float | None], reference: np.ndarray, abs_tol: float
) -> list[tuple[int, float | None, float]]:
    """Positions where `ours` is not None exactly where TA-Lib has NaN, or not within 1e-9."""
    assert len(ours) == len(reference)
    wrong: list[tuple[int, float | None, float]] = []
    for index, (value, expected) in enumerate(zip(ours, reference.tolist(), strict=True)):
        if math.isnan(expected):
            if value is not None:
                wrong.append((index, value, expected))
        elif value is None or not math.isclose(value, expected, rel_tol=1e-9, abs_tol=abs_tol):
            wrong.append((index, value, expected))
    return wrong


def feed(engine: IndicatorEngine, bars: Sequence[Candle]) -> list[IndicatorValues | None]:
    return [engine.update(bar).values for bar in bars]


def without_counters(state: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key != "counters"}


def longest_list(value: Any) -> int:
    if isinstance(value, dict):
        return max((longest_list(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return max([len(value), *(longest_list(item) for item in value)])
    return 0


def shape(value: Any) -> Any:
    """The structure of a state with the numbers blanked out: equal shapes, equal sizes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


# --- exactness against TA-Lib ----------------------------------------------------------------


@pytest.mark.parametrize(("price", "seed"), [(1.1, 11), (2380.0, 12), (0.85, 13)])
def test_engine_matches_talib_on_a_long_random_walk(price: float, seed: int) -> None:
    bars = random_walk(LONG, seed, price=price)
    high, low, close = arrays(bars)
    macd, macd_signal, macd_hist = talib.MACD(close, 12, 26, 9)
    prev_macd_hist = np.concatenate(([np.nan], macd_hist[:-1]))
    expected = {
        "rsi_14": talib.RSI(close, 14),
        "sma_50": talib.SMA(close, 50),
        "sma_200": talib.SMA(close, 200),
        "macd": macd,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "prev_macd_hist": prev_macd_hist,
        "atr_14": talib.ATR(high, low, close, 14),
        "swing_high": talib.MAX(high, 20),
        "swing_low": talib.MIN(low, 20),
    }

    values = feed(IndicatorEngine("EURUSD", "M1"), bars)

    assert all(value is not None for value in values)
    for name, reference in expected.items():
        ours = [getattr(value, name) for value in values]
        wrong = mismatches(ours, reference, abs_tol=1e-12 * price)
        assert not wrong, f"{name}: {len(wrong)} mismatches, first {wrong[:3]}"


def test_rsi_matches_talib_on_a_long_random_walk() -> None:
    _, _, close = arrays(random_walk(LONG, seed=21))
    rsi = RSI(14)

    ours = [rsi.update(value) for value in close.tolist()]

    assert not mismatches(ours, talib.RSI(close, 14), abs_tol=1e-10)


def test_rsi_is_zero_like_talib_when_the_price_does_not_move() -> None:
    closes = np.full(40, 1.25)
    rsi = RSI(14)

    ours = [rsi.update(value) for value in closes.tolist()]

    assert ours[14:] == [0.0] * 26
    assert not mismatches(ours, talib.RSI(closes, 14), abs_tol=0.0)


@pytest.mark.parametrize("period", [2, 50, 200])
def test_sma_matches_talib_on_a_long_random_walk(period: int) -> None:
    _, _, close = arrays(random_walk(LONG, seed=22))
    sma = SMA(period)

    ours = [sma.update(value) for value in close.tolist()]

    assert not mismatches(ours, talib.SMA(close, period), abs_tol=1e-15)


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_talib_seeding_and_values(fast: int, slow: int, signal: int) -> None:
    _, _, close = arrays(random_walk(LONG, seed=23))
    macd = MACD(fast, slow, signal)

    ours = [macd.update(value) for value in close.tolist()]

    for position, reference in enumerate(talib.MACD(close, fast, slow, signal)):
        column = [None if triple is None else triple[position] for triple in ours]
        assert not mismatches(column, reference, abs_tol=1e-13)


def test_atr_matches_talib_skipping_the_first_bars_true_range() -> None:
    high, low, close = arrays(random_walk(LONG, seed=24))
    atr = ATR(14)

    ours = [
        atr.update(h, lo, c)
        for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True)
    ]

    assert not mismatches(ours, talib.ATR(high, low, close, 14), abs_tol=1e-15)


@pytest.mark.parametrize("window", [2, 3, 20, 60])
def test_swing_range_matches_talib_max_min_with_many_ties(window: int) -> None:
    rng = random.Random(window)
    lows = [float(rng.randint(0, 6)) for _ in range(5_000)]  # few levels: ties everywhere
    highs = [low + rng.randint(0, 3) for low in lows]
    swing = SwingRange(window)

    ours = [swing.update(high, low) for high, low in zip(highs, lows, strict=True)]

    swing_high = [None if pair is None else pair[0] for pair in ours]
    swing_low = [None if pair is None else pair[1] for pair in ours]
    assert not mismatches(swing_high, talib.MAX(np.array(highs), window), abs_tol=0.0)
    assert not mismatches(swing_low, talib.MIN(np.array(lows), window), abs_tol=0.0)


def test_swing_range_of_one_bar_is_that_bars_high_and_low() -> None:
    swing = SwingRange(1)

    ours = [swing.update(bar.high, bar.low) for bar in random_walk(100, seed=25)]

    assert ours == [(bar.high, bar.low) for bar in random_walk(100, seed=25)]


def test_sma_does_not_drift_when_the_price_level_collapses_over_a_long_series() -> None:
    # From 1e6 down to 1e-3 over 150k values: a plain running sum keeps the absolute error it
    # made at the high level and ends ~1e-6 off in relative terms.
    rng = random.Random(3)
    count, period = 150_000, 200
    values = [
        1e6 * math.exp(-index * math.log(1e9) / count) * (1 + rng.uniform(-0.01, 0.01))
        for index in range(count)
    ]
    sma = SMA(period)

    ours = [sma.update(value) for value in values]

    for index in range(period - 1, count, 7):
        exact = math.fsum(values[index - period + 1 : index + 1]) / period
        assert math.isclose(ours[index], exact, rel_tol=1e-12), index  # type: ignore[arg-type]


# --- the engine's other outputs --------------------------------------------------------------


def test_engine_passes_close_spread_and_open_time_through() -> None:
    bars = random_walk(30, seed=31)

    values = feed(IndicatorEngine("EURUSD", "M1"), bars)

    for bar, value in zip(bars, values, strict=True):
        assert value is not None
        assert (value.symbol, value.timeframe) == ("EURUSD", "M1")
        assert value.open_time is bar.open_time
        assert (value.close, value.spread) == (bar.close, bar.spread)


def test_first_candle_gives_only_day_values_and_everything_else_warming_up() -> None:
    first = candle(T0 + timedelta(hours=5), close=1.2, open=1.19)

    update = IndicatorEngine("EURUSD", "M1").update(first)

    assert update.status is UpdateStatus.ACCEPTED
    values = update.values
    assert values is not None
    assert values.day_open == 1.19
    assert values.pct_move_today == pytest.approx((1.2 - 1.19) / 1.19 * 100)
    warming_up = [
        "rsi_14", "sma_50", "sma_200", "macd", "macd_signal", "macd_hist", "prev_macd_hist",
        "atr_14", "swing_high", "swing_low",
    ]  # fmt: skip
    assert [getattr(values, name) for name in warming_up] == [None] * len(warming_up)


def test_day_open_is_the_first_open_of_the_utc_day_whatever_the_candles_timezone() -> None:
    broker_time = timezone(timedelta(hours=3))  # MT5 servers often run at UTC+2/+3
    # From 22:00 UTC, already the next day in broker time.
    bars = [
        dataclasses.replace(bar, open_time=bar.open_time.astimezone(broker_time))
        for bar in random_walk(24 * 4, seed=32, timeframe="H1", start=T0 - timedelta(hours=2))
    ]

    values = feed(IndicatorEngine("EURUSD", "H1"), bars)

    first_open_by_day: dict[Any, float] = {}
    for bar, value in zip(bars, values, strict=True):
        day = bar.open_time.astimezone(UTC).date()
        day_open = first_open_by_day.setdefault(day, bar.open)
        assert value is not None
        assert value.day_open == day_open
        assert value.pct_move_today == (bar.close - day_open) / day_open * 100.0
    assert len(first_open_by_day) == 5


def test_swing_window_is_configurable() -> None:
    bars = random_walk(500, seed=33)
    high, low, _ = arrays(bars)

    values = feed(IndicatorEngine("EURUSD", "M1", swing_window=5), bars)

    assert not mismatches([v.swing_high for v in values if v], talib.MAX(high, 5), abs_tol=0.0)
    assert not mismatches([v.swing_low for v in values if v], talib.MIN(low, 5), abs_tol=0.0)


def test_engine_output_is_a_real_frozen_indicator_values() -> None:
    # The engine builds its output without IndicatorValues.__init__, for speed.
    values = feed(IndicatorEngine("EURUSD", "M1"), random_walk(300, seed=34))[-1]

    assert type(values) is IndicatorValues
    assert values == IndicatorValues(**dataclasses.asdict(values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.rsi_14 = 50.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: IndicatorEngine("EURUSD", "M2"), "unknown timeframe"),
        (lambda: IndicatorEngine("", "M1"), "symbol is empty"),
        (lambda: IndicatorEngine("EURUSD", "M1", swing_window=0), "window"),
        (lambda: SMA(0), "period"),
        (lambda: RSI(1), "period"),
        (lambda: ATR(1), "period"),
        (lambda: MACD(26, 12, 9), "fast_period"),
        (lambda: SwingRange(True), "window"),
    ],
)
def test_bad_configuration_is_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# --- bar semantics ---------------------------------------------------------------------------


def test_forming_bar_resent_replaces_previous_values() -> None:
    bars = random_walk(400, seed=41)
    clean = IndicatorEngine("EURUSD", "M1")
    clean_values = feed(clean, bars)
    resent = IndicatorEngine("EURUSD", "M1")
    feed(resent, bars[:299])
    resent.update(forming_version(bars[299], seed=1))

    update = resent.update(bars[299])

    assert isinstance(update, IndicatorUpdate)
    assert update.status is UpdateStatus.REPLACED
    assert update.reason is None
    assert update.values == clean_values[299]
    assert feed(resent, bars[300:]) == clean_values[300:]
    assert without_counters(resent.to_state()) == without_counters(clean.to_state())
    assert resent.counters.replaced == 1
    assert resent.counters.accepted == clean.counters.accepted == 400


def test_forming_bar_resent_during_warm_up_replaces_it_at_any_position() -> None:
    # Every position up to 260 covers every seeding bar (ATR/RSI 14, MACD 25 and 33,
    # SMA 49 and 199, swing 19) and the SMA rings' first wraps.
    bars = random_walk(262, seed=42)
    expected = feed(IndicatorEngine("EURUSD", "M1"), bars)
    wrong_positions = []

    for position in range(260):
        engine = IndicatorEngine("EURUSD", "M1")
        feed(engine, bars[:position])
        engine.update(forming_version(bars[position], seed=position))
        if feed(engine, bars[position:]) != expected[position:]:
            wrong_positions.append(position)

    assert wrong_positions == []


def test_forming_bar_resent_many_times_keeps_only_the_last_version() -> None:
    bars = random_walk(250, seed=43)
    expected = feed(IndicatorEngine("EURUSD", "M1"), bars)
    engine = IndicatorEngine("EURUSD", "M1")
    feed(engine, bars[:-1])
    for version in range(5):
        engine.update(forming_version(bars[-1], seed=version))

    update = engine.update(bars[-1])

    assert update.values == expected[-1]
    assert engine.counters.replaced == 5


def test_resent_first_bar_of_a_day_moves_the_day_open() -> None:
    bars = random_walk(30, seed=44, timeframe="H1", start=T0 - timedelta(hours=20))
    midnight = next(i for i, bar in enumerate(bars) if bar.open_time == T0)
    engine = IndicatorEngine("EURUSD", "H1")
    feed(engine, bars[:midnight])
    first_version = engine.update(dataclasses.replace(bars[midnight], open=bars[midnight].low))

    final = engine.update(bars[midnight])

    assert first_version.values is not None
    assert final.values is not None
    assert first_version.values.day_open == bars[midnight].low
    assert final.values.day_open == bars[midnight].open


def test_older_candle_is_ignored_and_counted_without_touching_state() -> None:
    bars = random_walk(100, seed=45)
    expected = feed(IndicatorEngine("EURUSD", "M1"), bars)
    engine = IndicatorEngine("EURUSD", "M1")
    feed(engine, bars[:60])
    before = engine.to_state()

    update = engine.update(bars[40])

    assert update.status is UpdateStatus.IGNORED
    assert update.values is None
    assert update.reason is not None
    assert "before the last bar" in update.reason
    assert engine.counters.ignored_out_of_order == 1
    assert without_counters(engine.to_state()) == without_counters(before)
    assert feed(engine, bars[60:]) == expected[60:]


def test_gap_in_time_is_accepted_counted_and_indicators_continue_over_it() -> None:
    weekend = timedelta(days=2, hours=1)
    bars = [
        bar if index < 300 else dataclasses.replace(bar, open_time=bar.open_time + weekend)
        for index, bar in enumerate(random_walk(600, seed=46))
    ]
    high, low, close = arrays(bars)
    engine = IndicatorEngine("EURUSD", "M1")

    updates = [engine.update(bar) for bar in bars]

    assert updates[300].status is UpdateStatus.ACCEPTED
    assert engine.counters.gaps == 1
    assert engine.counters.accepted == 600
    rsi = [update.values.rsi_14 for update in updates if update.values]
    atr = [update.values.atr_14 for update in updates if update.values]
    assert not mismatches(rsi, talib.RSI(close, 14), abs_tol=1e-10)
    assert not mismatches(atr, talib.ATR(high, low, close, 14), abs_tol=1e-15)
    assert updates[300].values is not None
    assert updates[300].values.day_open == bars[300].open  # a new UTC day began over the gap


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"close": math.nan}, "close is not finite"),
        ({"high": math.inf}, "high is not finite"),
        ({"open": -math.inf}, "open is not finite"),
        ({"spread": math.nan}, "spread is not finite"),
        ({"low": -0.5}, "low is negative"),
        ({"spread": -0.0001}, "spread is negative"),
        ({"volume": -1}, "volume is negative"),
        ({"high": 1.0, "low": 1.2, "open": 1.1, "close": 1.1}, "high 1.0 < low 1.2"),
        ({"close": 5.0}, "outside the high-low range"),
        ({"open": 0.0, "low": 0.0}, "must be positive"),
        ({"open_time": T0.replace(tzinfo=None)}, "no timezone"),
        ({"timeframe": "M5"}, "not this engine's 'M1'"),
        ({"symbol": "GBPUSD"}, "not this engine's 'EURUSD'"),
        ({"symbol": ""}, "not this engine's"),
    ],
)
def test_invalid_candle_is_rejected_with_a_reason_and_state_untouched(
    overrides: dict[str, Any], reason: str
) -> None:
    bars = random_walk(80, seed=47)
    expected = feed(IndicatorEngine("EURUSD", "M1"), bars)
    engine = IndicatorEngine("EURUSD", "M1")
    feed(engine, bars[:50])
    before = engine.to_state()
    # A newer open time, so only validation stands between it and the indicators.
    changes = {"open_time": bars[50].open_time + timedelta(seconds=30), **overrides}
    invalid = dataclasses.replace(bars[50], **changes)

    update = engine.update(invalid)

    assert update.status is UpdateStatus.REJECTED
    assert update.values is None
    assert update.reason is not None
    assert reason in update.reason
    assert engine.counters.rejected == 1
    assert without_counters(engine.to_state()) == without_counters(before)
    assert feed(engine, bars[50:]) == expected[50:]


ODD_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -0.0, 0.0, 5e-324, 1.1, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=400, deadline=None)
@given(
    prices=st.dictionaries(
        st.sampled_from(["open", "high", "low", "close", "spread"]),
        ODD_NUMBERS,
        min_size=1,
        max_size=2,
    ),
    volume=st.integers(-2, 2),
    aware=st.booleans(),
)
@example(prices={"spread": math.inf}, volume=0, aware=True)
@example(prices={"high": math.inf}, volume=0, aware=True)
@example(prices={"close": 0.0, "low": 0.0}, volume=0, aware=True)
@example(prices={"low": -0.0}, volume=0, aware=True)
@example(prices={"open": math.nan}, volume=0, aware=True)
def test_engine_accepts_exactly_the_candles_that_candle_validate_accepts(
    prices: dict[str, float], volume: int, aware: bool
) -> None:
    # The engine skips validate() for candles that plainly pass it; it must never disagree.
    open_time = T0 if aware else T0.replace(tzinfo=None)
    changes: dict[str, Any] = {"open_time": open_time, "volume": volume, **prices}
    bar = dataclasses.replace(candle(), **changes)
    try:
        bar.validate()
        expected = UpdateStatus.ACCEPTED
    except InvalidCandle:
        expected = UpdateStatus.REJECTED

    update = IndicatorEngine("EURUSD", "M1").update(bar)

    assert update.status is expected


# --- state -----------------------------------------------------------------------------------


INDICATORS: list[tuple[Callable[[], Any], Callable[[Any, Candle], object]]] = [
    (lambda: SMA(50), lambda sma, bar: sma.update(bar.close)),
    (lambda: RSI(14), lambda rsi, bar: rsi.update(bar.close)),
    (lambda: MACD(12, 26, 9), lambda macd, bar: macd.update(bar.close)),
    (lambda: ATR(14), lambda atr, bar: atr.update(bar.high, bar.low, bar.close)),
    (lambda: SwingRange(20), lambda swing, bar: swing.update(bar.high, bar.low)),
    (DayMove, lambda day, bar: day.update(bar.open_time, bar.open, bar.close)),
]


@pytest.mark.parametrize(("make", "update"), INDICATORS)
def test_undo_restores_exactly_the_state_before_the_last_update(
    make: Callable[[], Any], update: Callable[[Any, Candle], object]
) -> None:
    indicator = make()
    for bar in random_walk(300, seed=51, timeframe="H1"):
        before = indicator.to_state()
        update(indicator, bar)
        indicator.undo()
        assert {**indicator.to_state(), "undo": None} == {**before, "undo": None}
        redone = update(indicator, bar)
        assert redone == update(type(indicator).from_state(before), bar)


@pytest.mark.parametrize(("make", "update"), INDICATORS)
def test_undo_goes_back_one_update_only(
    make: Callable[[], Any], update: Callable[[Any, Candle], object]
) -> None:
    indicator = make()
    update(indicator, candle())
    indicator.undo()

    with pytest.raises(RuntimeError, match="nothing to undo"):
        indicator.undo()


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 420),
    cut_fraction=st.floats(0.0, 1.0),
    resend_probability=st.sampled_from([0.0, 0.2, 0.6]),
    swing_window=st.integers(1, 30),
)
def test_state_round_trip_mid_series_continues_bit_identically(
    seed: int, count: int, cut_fraction: float, resend_probability: float, swing_window: int
) -> None:
    stream = noisy_stream(random_walk(count, seed), seed, resend_probability=resend_probability)
    cut = round(cut_fraction * len(stream))
    uninterrupted = IndicatorEngine("EURUSD", "M1", swing_window)
    expected = [uninterrupted.update(bar) for bar in stream]
    first_half = IndicatorEngine("EURUSD", "M1", swing_window)
    for bar in stream[:cut]:
        first_half.update(bar)
    state = first_half.to_state()
    saved = json.dumps(state)

    for restored in (
        IndicatorEngine.from_state(json.loads(saved)),
        IndicatorEngine.from_state(state),
    ):
        assert [restored.update(bar) for bar in stream[cut:]] == expected[cut:]
        assert restored.to_state() == uninterrupted.to_state()
    assert json.dumps(state) == saved  # restoring did not share lists with the state


def test_state_size_does_not_grow_with_series_length() -> None:
    bars = random_walk(50_000, seed=52)
    engine = IndicatorEngine("EURUSD", "M1")
    feed(engine, bars[:1_000])
    early = engine.to_state()

    feed(engine, bars[1_000:])

    late = engine.to_state()
    assert shape(late) == shape(early)
    assert longest_list(late) == 200  # the SMA 200 window


def test_state_of_an_unknown_version_is_refused() -> None:
    state = IndicatorEngine("EURUSD", "M1").to_state()

    with pytest.raises(ValueError, match="version"):
        IndicatorEngine.from_state({**state, "version": 99})
