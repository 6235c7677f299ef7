"""The gate's journal: whatever a crash keeps of the bus, the state read back is exactly
the state after the last book record that landed — never a mix of two events.

The model of the bus: four changelogs (the book and three stores), each an ordered log.
A write is acknowledged only after it has landed, acknowledgements come in order per
log, and a crash keeps, of each log, every acknowledged write plus any number of the
writes in flight after them (a prefix). The real Faust wiring is exercised by the
worker's SIGKILL tests (tests/streams/test_worker_integration.py,
tests/reliability/test_worker_kill.py); this one covers the moments they cannot aim at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.app import TableView
from streams.gate_journal import MISSING, Journal, JournalWriteFailed, compact

STORES = ("pending", "decided", "commands")
KEYS = ("a", "b", "c")


@dataclass
class Write:
    log: str
    key: str
    value: Any  # the book record (a dict) or a store value, None: deleted
    acked: bool = False
    error: BaseException | None = None

    def done(self) -> bool:
        return self.acked or self.error is not None

    def exception(self) -> BaseException | None:
        return self.error


@dataclass
class Bus:
    logs: dict[str, list[Write]] = field(
        default_factory=lambda: {name: [] for name in ("book", *STORES)})

    def write(self, log: str, key: str, value: Any) -> Write:
        w = Write(log, key, value)
        self.logs[log].append(w)
        return w

    def ack_some(self, draw: Any) -> None:
        """Acknowledge, per log, a prefix of the writes in flight."""
        for writes in self.logs.values():
            waiting = [w for w in writes if not w.done()]
            for w in waiting[:draw(st.integers(0, len(waiting)))]:
                w.acked = True

    def crash(self, draw: Any) -> dict[str, dict[str, Any]]:
        """What a restarted worker reads back: per log, the acknowledged writes and a
        prefix of those in flight, the last write per key winning (compaction)."""
        kept: dict[str, dict[str, Any]] = {}
        for log, writes in self.logs.items():
            acked = sum(1 for w in writes if w.acked)
            n = acked + draw(st.integers(0, len(writes) - acked))
            table: dict[str, Any] = {}
            for w in writes[:n]:
                if w.value is None:
                    table.pop(w.key, None)
                else:
                    table[w.key] = w.value
            kept[log] = table
        return kept


def read(journal: Journal, tables: dict[str, dict[str, Any]], store: str, key: str) -> Any:
    value = journal.lookup(store, key)
    return tables[store].get(key) if value is MISSING else value


deltas = st.dictionaries(
    st.sampled_from(STORES),
    st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), st.integers(0, 9)),
                    max_size=3),
    max_size=3)


@settings(max_examples=400, deadline=None)
@given(st.lists(deltas, min_size=1, max_size=12), st.data())
def test_a_crash_reads_back_one_events_state(events: list[dict[str, Any]],
                                             data: st.DataObject) -> None:
    bus, journal = Bus(), Journal()
    local: dict[str, dict[str, Any]] = {s: {} for s in STORES}  # the worker's own tables
    truth = [{s: {} for s in STORES}]  # state after event n (n = 0: nothing yet)

    def store_write(store: str, key: str, value: Any) -> Write | None:
        if value is None and key not in local[store]:
            return None  # deleting a key the table does not have sends nothing
        if value is None:
            del local[store][key]
        else:
            local[store][key] = value
        return bus.write(store, key, value)

    for n, raw in enumerate(events, start=1):
        bus.ack_some(data.draw)
        journal.advance(store_write)
        delta = compact(raw)
        state = {s: dict(kv) for s, kv in truth[-1].items()}
        for store, changes in delta.items():
            for key, value in changes.items():
                if value is None:
                    state[store].pop(key, None)
                else:
                    state[store][key] = value
        truth.append(state)
        record = {"event": n, "journal": journal.to_record() + ([delta] if delta else [])}
        journal.add(delta, bus.write("book", "acct", record))
        # while running, reads always see the latest event's state
        for store in STORES:
            for key in KEYS:
                assert read(journal, local, store, key) == state[store].get(key)

    kept = bus.crash(data.draw)
    record = kept["book"].get("acct")
    n = 0 if record is None else record["event"]
    recovered = Journal.from_record([] if record is None else record["journal"])
    for store in STORES:
        for key in KEYS:
            assert read(recovered, kept, store, key) == truth[n][store].get(key), (
                f"after a crash at event {len(events)} with book record {n} kept, "
                f"{store}[{key}] reads back wrong")


def test_stores_are_written_only_after_the_book_record_lands() -> None:
    bus, journal = Bus(), Journal()
    writes: list[tuple[str, str, Any]] = []

    def store_write(store: str, key: str, value: Any) -> Write:
        writes.append((store, key, value))
        return bus.write(store, key, value)

    book = bus.write("book", "acct", {})
    journal.add({"decided": {"idea-1": "auto_executing"}}, book)
    assert journal.advance(store_write) == 0
    assert writes == []  # the book record is still in flight
    book.acked = True
    assert journal.advance(store_write) == 0  # written, not yet acknowledged
    assert writes == [("decided", "idea-1", "auto_executing")]
    bus.logs["decided"][0].acked = True
    assert journal.advance(store_write) == 1
    assert len(journal) == 0
    assert writes == [("decided", "idea-1", "auto_executing")]  # written once


def test_a_refused_write_is_an_error_not_a_silent_loss() -> None:
    bus, journal = Bus(), Journal()
    book = bus.write("book", "acct", {})
    journal.add({"commands": {"cmd-1": "kill_switch"}}, book)
    book.error = RuntimeError("KafkaTimeoutError")
    with pytest.raises(JournalWriteFailed, match="book record was not written"):
        journal.advance(lambda store, key, value: bus.write(store, key, value))


def test_an_event_that_changes_no_store_adds_nothing() -> None:
    journal = Journal()
    journal.add(compact({"pending": {}, "decided": {}, "commands": {}}), None)
    assert len(journal) == 0
    assert journal.lookup("pending", "a") is MISSING


def test_a_store_view_reads_staged_then_journalled_then_stored() -> None:
    """The worker's `TableView` over one account's keys: `[]`, `in` and `get` agree,
    a deletion anywhere above the table hides the stored value."""
    table = {b"acct|stored": orjson.dumps({"v": 1}), b"acct|deleted": orjson.dumps({"v": 2}),
             b"acct|moved": orjson.dumps({"v": 3}), b"other|mine": orjson.dumps({"v": 9})}
    journal = Journal.from_record([{"pending": {"deleted": None, "moved": {"v": 4}},
                                    "decided": {"stored": "x"}}])
    view = TableView(table, "acct|", "pending", journal)
    view["staged"] = {"v": 5}
    view["moved"] = {"v": 6}
    expected = {"stored": {"v": 1}, "moved": {"v": 6}, "staged": {"v": 5}}
    for key in ("stored", "deleted", "moved", "staged", "mine", "absent"):
        want = expected.get(key)
        assert (key in view) is (want is not None), key
        assert view.get(key) == want, key
        assert view.get(key, "no") == (want or "no"), key
        if want is None:
            with pytest.raises(KeyError):
                view[key]
        else:
            assert view[key] == want
    del view["stored"]
    assert "stored" not in view
    assert view.staged["stored"] is None
    assert 1 not in view  # type: ignore[operator]  # not a key of a gate store at all
