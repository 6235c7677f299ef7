"""Strategy definitions: a strict JSON Schema, parsing, hashing, and matching against indicators.

A strategy is data (blueprint §5.1.1), validated by `strategy_schema.json`
(`additionalProperties: false` everywhere) and a few cross-field rules. A malformed
definition is refused by `parse_strategy` with a `StrategyError` listing
`(json_path, message)` pairs, e.g. `$.entry_conditions.rsi_below: 140 is greater than
the maximum of 100`; it never reaches `evaluate`, which therefore cannot crash on it.

Vocabulary
==========

Top level: `id` (lowercase UUID), `name`, `version` (>= 1), `is_active`,
`allowed_symbols` (exact broker symbols), `session_windows`, `entry_conditions`,
`exit_rules`, `forbidden_conditions`, `risk_caps`, `rr_expectation`; optional
`timeframes` (M1 M5 M15 M30 H1 H4 D1; absent = any) and `approval_ttl_minutes`.

`session_windows`: `[{"start": "07:00", "end": "11:00", "days": ["Mon", ...],
"tz": "Europe/London", "name": "London"}]`. `"07:00Z"` means UTC. Start inclusive, end
exclusive, `end < start` crosses midnight, `start == end` is refused (use two
windows for a full day). See `streams.core.calendar`.

`entry_conditions` (all must hold; an indicator that is not available fails its
condition): `direction` (required, `buy`/`sell`) and

==========================  =====================================================
`trend_alignment`           `bullish`: sma_50 > sma_200; `bearish`: sma_50 < sma_200
`rsi_below` / `rsi_above`   rsi_14 < value / rsi_14 > value (0..100)
`macd_cross`                `up`: prev_macd_hist <= 0 < macd_hist;
                            `down`: prev_macd_hist >= 0 > macd_hist
`macd_hist_sign`            `positive`: macd_hist > 0; `negative`: macd_hist < 0
`price_vs_sma50`            `above`: close > sma_50; `below`: close < sma_50
`price_vs_sma200`           same against sma_200
`atr_min` / `atr_max`       atr_14 >= value / atr_14 <= value (price units)
`pct_move_today_min`/`_max` pct_move_today >= value / <= value (percent)
`spread_max`                spread <= value (price units)
`spread_max_atr`            spread <= value * atr_14
`near_swing_low_atr`        abs(close - swing_low) <= value * atr_14
`near_swing_high_atr`       abs(swing_high - close) <= value * atr_14
`higher_timeframe_trend`    `{"timeframe": "H1", "trend": "bullish"}`: the
                            trend_alignment of that timeframe's indicators
==========================  =====================================================

`entry_conditions.nice_to_have`: the same conditions (no `direction`); they never gate a
match, each one met raises the confidence score (§14.1).

`exit_rules`: `stop_loss` is `{"type": "atr", "multiple": 1.5}` (entry -/+ 1.5 x ATR)
or `{"type": "swing", "offset": 0.5, "offset_atr": 0}` (buy: swing_low - offset;
sell: swing_high + offset; offset = offset + offset_atr x ATR); `take_profit_rr`:
increasing multiples of the stop distance, one take-profit each;
`time_limit_minutes` -> `expected_hold` (`scalp_30m` up to 60 min, `intraday_4h` below
a day, `swing_1d` from a day).

`forbidden_conditions`: `block_high_impact_news_minutes` (required; 0 = off) blocks from
N minutes before to N minutes after a high-impact event of the symbol's currencies or
of `blocked_symbols_during_news` (currency codes), both ends inclusive.

`risk_caps`: `max_lot_size`, `max_concurrent_positions`, optional `lot_size` (the lots an
idea proposes; default `max_lot_size`, rounded down to the 0.01 step).

Evaluation
==========

`evaluate(strategy, indicators, context)` judges the candle at its **close**
(`open_time + timeframe`, see `decision_time`): that is the first instant a trade can
be placed, so session and news rules are judged then and the idea's `created_at` is
that instant. The idea id is `uuid5(strategy id | symbol | timeframe | open_time)`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator

from streams.core.calendar import (
    DAY_NAMES,
    DEFAULT_SYMBOLS,
    InvalidTimezone,
    SessionWindow,
    SymbolCurrencies,
    in_session,
    news_verdict,
    parse_clock,
    zone,
)
from streams.core.ids import uuid5_text
from streams.core.market import TIMEFRAMES, IndicatorValues
from streams.core.model import (
    DEFAULT_CALENDAR_MAX_AGE,
    LOT_STEP,
    CalendarStatus,
    Direction,
    TradeIdea,
    finite,
    fmt_decimal,
    fmt_price,
    lots_cap,
    lots_floor,
)

SCHEMA: Mapping[str, Any] = json.loads(
    resources.files("streams.core").joinpath("strategy_schema.json").read_text("utf-8")
)
_VALIDATOR = Draft202012Validator(SCHEMA)
_MAX_DEPTH = 32

IDEA_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ai-trader.local/trade-ideas")


# ------------------------------------------------------------------------------ errors


class StrategyError(ValueError):
    """A strategy definition refused; `errors` lists `(json_path, message)` pairs."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors: tuple[tuple[str, str], ...] = tuple(errors)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.errors))


def _path(parts: Sequence[str | int]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _json_problems(obj: object) -> list[tuple[str, str]]:
    """Values JSON cannot carry (NaN, infinities, non-JSON types, too deep), iteratively."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[object, tuple[str | int, ...]]] = [(obj, ())]
    while stack:
        value, parts = stack.pop()
        if len(parts) > _MAX_DEPTH:
            problems.append((_path(parts), f"nested deeper than {_MAX_DEPTH} levels"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append((_path(parts), f"key {key!r} is not a string"))
                else:
                    stack.append((item, (*parts, key)))
        elif isinstance(value, list):
            stack.extend((item, (*parts, i)) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((_path(parts), f"{value!r} is not a finite number"))
        elif value is not None and not isinstance(value, str | int | float | bool):
            problems.append((_path(parts), f"{type(value).__name__} is not a JSON value"))
    return problems


def _schema_problems(obj: object) -> list[tuple[str, str]]:
    return [(error.json_path, error.message) for error in _VALIDATOR.iter_errors(obj)]


# --------------------------------------------------------------------- semantic checks


def _session_problems(windows: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for i, window in enumerate(windows):
        here = f"$.session_windows[{i}]"
        tz = window.get("tz", "UTC")
        try:
            zone(tz)
        except InvalidTimezone:
            yield f"{here}.tz", f"unknown IANA timezone {tz!r}"
        start, start_utc = parse_clock(window["start"])
        end, end_utc = parse_clock(window["end"])
        if (start_utc or end_utc) and tz != "UTC":
            yield here, f"'Z' times are UTC but tz is {tz!r}"
        if start == end:
            yield here, "start equals end; use two windows for a full day"


def _range_problems(conditions: dict[str, Any], here: str) -> Iterator[tuple[str, str]]:
    pairs = (
        ("rsi_above", "rsi_below", True),
        ("atr_min", "atr_max", False),
        ("pct_move_today_min", "pct_move_today_max", False),
    )
    for low, high, strict in pairs:
        if low in conditions and high in conditions:
            a, b = conditions[low], conditions[high]
            if a > b or (strict and a == b):
                yield here, f"{low} ({a}) and {high} ({b}) can never both hold"


_STOP_FIELDS = {"atr": {"type", "multiple"}, "swing": {"type", "offset", "offset_atr"}}


def _exit_problems(exit_rules: dict[str, Any]) -> Iterator[tuple[str, str]]:
    stop = exit_rules["stop_loss"]
    for name in sorted(set(stop) - _STOP_FIELDS[stop["type"]]):
        yield f"$.exit_rules.stop_loss.{name}", f"not used by a {stop['type']!r} stop"
    targets = exit_rules["take_profit_rr"]
    if any(b <= a for a, b in zip(targets, targets[1:], strict=False)):
        yield "$.exit_rules.take_profit_rr", f"{targets} must be strictly increasing"


def _cap_problems(caps: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if lots_cap(caps["max_lot_size"]) < LOT_STEP:
        yield "$.risk_caps.max_lot_size", f"{caps['max_lot_size']} is below the lot step 0.01"
    lot = caps.get("lot_size")
    if lot is None:
        return
    if lots_floor(lot) < LOT_STEP:
        yield "$.risk_caps.lot_size", f"{lot} is below the lot step 0.01"
    elif lots_floor(lot) > lots_cap(caps["max_lot_size"]):
        yield "$.risk_caps.lot_size", f"{lot} is greater than max_lot_size {caps['max_lot_size']}"


def _semantic_problems(obj: dict[str, Any]) -> list[tuple[str, str]]:
    entry = obj["entry_conditions"]
    problems = list(_session_problems(obj["session_windows"]))
    problems += _range_problems(entry, "$.entry_conditions")
    problems += _range_problems(entry.get("nice_to_have", {}), "$.entry_conditions.nice_to_have")
    if set(entry) <= {"direction", "nice_to_have"}:
        problems.append(("$.entry_conditions", "needs at least one condition besides direction"))
    problems += _exit_problems(obj["exit_rules"])
    problems += _cap_problems(obj["risk_caps"])
    return problems


# ----------------------------------------------------------------------- parsed model


@dataclass(frozen=True, slots=True)
class Condition:
    """One vocabulary condition and its parameter (a JSON value)."""

    name: str
    param: Any


@dataclass(frozen=True, slots=True)
class StopRule:
    """How the stop-loss is placed: `atr` (multiple x ATR) or `swing` (swing -/+ offset)."""

    kind: Literal["atr", "swing"]
    multiple: float = 0.0
    offset: float = 0.0
    offset_atr: float = 0.0

    def describe(self) -> str:
        """Deterministic text for rationales."""
        if self.kind == "atr":
            return f"{fmt_price(self.multiple)} x ATR"
        return f"swing -/+ ({fmt_price(self.offset)} + {fmt_price(self.offset_atr)} x ATR)"


def expected_hold(minutes: int) -> str:
    """`30 -> scalp_30m`, `240 -> intraday_4h`, `1440 -> swing_1d` (blueprint's labels)."""
    if minutes % 1440 == 0:
        duration = f"{minutes // 1440}d"
    elif minutes % 60 == 0:
        duration = f"{minutes // 60}h"
    else:
        duration = f"{minutes}m"
    style = "scalp" if minutes <= 60 else "intraday" if minutes < 1440 else "swing"
    return f"{style}_{duration}"


@dataclass(frozen=True, slots=True)
class ExitRules:
    """Stop rule, take-profit RR multiples and the intended hold."""

    stop: StopRule
    take_profit_rr: tuple[float, ...]
    time_limit_minutes: int

    @property
    def expected_hold(self) -> str:
        """The hold label derived from `time_limit_minutes`."""
        return expected_hold(self.time_limit_minutes)


@dataclass(frozen=True, slots=True)
class NewsRule:
    """`block_high_impact_news_minutes` and the extra currencies it applies to."""

    block_minutes: int
    currencies: frozenset[str]


@dataclass(frozen=True, slots=True)
class RiskCaps:
    """Per-strategy caps; `lot_size` is what its ideas propose (already on the lot step)."""

    max_lot_size: Decimal
    max_concurrent_positions: int
    lot_size: Decimal


@dataclass(frozen=True, slots=True)
class Strategy:
    """A validated strategy definition; build it only through `parse_strategy`."""

    strategy_id: str
    name: str
    version: int
    is_active: bool
    allowed_symbols: tuple[str, ...]
    timeframes: tuple[str, ...]  # empty = any timeframe
    sessions: tuple[SessionWindow, ...]
    direction: Direction
    conditions: tuple[Condition, ...]
    nice_to_have: tuple[Condition, ...]
    exit: ExitRules
    news: NewsRule
    caps: RiskCaps
    rr_expectation: float
    approval_ttl_minutes: int | None
    definition_hash: str
    canonical_json: str

    def allows_symbol(self, symbol: str) -> bool:
        """Is `symbol` one of `allowed_symbols` (exact match)?"""
        return symbol in self.allowed_symbols

    def allows_timeframe(self, timeframe: str) -> bool:
        """Is `timeframe` allowed (any when `timeframes` is empty)?"""
        return not self.timeframes or timeframe in self.timeframes

    def definition(self) -> dict[str, Any]:
        """The definition as a fresh dict (what was validated and hashed)."""
        parsed: dict[str, Any] = json.loads(self.canonical_json)
        return parsed


def _normalize_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8, integral floats written as integers."""
    return json.dumps(
        _normalize_numbers(obj),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def definition_hash(obj: Any) -> str:
    """sha256 hex of the canonical JSON of a strategy definition (for audit)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def _session(window: dict[str, Any]) -> SessionWindow:
    start, _ = parse_clock(window["start"])
    end, _ = parse_clock(window["end"])
    days = frozenset(DAY_NAMES.index(day) for day in window["days"])
    return SessionWindow(start=start, end=end, days=days, tz=window.get("tz", "UTC"))


def _conditions(block: dict[str, Any]) -> tuple[Condition, ...]:
    skip = {"direction", "nice_to_have"}
    return tuple(Condition(k, block[k]) for k in sorted(block) if k not in skip)


def _stop(rule: dict[str, Any]) -> StopRule:
    return StopRule(
        kind=rule["type"],
        multiple=float(rule.get("multiple", 0.0)),
        offset=float(rule.get("offset", 0.0)),
        offset_atr=float(rule.get("offset_atr", 0.0)),
    )


def _build(obj: dict[str, Any]) -> Strategy:
    entry = obj["entry_conditions"]
    caps = obj["risk_caps"]
    forbidden = obj["forbidden_conditions"]
    exit_rules = obj["exit_rules"]
    canonical = canonical_json(obj)
    return Strategy(
        strategy_id=obj["id"],
        name=obj["name"],
        version=int(obj["version"]),
        is_active=obj["is_active"],
        allowed_symbols=tuple(obj["allowed_symbols"]),
        timeframes=tuple(obj.get("timeframes", ())),
        sessions=tuple(_session(w) for w in obj["session_windows"]),
        direction=entry["direction"],
        conditions=_conditions(entry),
        nice_to_have=_conditions(entry.get("nice_to_have", {})),
        exit=ExitRules(
            stop=_stop(exit_rules["stop_loss"]),
            take_profit_rr=tuple(float(v) for v in exit_rules["take_profit_rr"]),
            time_limit_minutes=int(exit_rules["time_limit_minutes"]),
        ),
        news=NewsRule(
            block_minutes=int(forbidden["block_high_impact_news_minutes"]),
            currencies=frozenset(forbidden.get("blocked_symbols_during_news", ())),
        ),
        caps=RiskCaps(
            max_lot_size=lots_cap(caps["max_lot_size"]),
            max_concurrent_positions=int(caps["max_concurrent_positions"]),
            lot_size=lots_floor(caps.get("lot_size", caps["max_lot_size"])),
        ),
        rr_expectation=float(obj["rr_expectation"]),
        approval_ttl_minutes=(
            None if obj.get("approval_ttl_minutes") is None else int(obj["approval_ttl_minutes"])
        ),
        definition_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        canonical_json=canonical,
    )


def parse_strategy(obj: object) -> Strategy:
    """Validate a decoded JSON strategy definition and build a `Strategy`.

    Raises `StrategyError` (never anything else) with every problem found, sorted by
    JSON path: first values JSON cannot carry, then schema violations, then the
    cross-field rules (timezones, ranges that can never hold, increasing take-profits,
    lot sizes against the lot step and the cap).
    """
    try:
        problems = _json_problems(obj)
        if not problems:
            problems = _schema_problems(obj)
        if not problems and isinstance(obj, dict):
            problems = _semantic_problems(obj)
        if problems:
            raise StrategyError(sorted(set(problems)))
        assert isinstance(obj, dict)  # noqa: S101 - guaranteed by the schema's "type": "object"
        return _build(obj)
    except StrategyError:
        raise
    except (RecursionError, ValueError, TypeError, ArithmeticError) as exc:
        raise StrategyError([("$", f"cannot be read as a strategy: {exc}")]) from exc


def parse_strategy_json(text: str | bytes) -> Strategy:
    """`parse_strategy` of JSON text; NaN/Infinity literals and bad JSON are refused."""

    def _refuse(constant: str) -> Any:
        raise StrategyError([("$", f"{constant} is not valid JSON")])

    try:
        obj = json.loads(text, parse_constant=_refuse)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise StrategyError([("$", f"not valid JSON: {exc}")]) from exc
    return parse_strategy(obj)


# ------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """What strategy evaluation needs besides the indicators.

    `calendar_max_age` should be the risk config's, so the evaluation and the gate agree
    on when the calendar is stale. `higher_timeframes` maps a timeframe (e.g. "H1") to
    its latest indicators for `higher_timeframe_trend`.
    """

    calendar: CalendarStatus = field(default_factory=CalendarStatus)
    calendar_max_age: timedelta = DEFAULT_CALENDAR_MAX_AGE
    higher_timeframes: Mapping[str, IndicatorValues] = field(default_factory=dict)
    symbols: SymbolCurrencies = DEFAULT_SYMBOLS
    snapshot_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something did not happen: a stable `code` and a deterministic `detail`."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ConditionOutcome:
    """One condition judged against the indicators."""

    name: str
    met: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Match:
    """The strategy matched: `idea` plus how each condition and nice-to-have fared."""

    idea: TradeIdea
    conditions: tuple[ConditionOutcome, ...]
    nice_to_have: tuple[ConditionOutcome, ...]


@dataclass(frozen=True, slots=True)
class NoMatch:
    """The strategy did not match; every reason found, in a fixed order."""

    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes, e.g. `("outside_session", "condition_not_met")`."""
        return tuple(reason.code for reason in self.reasons)


def decision_time(indicators: IndicatorValues) -> datetime:
    """The candle's close (`open_time + timeframe`): the event time of its evaluation."""
    return indicators.open_time + TIMEFRAMES[indicators.timeframe]


def _trend(indicators: IndicatorValues) -> str | None:
    fast, slow = finite(indicators.sma_50), finite(indicators.sma_200)
    if fast is None or slow is None:
        return None
    return "bullish" if fast > slow else "bearish" if fast < slow else "flat"


Outcome = tuple[bool, str]
Evaluator = Callable[[Any, IndicatorValues, EvaluationContext], Outcome]


def _missing(name: str, *fields: str) -> Outcome:
    return False, f"{name}: {'/'.join(fields)} not available"


def _c_trend(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    trend = _trend(ind)
    if trend is None:
        return _missing("trend_alignment", "sma_50", "sma_200")
    fast, slow = fmt_price(ind.sma_50 or 0.0), fmt_price(ind.sma_200 or 0.0)
    detail = f"trend {trend}: SMA50 {fast} vs SMA200 {slow}"
    return trend == param, f"{detail} (want {param})"


def _c_rsi_below(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    rsi = finite(ind.rsi_14)
    if rsi is None:
        return _missing("rsi_below", "rsi_14")
    return rsi < param, f"RSI(14) {rsi:.2f} {'<' if rsi < param else '>='} {param}"


def _c_rsi_above(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    rsi = finite(ind.rsi_14)
    if rsi is None:
        return _missing("rsi_above", "rsi_14")
    return rsi > param, f"RSI(14) {rsi:.2f} {'>' if rsi > param else '<='} {param}"


def _c_macd_cross(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    prev, hist = finite(ind.prev_macd_hist), finite(ind.macd_hist)
    if prev is None or hist is None:
        return _missing("macd_cross", "prev_macd_hist", "macd_hist")
    met = prev <= 0 < hist if param == "up" else prev >= 0 > hist
    return met, f"MACD hist {fmt_price(prev)} -> {fmt_price(hist)} (want cross {param})"


def _c_macd_sign(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    hist = finite(ind.macd_hist)
    if hist is None:
        return _missing("macd_hist_sign", "macd_hist")
    met = hist > 0 if param == "positive" else hist < 0
    return met, f"MACD hist {fmt_price(hist)} (want {param})"


def _price_vs(name: str, sma: float | None, param: Any, close: float) -> Outcome:
    level = finite(sma)
    if level is None:
        return _missing(f"price_vs_{name}", name)
    met = close > level if param == "above" else close < level
    return met, f"close {fmt_price(close)} vs {name.upper()} {fmt_price(level)} (want {param})"


def _c_vs_sma50(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _price_vs("sma50", ind.sma_50, param, ind.close)


def _c_vs_sma200(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _price_vs("sma200", ind.sma_200, param, ind.close)


def _bound(name: str, value: float | None, label: str, param: Any, lower: bool) -> Outcome:
    actual = finite(value)
    if actual is None:
        return _missing(name, label)
    met = actual >= param if lower else actual <= param
    return met, f"{label} {fmt_price(actual)} {'>=' if lower else '<='} {param}: {met}"


def _c_atr_min(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _bound("atr_min", ind.atr_14, "atr_14", param, lower=True)


def _c_atr_max(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _bound("atr_max", ind.atr_14, "atr_14", param, lower=False)


def _c_pct_min(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _bound("pct_move_today_min", ind.pct_move_today, "pct_move_today", param, True)


def _c_pct_max(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _bound("pct_move_today_max", ind.pct_move_today, "pct_move_today", param, False)


def _c_spread_max(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _bound("spread_max", ind.spread, "spread", param, lower=False)


def _c_spread_atr(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    atr, spread = finite(ind.atr_14), finite(ind.spread)
    if atr is None or spread is None:
        return _missing("spread_max_atr", "spread", "atr_14")
    limit = param * atr
    return spread <= limit, f"spread {fmt_price(spread)} vs {param} x ATR = {fmt_price(limit)}"


def _near(name: str, level: float | None, param: Any, ind: IndicatorValues) -> Outcome:
    swing, atr = finite(level), finite(ind.atr_14)
    label = name.removeprefix("near_").removesuffix("_atr")
    if swing is None or atr is None:
        return _missing(name, label, "atr_14")
    distance = abs(ind.close - swing)
    limit = param * atr
    detail = (
        f"close {fmt_price(ind.close)} is {fmt_price(distance)} from {label} {fmt_price(swing)}"
    )
    return distance <= limit, f"{detail} (limit {param} x ATR = {fmt_price(limit)})"


def _c_near_low(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _near("near_swing_low_atr", ind.swing_low, param, ind)


def _c_near_high(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    return _near("near_swing_high_atr", ind.swing_high, param, ind)


def _c_htf_trend(param: Any, ind: IndicatorValues, ctx: EvaluationContext) -> Outcome:
    timeframe, want = param["timeframe"], param["trend"]
    higher = ctx.higher_timeframes.get(timeframe)
    if higher is None:
        return False, f"higher_timeframe_trend: no {timeframe} indicators"
    trend = _trend(higher)
    if trend is None:
        return _missing("higher_timeframe_trend", f"{timeframe} sma_50", "sma_200")
    return trend == want, f"{timeframe} trend {trend} (want {want})"


EVALUATORS: Mapping[str, Evaluator] = {
    "trend_alignment": _c_trend,
    "rsi_below": _c_rsi_below,
    "rsi_above": _c_rsi_above,
    "macd_cross": _c_macd_cross,
    "macd_hist_sign": _c_macd_sign,
    "price_vs_sma50": _c_vs_sma50,
    "price_vs_sma200": _c_vs_sma200,
    "atr_min": _c_atr_min,
    "atr_max": _c_atr_max,
    "pct_move_today_min": _c_pct_min,
    "pct_move_today_max": _c_pct_max,
    "spread_max": _c_spread_max,
    "spread_max_atr": _c_spread_atr,
    "near_swing_low_atr": _c_near_low,
    "near_swing_high_atr": _c_near_high,
    "higher_timeframe_trend": _c_htf_trend,
}


def evaluate_conditions(
    conditions: Sequence[Condition], indicators: IndicatorValues, context: EvaluationContext
) -> tuple[ConditionOutcome, ...]:
    """Judge each condition; a missing or non-finite indicator value fails it."""
    outcomes = []
    for condition in conditions:
        met, detail = EVALUATORS[condition.name](condition.param, indicators, context)
        outcomes.append(ConditionOutcome(condition.name, met, detail))
    return tuple(outcomes)


@functools.lru_cache(maxsize=1024)
def idea_id_for(strategy_id: str, symbol: str, timeframe: str, open_time: datetime) -> str:
    """Deterministic idea id: uuid5 over strategy id, symbol, timeframe and candle open time.

    Cached: the market agent derives each idea twice (live, then from its bundle). Equal
    datetimes are the same instant, whose UTC text is the same, so a hit is exact.
    """
    key = f"{strategy_id}|{symbol}|{timeframe}|{open_time.astimezone(zone('UTC')).isoformat()}"
    return uuid5_text(IDEA_NAMESPACE, key)


def _input_reasons(strategy: Strategy, ind: IndicatorValues) -> list[Reason]:
    if ind.timeframe not in TIMEFRAMES:
        return [Reason("invalid_indicators", f"unknown timeframe {ind.timeframe!r}")]
    if ind.open_time.tzinfo is None or ind.open_time.utcoffset() is None:
        return [Reason("invalid_indicators", "open_time has no timezone")]
    if finite(ind.close) is None or ind.close <= 0:
        return [Reason("invalid_indicators", f"close {ind.close!r} is not a positive number")]
    return []


def _rule_reasons(
    strategy: Strategy, ind: IndicatorValues, ctx: EvaluationContext, at: datetime
) -> list[Reason]:
    reasons = []
    if not strategy.is_active:
        reasons.append(Reason("strategy_inactive", f"{strategy.name} is not active"))
    if not strategy.allows_symbol(ind.symbol):
        reasons.append(Reason("symbol_not_allowed", f"{ind.symbol} is not in allowed_symbols"))
    if not strategy.allows_timeframe(ind.timeframe):
        reasons.append(Reason("timeframe_not_allowed", f"{ind.timeframe} is not in timeframes"))
    if in_session(strategy.sessions, at) is None:
        reasons.append(Reason("outside_session", f"{at.isoformat()} is outside every session"))
    verdict = news_verdict(
        ind.symbol, strategy.news.currencies, strategy.news.block_minutes,
        ctx.calendar, at, ctx.calendar_max_age, ctx.symbols,
    )
    if verdict.blocked and verdict.reason is not None:
        reasons.append(Reason(verdict.reason, verdict.detail))
    return reasons


def _stop_level(strategy: Strategy, ind: IndicatorValues) -> float | Reason:
    stop, buy = strategy.exit.stop, strategy.direction == "buy"
    atr = finite(ind.atr_14)
    if stop.kind == "atr":
        if atr is None:
            return Reason("invalid_levels", "ATR stop needs atr_14")
        distance = stop.multiple * atr
        return ind.close - distance if buy else ind.close + distance
    swing = finite(ind.swing_low if buy else ind.swing_high)
    if swing is None or (stop.offset_atr > 0 and atr is None):
        return Reason("invalid_levels", "swing stop needs swing_low/swing_high and atr_14")
    offset = stop.offset + stop.offset_atr * (atr or 0.0)
    return swing - offset if buy else swing + offset


def _levels(strategy: Strategy, ind: IndicatorValues) -> tuple[float, tuple[float, ...]] | Reason:
    stop = _stop_level(strategy, ind)
    if isinstance(stop, Reason):
        return stop
    sign = 1.0 if strategy.direction == "buy" else -1.0
    risk = (ind.close - stop) * sign
    if not (math.isfinite(risk) and risk > 0):
        detail = f"stop {fmt_price(stop)} is not beyond entry {fmt_price(ind.close)}"
        return Reason("invalid_levels", detail)
    targets = tuple(round(ind.close + sign * rr * risk, 6) for rr in strategy.exit.take_profit_rr)
    if any(t <= 0 or not math.isfinite(t) for t in targets):
        return Reason("invalid_levels", f"take-profit {targets} not positive")
    return round(stop, 6), targets


def _bullets(
    strategy: Strategy,
    ind: IndicatorValues,
    at: datetime,
    levels: tuple[float, tuple[float, ...]],
    parts: tuple[tuple[ConditionOutcome, ...], tuple[ConditionOutcome, ...], str],
) -> tuple[str, ...]:
    conditions, nice, news_detail = parts
    stop, targets = levels
    window = in_session(strategy.sessions, at)
    lines = [f"{strategy.name} v{strategy.version}: {strategy.direction} {ind.symbol} "
             f"{ind.timeframe} at {fmt_price(ind.close)}"]
    lines += [o.detail for o in conditions]
    lines += [f"confluence: {o.detail}" for o in nice if o.met]
    lines.append(f"in session {window.describe() if window else '?'}")
    lines.append(news_detail)
    rr = ", ".join(fmt_price(v) for v in strategy.exit.take_profit_rr)
    lines.append(
        f"stop {fmt_price(stop)} ({strategy.exit.stop.describe()}), take-profit "
        f"{', '.join(fmt_price(t) for t in targets)} (RR {rr}), hold {strategy.exit.expected_hold}"
    )
    lines.append(f"{fmt_decimal(strategy.caps.lot_size)} lots")
    return tuple(lines)


def evaluate(
    strategy: Strategy, indicators: IndicatorValues, context: EvaluationContext
) -> Match | NoMatch:
    """Match `strategy` against the indicators of one closed candle.

    Returns `NoMatch` with every reason found (inactive, symbol/timeframe not allowed,
    outside session, news blackout or stale calendar, each failed condition, levels that
    cannot be placed), else a `Match` whose idea carries entry (the close), stop,
    take-profits, hold, lots, strategy id/version/hash and rationale bullets.
    """
    reasons = _input_reasons(strategy, indicators)
    if reasons:
        return NoMatch(tuple(reasons))
    at = decision_time(indicators)
    reasons = _rule_reasons(strategy, indicators, context, at)
    conditions = evaluate_conditions(strategy.conditions, indicators, context)
    reasons += [Reason("condition_not_met", o.detail) for o in conditions if not o.met]
    levels = _levels(strategy, indicators)
    if isinstance(levels, Reason):
        reasons.append(levels)
    if reasons or isinstance(levels, Reason):
        return NoMatch(tuple(reasons))
    nice = evaluate_conditions(strategy.nice_to_have, indicators, context)
    news = news_verdict(
        indicators.symbol, strategy.news.currencies, strategy.news.block_minutes,
        context.calendar, at, context.calendar_max_age, context.symbols,
    )
    idea = TradeIdea(
        idea_id=idea_id_for(
            strategy.strategy_id, indicators.symbol, indicators.timeframe, indicators.open_time
        ),
        symbol=indicators.symbol,
        timeframe=indicators.timeframe,
        direction=strategy.direction,
        entry_price=round(indicators.close, 6),
        stop_loss=levels[0],
        take_profit=levels[1],
        lot_size=strategy.caps.lot_size,
        expected_hold=strategy.exit.expected_hold,
        time_limit_minutes=strategy.exit.time_limit_minutes,
        strategy_id=strategy.strategy_id,
        strategy_version=strategy.version,
        strategy_hash=strategy.definition_hash,
        rationale_bullets=_bullets(
            strategy, indicators, at, levels, (conditions, nice, news.detail)
        ),
        created_at=at,
        candle_open_time=indicators.open_time,
        snapshot_ref=context.snapshot_ref,
    )
    return Match(idea=idea, conditions=conditions, nice_to_have=nice)
