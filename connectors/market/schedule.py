"""The synthetic world's macro calendar, shared by the synthetic market and the demo calendar.

`make run` shows a market that reacts to news: the demo calendar publishes these
events and the synthetic feed widens spreads and raises volatility around the
same minutes. Everything derives from the seed and the day, so any part of the
demo can be regenerated identically.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

NEWS_BEFORE = timedelta(minutes=2)
NEWS_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class ScheduledEvent:
    """One release of the synthetic world."""

    at: datetime
    currency: str
    title: str
    impact: str
    previous_raw: str
    forecast_raw: str
    actual_raw: str


# (hour, minute, currency, title, impact, unit, centre, step)
_TEMPLATES: tuple[tuple[int, int, str, str, str, str, float, float], ...] = (
    (12, 30, "USD", "Non-Farm Employment Change", "high", "K", 180.0, 40.0),
    (12, 30, "USD", "CPI m/m", "high", "%", 0.3, 0.1),
    (18, 0, "USD", "FOMC Statement", "high", "", 0.0, 0.0),
    (14, 0, "USD", "ISM Manufacturing PMI", "high", "", 50.0, 1.5),
    (12, 30, "USD", "Unemployment Claims", "medium", "K", 215.0, 10.0),
    (12, 15, "EUR", "Main Refinancing Rate", "high", "%", 4.25, 0.25),
    (9, 0, "EUR", "German ZEW Economic Sentiment", "medium", "", 12.0, 5.0),
    (9, 0, "EUR", "CPI Flash Estimate y/y", "high", "%", 2.4, 0.2),
    (1, 30, "AUD", "Cash Rate", "medium", "%", 4.35, 0.25),
)


def _fmt(value: float, unit: str) -> str:
    if unit == "K":
        return f"{value:.0f}K"
    if unit == "%":
        return f"{value:.2f}%" if abs(value) >= 1 else f"{value:.1f}%"
    return f"{value:.1f}"


def _event(day: date, template: tuple[int, int, str, str, str, str, float, float],
           rng: random.Random) -> ScheduledEvent:
    hour, minute, currency, title, impact, unit, centre, step = template
    previous = centre + rng.uniform(-step, step)
    forecast = previous + rng.uniform(-step, step) / 2
    actual = forecast + rng.gauss(0, step)
    if not unit and centre == 0.0:  # statements have no numbers
        return ScheduledEvent(datetime.combine(day, time(hour, minute), UTC), currency, title,
                              impact, "", "", "")
    return ScheduledEvent(
        at=datetime.combine(day, time(hour, minute), UTC), currency=currency, title=title,
        impact=impact, previous_raw=_fmt(previous, unit), forecast_raw=_fmt(forecast, unit),
        actual_raw=_fmt(actual, unit),
    )


class DemoSchedule:
    """Deterministic releases per day: two to four on a weekday, none on weekends."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._cache: dict[date, tuple[ScheduledEvent, ...]] = {}

    def events_on(self, day: date) -> tuple[ScheduledEvent, ...]:
        """The releases of one UTC day, sorted by time."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        events: tuple[ScheduledEvent, ...] = ()
        if day.weekday() < 5:
            rng = random.Random(self.seed * 1_000_003 + day.toordinal())  # noqa: S311
            usd_high = [t for t in _TEMPLATES if t[2] == "USD" and t[4] == "high"]
            others = [t for t in _TEMPLATES if t not in usd_high]
            chosen = rng.sample(usd_high, 1 + rng.randrange(2)) + rng.sample(others, 2)
            events = tuple(sorted((_event(day, t, rng) for t in chosen), key=lambda e: e.at))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[day] = events
        return events

    def between(self, start: datetime, end: datetime) -> list[ScheduledEvent]:
        """Releases with `start <= at < end`."""
        out: list[ScheduledEvent] = []
        day = start.astimezone(UTC).date()
        while datetime.combine(day, time(0), UTC) < end:
            out.extend(e for e in self.events_on(day) if start <= e.at < end)
            day += timedelta(days=1)
        return out

    def news_intensity(self, at: datetime, currencies: tuple[str, ...]) -> float:
        """1.0 normally; higher around a release that concerns one of `currencies`."""
        factor = 1.0
        for event in self.events_on(at.astimezone(UTC).date()):
            if event.currency not in currencies:
                continue
            if event.at - NEWS_BEFORE <= at < event.at + NEWS_AFTER:
                factor = max(factor, 4.0 if event.impact == "high" else 2.0)
        return factor
