"""The records a sink consumed since its last commit, with the rows they became."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Message, TopicPartition

from sinks.writer import Row, group_rows


@dataclass(slots=True)
class Entry:
    """One consumed message and the rows it became (none when dead-lettered)."""

    topic: str        # physical topic
    partition: int
    offset: int
    rows: list[tuple[str, Row]]
    message: Message


@dataclass
class Batch:
    """Records consumed since the last commit, in consumption order."""

    entries: list[Entry] = field(default_factory=list)
    started: float = 0.0
    consumed: dict[str, int] = field(default_factory=dict)  # logical topic -> records

    def add(self, entry: Entry, logical: str) -> None:
        if not self.entries:
            self.started = time.monotonic()
        self.entries.append(entry)
        self.consumed[logical] = self.consumed.get(logical, 0) + 1

    def __len__(self) -> int:
        return len(self.entries)

    def by_table(self) -> dict[str, list[Row]]:
        """Every row of the batch, per table, in consumption order."""
        return group_rows(e.rows for e in self.entries)

    def offsets(self, skip: Iterable[tuple[str, int]] = ()) -> list[TopicPartition]:
        """The next offset to read for every partition in the batch (what to commit)."""
        last: dict[tuple[str, int], int] = {}
        for e in self.entries:
            key = (e.topic, e.partition)
            if e.offset > last.get(key, -1):
                last[key] = e.offset
        for key in skip:
            last.pop(key, None)
        return [TopicPartition(topic, part, off + 1) for (topic, part), off in last.items()]

    def drop(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget the records of revoked partitions: their new owner reads them again."""
        gone = set(partitions)
        self.entries = [e for e in self.entries if (e.topic, e.partition) not in gone]
