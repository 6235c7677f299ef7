"""The gate's state as one atomic record: the book plus a redo journal of store writes.

The gate keeps a small book per account (risk state, chain head, orders in flight) and
three keyed stores (ideas waiting for a human, decided ideas, applied commands), each a
Faust table with its own changelog topic. Changelog writes to different topics do not
land together: a worker killed between them would restart with, say, an idea marked
decided but a book whose chain head is one decision older. The next decision would then
link to the wrong predecessor (a fork in the audit chain), or an idea would be decided
twice.

So the book record is the only commit point. An event's store changes (its *delta*) go
into the book record's journal; they are written to the stores only once that book
record is acknowledged, and dropped from the journal once those store writes are
acknowledged too. Whatever the moment of a crash:

- the stores never hold a change whose book record was lost (they are written after it);
- a change the stores lack is in the journal of the last book record, and is applied
  again on load (a delta holds whole values, so applying it twice is harmless);
- reads see staged changes, then the journal (newest first), then the store.

Nothing here does I/O: writing a store is a callback that returns the write's future.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# store name -> key -> new value, None for a deleted key
Delta = dict[str, dict[str, Any]]
MISSING = object()


class Ack(Protocol):
    """A write's acknowledgement: an asyncio future or Faust's FutureMessage."""

    def done(self) -> bool: ...

    def exception(self) -> BaseException | None: ...


class JournalWriteFailed(RuntimeError):
    """A book or store write was refused by the bus: the gate's state is not durable."""


# (store, key, value or None) -> the write's acknowledgement, or None when nothing was sent
StoreWriter = Callable[[str, str, Any], Ack | None]


@dataclass
class _Entry:
    delta: Delta
    book_ack: Ack | None  # the first book record holding this delta; None: known durable
    store_acks: list[Ack] | None = None  # None until the delta is written to the stores


def compact(delta: Mapping[str, Mapping[str, Any]]) -> Delta:
    """The delta without its untouched stores ({} when the event changed none)."""
    return {store: dict(changes) for store, changes in delta.items() if changes}


def _landed(ack: Ack | None, what: str) -> bool:
    if ack is None:
        return True
    if not ack.done():
        return False
    exc = ack.exception()
    if exc is not None:
        raise JournalWriteFailed(f"{what} was not written: {exc}") from exc
    return True


@dataclass
class Journal:
    """One account's deltas that the stores may not hold yet, oldest first."""

    entries: list[_Entry] = field(default_factory=list)

    @classmethod
    def from_record(cls, deltas: list[Mapping[str, Mapping[str, Any]]]) -> Journal:
        """The journal of a book record read back from its table: that record is durable,
        its deltas may or may not have reached the stores, so all are written again."""
        return cls([_Entry({s: dict(kv) for s, kv in d.items()}, None) for d in deltas])

    def to_record(self) -> list[Delta]:
        return [e.delta for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, store: str, key: str) -> Any:
        """The newest journalled value (None: deleted), or MISSING when none is."""
        for entry in reversed(self.entries):
            changes = entry.delta.get(store)
            if changes is not None and key in changes:
                return changes[key]
        return MISSING

    def add(self, delta: Delta, book_ack: Ack | None) -> None:
        """An event's delta (`compact`), just written into the book record acknowledged
        by `book_ack`."""
        if delta:
            self.entries.append(_Entry(delta, book_ack))

    def advance(self, write: StoreWriter) -> int:
        """Write to the stores every delta whose book record has landed (in order, stopping
        at the first that has not), then forget the deltas the stores have acknowledged.
        Returns how many deltas were forgotten. Raises JournalWriteFailed when the bus
        refused a write."""
        for entry in self.entries:
            if entry.store_acks is not None:
                continue
            if not _landed(entry.book_ack, "the gate's book record"):
                break
            entry.book_ack = None
            acks = (write(store, key, value) for store, changes in entry.delta.items()
                    for key, value in changes.items())
            entry.store_acks = [a for a in acks if a is not None]
        dropped = 0
        for entry in self.entries:
            if entry.store_acks is None or not all(
                    _landed(a, "a gate store write") for a in entry.store_acks):
                break
            dropped += 1
        del self.entries[:dropped]
        return dropped
