"""Time rules of the decision core: sessions, trading days, news blackouts, symbol currencies.

All functions take the instant to judge as an argument (the event's time); nothing here
reads a clock.

Session windows
    A window is `start`-`end` wall-clock time in an IANA timezone (default UTC) on the
    given weekdays. **Start is inclusive, end exclusive**: 07:00-11:00 admits 07:00:00
    and refuses 11:00:00. When `end` < `start` the window crosses midnight and belongs
    to the day it *starts* on: `22:00-02:00 Mon` covers Monday 22:00 to Tuesday 02:00.
    Wall-clock semantics make DST automatic: 07:00-11:00 Europe/London is 07:00-11:00
    UTC in winter and 06:00-10:00 UTC in summer.

Trading day
    The broker's day starts at a wall-clock time in a timezone (default 22:00 UTC). A
    day is labelled with the calendar date it mostly covers: when it starts at or after
    noon, the label is the *next* date (Sunday 22:00 UTC starts Monday's day), else the
    start date. The trading week is the ISO week of that label.

News blackout
    A high-impact event for currency C blocks from N minutes before to N minutes after
    its time, **both ends inclusive** (exactly N minutes away is blocked, N+1 is not).
    An all-day event blocks its whole UTC date, widened by N minutes on each side.
    `N = 0` switches the rule off. The currencies that matter for a symbol are its own
    currencies plus those a strategy lists in `blocked_symbols_during_news`; a symbol
    whose currencies are unknown is affected by every currency (unknown is never safe).
    A calendar that has not succeeded within its maximum age (or never) is treated as
    a blackout for every currency it covers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.core.model import CalendarEvent, CalendarStatus, fmt_decimal, require_aware

DAY_NAMES: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(Z?)$")


class InvalidTimezone(ValueError):
    """A timezone name that is not a loadable IANA zone."""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (cached); `InvalidTimezone` if it cannot be loaded."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidTimezone(f"unknown timezone {name!r}") from exc


def parse_clock(text: str) -> tuple[time, bool]:
    """`"07:00"` or `"07:00Z"` -> (07:00, is_utc_marked). `ValueError` if malformed."""
    match = _CLOCK.match(text)
    if match is None:
        raise ValueError(f"time must be HH:MM or HH:MMZ, got {text!r}")
    return time(int(match.group(1)), int(match.group(2))), bool(match.group(3))


# ----------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """A recurring trading window; see the module docstring for the edge rules."""

    start: time
    end: time
    days: frozenset[int]  # 0 = Monday ... 6 = Sunday, the day the window starts on
    tz: str = "UTC"

    def contains(self, at: datetime) -> bool:
        """Is the instant `at` inside the window (start inclusive, end exclusive)?"""
        local = require_aware(at, "at").astimezone(zone(self.tz))
        clock = local.time()
        weekday = local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return weekday in self.days
        if clock < self.end:
            return (weekday - 1) % 7 in self.days
        return False

    def describe(self) -> str:
        """Human-readable, deterministic text, e.g. `Mon,Tue 07:00-11:00 Europe/London`
        (every idea's rationale and session check quote it: made once per window)."""
        return _describe(self)


@lru_cache(maxsize=1024)
def _describe(window: SessionWindow) -> str:
    days = ",".join(DAY_NAMES[d] for d in sorted(window.days))
    return f"{days} {window.start:%H:%M}-{window.end:%H:%M} {window.tz}"


def in_session(windows: Iterable[SessionWindow], at: datetime) -> SessionWindow | None:
    """The first window containing `at`, or None when outside all of them."""
    for window in windows:
        if window.contains(at):
            return window
    return None


# -------------------------------------------------------------------------- trading day


def trading_day(at: datetime, start: time, tz: str) -> date:
    """The label of the broker trading day containing `at` (see module docstring)."""
    local = require_aware(at, "at").astimezone(zone(tz)).replace(tzinfo=None)
    shifted = local - timedelta(hours=start.hour, minutes=start.minute)
    label = shifted.date()
    if start >= time(12, 0):
        label += timedelta(days=1)
    return label


def trading_week(day: date) -> str:
    """ISO week key of a trading-day label, e.g. `2024-W14`."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# ------------------------------------------------------------------ symbol -> currencies

# Every ISO code and metal/crypto code a six-letter symbol may be made of.
KNOWN_CURRENCIES: frozenset[str] = frozenset(
    "USD EUR GBP JPY CHF CAD AUD NZD CNY CNH HKD SGD SEK NOK DKK PLN HUF CZK TRY ZAR MXN "
    "BRL INR KRW RUB ILS THB XAU XAG XPT XPD BTC ETH LTC XRP".split()
)

DEFAULT_SYMBOL_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "US30": ("USD",),
        "DJ30": ("USD",),
        "US500": ("USD",),
        "SPX500": ("USD",),
        "US100": ("USD",),
        "NAS100": ("USD",),
        "USTEC": ("USD",),
        "US2000": ("USD",),
        "USOIL": ("USD",),
        "UKOIL": ("USD",),
        "WTI": ("USD",),
        "BRENT": ("USD",),
        "XTIUSD": ("USD",),
        "XBRUSD": ("USD",),
        "NATGAS": ("USD",),
        "GER40": ("EUR",),
        "GER30": ("EUR",),
        "DE40": ("EUR",),
        "FRA40": ("EUR",),
        "EU50": ("EUR",),
        "STOXX50": ("EUR",),
        "UK100": ("GBP",),
        "JP225": ("JPY",),
        "AUS200": ("AUD",),
        "HK50": ("HKD", "CNY"),
    }
)

_SUFFIX = re.compile(r"[.\-_+#!].*$")


@lru_cache(maxsize=1024)
def _candidates(symbol: str) -> tuple[str, ...]:
    raw = symbol.strip().lstrip("#")
    stripped = _SUFFIX.sub("", raw)
    no_lower_tail = re.sub(r"[a-z]+$", "", stripped)
    ordered: list[str] = []
    for candidate in (raw, stripped, no_lower_tail):
        key = candidate.upper()
        if key and key not in ordered:
            ordered.append(key)
    return tuple(ordered)


@dataclass(frozen=True, slots=True)
class SymbolCurrencies:
    """Maps a broker symbol to the currencies whose news moves it.

    Lookup order: the alias map (exact, then with a broker suffix such as `.m`, `-ECN`
    or a lowercase tail removed), then a six-letter split of two known codes
    (`EURUSD` -> EUR, USD; `XAUUSD` -> XAU, USD). Unknown symbols give None.
    """

    aliases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: DEFAULT_SYMBOL_ALIASES
    )

    def with_aliases(self, extra: Mapping[str, Iterable[str]]) -> SymbolCurrencies:
        """A copy with `extra` aliases added (they win over existing ones)."""
        merged = dict(self.aliases)
        merged.update({k.upper(): tuple(v) for k, v in extra.items()})
        return SymbolCurrencies(MappingProxyType(merged))

    def currencies(self, symbol: str) -> frozenset[str] | None:
        """The currencies of `symbol`, or None when it is unknown."""
        candidates = _candidates(symbol)
        for key in candidates:
            if key in self.aliases:
                return frozenset(self.aliases[key])
        for key in candidates:
            base, quote = key[:3], key[3:6]
            if len(key) >= 6 and base in KNOWN_CURRENCIES and quote in KNOWN_CURRENCIES:
                return frozenset({base, quote})
        return None


DEFAULT_SYMBOLS = SymbolCurrencies()


# ------------------------------------------------------------------------ news blackout


def calendar_fresh(calendar: CalendarStatus, now: datetime, max_age: timedelta) -> bool:
    """Did the calendar feed succeed within `max_age` before `now` (age == max is fresh)?"""
    if calendar.last_success_at is None:
        return False
    return now - calendar.last_success_at <= max_age


def _event_span(event: CalendarEvent) -> tuple[datetime, datetime]:
    if not event.all_day:
        return event.event_time, event.event_time
    utc = event.event_time.astimezone(zone("UTC"))
    day_start = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return day_start, day_start + timedelta(days=1)


def blocking_events(
    events: Iterable[CalendarEvent],
    currencies: frozenset[str] | None,
    at: datetime,
    minutes: int,
) -> tuple[CalendarEvent, ...]:
    """High-impact events of `currencies` (None = any) whose +-`minutes` window holds `at`."""
    window = timedelta(minutes=minutes)
    found = [
        event
        for event in events
        if event.impact == "high"
        and (currencies is None or event.currency in currencies)
        and _event_span(event)[0] - window <= at <= _event_span(event)[1] + window
    ]
    return tuple(sorted(found, key=lambda e: (e.event_time, e.currency, e.event_id)))


@dataclass(frozen=True, slots=True)
class NewsVerdict:
    """Whether news blocks a trade at an instant, and why (`reason` is a reason code)."""

    blocked: bool
    reason: str | None  # None, "news_blackout" or "calendar_stale"
    currencies: frozenset[str] | None  # None = every currency (symbol unknown)
    events: tuple[CalendarEvent, ...]
    detail: str


def _currency_text(currencies: frozenset[str] | None) -> str:
    return "all currencies" if currencies is None else "/".join(sorted(currencies))


def relevant_currencies(
    symbol: str, extra: Iterable[str], symbols: SymbolCurrencies = DEFAULT_SYMBOLS
) -> frozenset[str] | None:
    """The symbol's own currencies plus `extra`; None when the symbol is unknown."""
    own = symbols.currencies(symbol)
    return None if own is None else own | frozenset(extra)


def news_verdict(
    symbol: str,
    extra_currencies: Iterable[str],
    minutes: int,
    calendar: CalendarStatus,
    now: datetime,
    max_age: timedelta,
    symbols: SymbolCurrencies = DEFAULT_SYMBOLS,
) -> NewsVerdict:
    """Judge the news rule for `symbol` at `now` (see the module docstring)."""
    currencies = relevant_currencies(symbol, extra_currencies, symbols)
    if minutes <= 0:
        return NewsVerdict(False, None, currencies, (), "news rule off (0 minutes)")
    covered = calendar.covered_currencies if currencies is None else (
        currencies & calendar.covered_currencies
    )
    if covered and not calendar_fresh(calendar, now, max_age):
        seen = "never" if calendar.last_success_at is None else (
            calendar.last_success_at.isoformat()
        )
        detail = (
            f"calendar stale (last success {seen}, max age "
            f"{fmt_decimal(_age_minutes(max_age))} min) for {_currency_text(covered)}"
        )
        return NewsVerdict(True, "calendar_stale", currencies, (), detail)
    events = blocking_events(calendar.events, currencies, now, minutes)
    if events:
        first = events[0]
        detail = (
            f"high-impact {first.currency} news '{first.title}' at "
            f"{first.event_time.isoformat()} within {minutes} min"
        )
        return NewsVerdict(True, "news_blackout", currencies, events, detail)
    detail = f"no high-impact {_currency_text(currencies)} news within {minutes} min"
    return NewsVerdict(False, None, currencies, (), detail)


def _age_minutes(value: timedelta) -> Decimal:
    return Decimal(int(value.total_seconds())) / Decimal(60)

