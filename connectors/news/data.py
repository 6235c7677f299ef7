"""RSS/Atom polling feeds with dedupe on the item id (guid, else link).

The seen-set is bounded (the most recent ids), which is enough because feeds
only ever show their latest items.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from connectors.core.clock import Clock
from connectors.core.feed import Batch
from connectors.core.http import HttpFetcher
from connectors.core.publish import Outgoing, Rejected
from connectors.news.parse import Tagger, parse_feed

TOPIC = "news.items.v1"


class SeenIds:
    """A bounded set of ids, oldest forgotten first."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, item_id: str) -> bool:
        """True if the id is new."""
        if item_id in self._ids:
            self._ids.move_to_end(item_id)
            return False
        self._ids[item_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)
        return True


class RssFeed:
    """The `Feed` of one RSS/Atom URL."""

    def __init__(self, name: str, url: str, clock: Clock, tagger: Tagger | None = None,
                 fetcher: HttpFetcher | None = None) -> None:
        self.name = name
        self.url = url
        self.clock = clock
        self.tagger = tagger or Tagger()
        self.fetcher = fetcher or HttpFetcher()
        self.seen = SeenIds()

    def poll(self) -> Batch:
        """New items since the last poll; items without a headline as rejects."""
        got = self.fetcher.get(self.url)
        parsed = parse_feed(got.body, self.name, self.clock(), self.tagger)
        fresh: list[dict[str, Any]] = [i for i in parsed.items if self.seen.add(i["item_id"])]
        rejects = [(raw, err) for raw, err in parsed.rejects
                   if self.seen.add("reject:" + hashlib.sha256(raw).hexdigest())]
        return Batch(
            records=[Outgoing(TOPIC, self.name, item) for item in fresh],
            rejects=[Rejected(TOPIC, raw, err, self.url, key=self.name) for raw, err in rejects],
            source=self.url,
        )
