"""The one feed interface and the loop that runs any feed.

A feed only knows how to `poll()` its source and turn what it got into catalog
records (and rejects). The runner owns everything else, identically for every
feed: the interval, bounded jittered backoff on errors, dead letters for
malformed items (the feed never stops for one), and a `feeds.health.v1` record.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from connectors.core.backoff import Backoff
from connectors.core.clock import Clock
from connectors.core.health import Health
from connectors.core.publish import FeedPublisher, Outgoing, Producer, Rejected

log = logging.getLogger(__name__)

HEALTH_TOPIC = "feeds.health.v1"


@dataclass
class Batch:
    """What one poll produced. `wait` overrides the feed's interval (paced replays)."""

    records: list[Outgoing] = field(default_factory=list)
    rejects: list[Rejected] = field(default_factory=list)
    wait: float | None = None
    done: bool = False  # a finite source (a file) is exhausted
    source: str = ""


class Feed(Protocol):
    """A source of catalog records. `poll` raises on a failed fetch (the runner backs off)."""

    name: str

    def poll(self) -> Batch: ...


class FeedRunner:
    """Runs one feed: poll, publish, dead-letter, report health, wait, repeat."""

    def __init__(
        self,
        feed: Feed,
        producer: Producer,
        clock: Clock,
        interval: float,
        backoff: Backoff | None = None,
        health_every: float = 10.0,
        world: Clock | None = None,
    ) -> None:
        self.feed = feed
        self.producer = producer
        self.publisher = FeedPublisher(producer, feed.name)
        self.clock = clock
        self.interval = interval
        self.backoff = backoff or Backoff(base=min(1.0, interval) if interval > 0 else 1.0,
                                          cap=max(interval, 60.0))
        self.health = Health(feed.name, clock, world)
        self.health_every = health_every
        self._health_sent_at: datetime | None = None
        self.done = False

    def step(self) -> float:
        """One poll; returns the seconds to wait before the next."""
        try:
            batch = self.feed.poll()
        except Exception as exc:  # any fetch failure: back off, report, keep running
            self.health.failure(exc)
            delay = self.backoff.next_delay()
            log.warning("feed %s failed, retrying in %.1fs: %s", self.feed.name, delay, exc,
                        extra={"feed": self.feed.name})
            self._report(force=True)
            return delay
        self.backoff.reset()
        sent = self._publish(batch)
        self.health.success(sent)
        self.done = batch.done
        self._report(force=batch.done or bool(batch.rejects))
        return self.interval if batch.wait is None else batch.wait

    def _publish(self, batch: Batch) -> int:
        sent = 0
        for out in batch.records:
            if self.publisher.publish(out, batch.source or self.feed.name):
                sent += 1
            else:
                self.health.dead_letter()
        for rejected in batch.rejects:
            self.publisher.dead_letter(rejected)
            self.health.dead_letter()
        self.producer.flush()
        return sent

    def _report(self, force: bool) -> None:
        now = self.clock()
        due = (self._health_sent_at is None
               or (now - self._health_sent_at).total_seconds() >= self.health_every)
        if not (force or due):
            return
        try:
            self.producer.send(HEALTH_TOPIC, self.feed.name, self.health.record())
            self.producer.flush()
            self._health_sent_at = now
        except Exception as exc:  # health must never take the feed down
            log.warning("cannot publish health of %s: %s", self.feed.name, exc)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set or a finite feed is exhausted."""
        log.info("feed %s started", self.feed.name, extra={"feed": self.feed.name})
        while not stop.is_set() and not self.done:
            delay = self.step()
            if delay > 0:
                stop.wait(delay)
        self._report(force=True)
        log.info("feed %s stopped", self.feed.name, extra={"feed": self.feed.name})
