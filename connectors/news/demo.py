"""Demo headlines for `make run`, in the synthetic market's time, tagged like real ones.

One headline per half hour of market time, chosen deterministically from the
seed and the slot, so the same demo shows the same news.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from connectors.core.clock import Clock
from connectors.core.feed import Batch
from connectors.core.publish import Outgoing
from connectors.news.parse import Tagger

TOPIC = "news.items.v1"
SLOT = timedelta(minutes=30)
HEADLINES = (
    "Gold climbs as traders price in a softer Fed path",
    "Gold slips as the dollar firms ahead of payrolls",
    "Euro edges higher after upbeat eurozone sentiment survey",
    "ECB's Lagarde signals patience on further rate cuts",
    "Dow futures rise as earnings season kicks off",
    "Dow slides as Treasury yields jump",
    "FOMC minutes show officials split on timing of cuts",
    "Dollar index steadies as investors await CPI",
    "Bullion demand from central banks stays firm",
    "Wall Street opens mixed ahead of Powell testimony",
)


class DemoNewsFeed:
    """A `Feed` of synthetic headlines following the market's event time."""

    def __init__(self, event_time: Clock, captured: Clock, seed: int = 42,
                 name: str = "demo-news") -> None:
        self.name = name
        self.event_time = event_time
        self.captured = captured
        self.seed = seed
        self.tagger = Tagger()
        self._next: datetime | None = None

    def _slot(self, at: datetime) -> Outgoing:
        index = int(at.timestamp() // SLOT.total_seconds())
        rng = random.Random(self.seed * 31 + index)  # noqa: S311 - demo content
        headline = rng.choice(HEADLINES)
        symbols, currencies = self.tagger.tag(headline)
        record = {
            "item_id": f"demo-{self.seed}-{index}", "headline": headline, "source": self.name,
            "url": None, "summary": None, "symbols": symbols, "currencies": currencies,
            "published_at": at.astimezone(UTC), "captured_at": self.captured(),
        }
        return Outgoing(TOPIC, self.name, record)

    def poll(self) -> Batch:
        """Headlines of the slots the market time went through since the last poll."""
        now = self.event_time()
        start = self._next or now - 3 * SLOT
        slot = datetime.fromtimestamp(start.timestamp() // SLOT.total_seconds()
                                      * SLOT.total_seconds(), UTC)
        records: list[Outgoing] = []
        while slot <= now and len(records) < 50:
            if slot >= start:
                records.append(self._slot(slot))
            slot += SLOT
        self._next = slot
        return Batch(records=records, source="demo")
