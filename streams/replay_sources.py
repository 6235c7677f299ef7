"""Where replay reads recorded decisions and bundles from: the database or the topics.

Both sources give the records exactly as the bus carried them (Avro-decoded dicts), so
`streams.replay` sees the same thing whichever one the user picks:

- `DatabaseSource`: `decision_history` and `snapshot_bundles` (their raw Avro bytes),
  through the queries of `sinks.replay_queries`;
- `TopicSource`: `decisions.log.v1` and `snapshots.bundles.v1` alone, read from the
  beginning to their end as of the start of the read (a throwaway consumer group that
  never commits), with a progress bar.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from streams.backtest.progress import Progress
from streams.replay import is_idea_decision
from topics.bus import TopicNotFound, TopicStalled, read_to_end
from topics.catalog import Catalog
from topics.settings import Settings

Record = dict[str, Any]
DECISIONS = "decisions.log.v1"
BUNDLES = "snapshots.bundles.v1"


class SourceError(RuntimeError):
    """A source could not be read (unreachable, missing topic, timeout)."""


@dataclass
class RangeData:
    """The decisions of a range (every action, oldest first) and the bundles they need."""

    events: list[Record] = field(default_factory=list)
    bundles: dict[str, Record] = field(default_factory=dict)
    undecodable: int = 0


class Source(Protocol):
    """What replay needs from wherever decisions are kept."""

    name: str

    def decision(self, decision_id: str) -> Record | None:
        """One decision by id."""

    def bundle(self, snapshot_id: str) -> Record | None:
        """One snapshot bundle by id."""

    def range(self, since: datetime, until: datetime, account: str | None) -> RangeData:
        """Every decision of [since, until) and the bundles of its idea decisions."""

    def explanations(self, subject_ids: list[str]) -> list[Record]:
        """LLM explanations of these ideas/decisions (empty when the source has none)."""


def _in_range(event: Mapping[str, Any], since: datetime, until: datetime,
              account: str | None) -> bool:
    return (since <= event["occurred_at"] < until
            and (account is None or event.get("account") == account))


def _needed(events: list[Record]) -> list[str]:
    return sorted({str(e["snapshot_ref"]) for e in events if is_idea_decision(e)})


# ------------------------------------------------------------------------------ database


class DatabaseSource:
    """decision_history and snapshot_bundles, as the sinks wrote them."""

    name = "database"

    def __init__(self, settings: Settings, catalog: Catalog, show_progress: bool = True
                 ) -> None:
        import psycopg

        self.catalog = catalog
        self.show_progress = show_progress
        try:
            # Not autocommit: the range is streamed through a server-side cursor, which
            # lives in a transaction (read-only work, nothing to commit).
            self.conn = psycopg.connect(settings.database_dsn(),
                                        application_name="ai-trader-replay", connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise SourceError(f"database unreachable: {exc}".strip()) from exc

    def close(self) -> None:
        self.conn.close()

    def decision(self, decision_id: str) -> Record | None:
        from sinks import replay_queries as q

        return q.decision(self.conn, self.catalog, decision_id)

    def bundle(self, snapshot_id: str) -> Record | None:
        from sinks import replay_queries as q

        return q.bundles(self.conn, self.catalog, [snapshot_id]).get(snapshot_id)

    def range(self, since: datetime, until: datetime, account: str | None) -> RangeData:
        from sinks import replay_queries as q

        total = q.count_decisions(self.conn, since, until, account)
        bar = Progress(total, "reading decision_history", "decisions",
                       enabled=self.show_progress)
        out = RangeData()
        for event in q.decisions(self.conn, self.catalog, since, until, account):
            out.events.append(event)
            bar.advance()
        bar.close()
        out.bundles = q.bundles(self.conn, self.catalog, _needed(out.events))
        return out

    def explanations(self, subject_ids: list[str]) -> list[Record]:
        from sinks import replay_queries as q

        return q.explanations(self.conn, subject_ids)


# -------------------------------------------------------------------------------- topics


def read_topic(settings: Settings, catalog: Catalog, logical: str, timeout: float = 30.0,
               show_progress: bool = True) -> Generator[Record | None, None, None]:
    """Every record of a topic from the beginning to its end as of now (None: undecodable).

    Stops early when the caller stops iterating. Raises `SourceError` when the topic does
    not exist, or when no record comes for `timeout` seconds before the end.
    """
    bar: Progress | None = None

    def start(total: int) -> None:
        nonlocal bar
        bar = Progress(total, f"reading {catalog.name(logical)}", "records",
                       enabled=show_progress)

    def advance() -> None:
        if bar is not None:
            bar.advance()

    try:
        yield from read_to_end(settings, catalog, logical, timeout,
                               on_total=start, on_record=advance)
    except (TopicNotFound, TopicStalled) as exc:
        raise SourceError(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()


class TopicSource:
    """decisions.log.v1 and snapshots.bundles.v1 alone (no database)."""

    name = "topics"

    def __init__(self, settings: Settings, catalog: Catalog, timeout: float = 30.0,
                 show_progress: bool = True) -> None:
        self.settings = settings
        self.catalog = catalog
        self.timeout = timeout
        self.show_progress = show_progress

    def close(self) -> None:
        """Nothing held between reads."""

    def _read(self, logical: str) -> Generator[Record | None, None, None]:
        return read_topic(self.settings, self.catalog, logical, self.timeout,
                          self.show_progress)

    def _find(self, logical: str, key: str, value: str) -> Record | None:
        reader = self._read(logical)
        try:
            for record in reader:
                if record is not None and record.get(key) == value:
                    return record
        finally:
            reader.close()
        return None

    def decision(self, decision_id: str) -> Record | None:
        return self._find(DECISIONS, "decision_id", decision_id)

    def bundle(self, snapshot_id: str) -> Record | None:
        return self._find(BUNDLES, "snapshot_id", snapshot_id)

    def range(self, since: datetime, until: datetime, account: str | None) -> RangeData:
        out = RangeData()
        for event in self._read(DECISIONS):
            if event is None:
                out.undecodable += 1
            elif _in_range(event, since, until, account):
                out.events.append(event)
        out.events.sort(key=lambda e: (e["occurred_at"], e["decision_id"]))
        wanted = set(_needed(out.events))
        if not wanted:
            return out
        reader = self._read(BUNDLES)
        try:
            for bundle in reader:
                if bundle is None:
                    out.undecodable += 1
                elif bundle["snapshot_id"] in wanted:
                    out.bundles[bundle["snapshot_id"]] = bundle
                    if len(out.bundles) == len(wanted):
                        break  # every bundle found: the rest of the topic is not needed
        finally:
            reader.close()
        return out

    def explanations(self, subject_ids: list[str]) -> list[Record]:
        return []
