"""Batched, idempotent writes: staging COPY, then one merge per table, one transaction.

A flush writes every table's rows of a batch in a single transaction:

1. binary `COPY` into a temporary staging table (`_stage_<table>`, columns of the wire
   types of `sinks.tables`, emptied at every commit), or `executemany` INSERTs into it
   (the slower path, kept for the benchmark);
2. `INSERT INTO <table> SELECT <casts> FROM _stage_<table> ON CONFLICT ...` (see
   `sinks.tables` for the conflict rules);
3. the finalizers (trade_ideas status from the status history);
4. COMMIT. Only then does the caller commit the Kafka offsets.

Optimistic direct COPY: rows are almost always new (a record is re-delivered only after
a crash or a rebalance), and the staging table plus the merge cost the database about
twice a plain insert. So where a table's columns have exactly the wire types (no cast,
no rounding), is not read by a finalizer, and the batch has no key twice, its rows are
first copied straight into the table inside a savepoint. A unique violation means some
row is already there: the savepoint is rolled back and the batch takes steps 1-2, whose
conflict rules then decide. The table holds the same rows either way; after a conflict
the table skips the direct attempt for a few batches (doubling up to 64), so a table
that keeps receiving updates does not pay for a failed COPY each time.

A row the database refuses (a value out of range, a constraint) fails the whole
statement. `write_each` then writes the batch in savepoints, halving the groups that
fail, and returns the records refused, for the dead-letter topic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

import psycopg
from psycopg import sql

from sinks import tables as t

log = logging.getLogger(__name__)

Method = Literal["copy", "executemany"]
Row = tuple[Any, ...]

#: Errors caused by the content of some row, not by the database being unavailable: the
#: server refusing a value or a constraint, or psycopg unable to dump a value to its type.
ROW_ERRORS: tuple[type[Exception], ...] = (
    psycopg.DataError, psycopg.IntegrityError, TypeError, ValueError, OverflowError,
)


#: `format_type` of a column that takes a wire type's binary value as it is.
_SAME_TYPE = {"text": "text", "float8": "double precision", "int8": "bigint",
              "int4": "integer", "bool": "boolean", "timestamptz": "timestamp with time zone",
              "bytea": "bytea", "text[]": "text[]", "float8[]": "double precision[]"}
#: Batches a table skips the direct COPY after a conflict: doubles up to this.
MAX_DIRECT_PAUSE = 64
#: Tables a finalizer reads from the staging tables: always staged.
_STAGED_FOR_FINALIZERS = frozenset().union(*(tables for tables, _ in t.FINALIZERS))


def _target_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    ).fetchall()
    return {name: type_ for name, type_ in rows}


def _ids(names: Iterable[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)


class TableWriter:
    """Stages one table's rows and merges them into the table."""

    def __init__(self, spec: t.TableSpec) -> None:
        self.spec = spec
        self.stage = f"_stage_{spec.table}"
        self._wires = [wire for _, wire in spec.columns] + (["int8"] if spec.upsert else [])
        self._stage_cols = list(spec.names) + (["_seq"] if spec.upsert else [])
        self._merge: sql.Composed | None = None
        at = [spec.names.index(k) for k in spec.key]
        self._key_of = itemgetter(*at) if len(at) > 1 else (lambda row: (row[at[0]],))
        self._direct_copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(spec.table), _ids(spec.names))
        #: direct COPY allowed (decided in `prepare` from the table's column types)
        self.direct = False
        self._pause = 0       # batches left without a direct attempt
        self._next_pause = 1  # the pause after the next conflict
        #: batches written straight into the table / through the staging table and merge
        self.direct_batches = 0
        self.merged_batches = 0

    def prepare(self, conn: psycopg.Connection) -> None:
        """Create the staging table on this connection and build the merge statement."""
        types = _target_types(conn, self.spec.table)
        missing = [n for n in self.spec.names if n not in types]
        if missing:
            raise psycopg.ProgrammingError(
                f"{self.spec.table} has no column {missing}: run `ai-trader db migrate`")
        cols = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(w))
            for n, w in zip(self._stage_cols, self._wires, strict=True))
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS")
                     .format(sql.Identifier(self.stage), cols))
        self._merge = self._merge_sql(types)
        self.direct = self.spec.table not in _STAGED_FOR_FINALIZERS and all(
            types[name] == _SAME_TYPE.get(wire) for name, wire in self.spec.columns)

    def _merge_sql(self, types: Mapping[str, str]) -> sql.Composed:
        spec = self.spec
        casts = sql.SQL(", ").join(
            sql.SQL("{}::{}").format(sql.Identifier(n), sql.SQL(types[n])) for n in spec.names)
        if not spec.upsert:
            return sql.SQL(
                "INSERT INTO {table} ({cols}) SELECT {casts} FROM {stage}"
                " ON CONFLICT ({key}) DO NOTHING"
            ).format(table=sql.Identifier(spec.table), cols=_ids(spec.names), casts=casts,
                     stage=sql.Identifier(self.stage), key=_ids(spec.key))
        updated = [n for n in spec.names if n not in spec.key]
        newest_first = sql.SQL(", ").join(
            sql.SQL("{} DESC").format(sql.Identifier(n)) for n in (*spec.newer, "_seq"))
        return sql.SQL(
            "INSERT INTO {table} AS t ({cols})"
            " SELECT DISTINCT ON ({key}) {casts} FROM {stage} ORDER BY {key}, {newest}"
            " ON CONFLICT ({key}) DO UPDATE SET ({upd}) = ROW({exc})"
            " WHERE ROW({t_newer}) <= ROW({x_newer})"
            " AND ROW({t_upd}) IS DISTINCT FROM ROW({exc})"
        ).format(table=sql.Identifier(spec.table), cols=_ids(spec.names), casts=casts,
                 stage=sql.Identifier(self.stage), key=_ids(spec.key), newest=newest_first,
                 upd=_ids(updated), exc=_ids(updated, "excluded"),
                 t_newer=_ids(spec.newer, "t"), x_newer=_ids(spec.newer, "excluded"),
                 t_upd=_ids(updated, "t"))

    def load(self, cur: psycopg.Cursor, rows: Sequence[Row], method: Method) -> None:
        """Put the rows into the staging table."""
        if self.spec.upsert:
            rows = [(*row, seq) for seq, row in enumerate(rows)]
        if method == "copy":
            stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(self.stage), _ids(self._stage_cols))
            with cur.copy(stmt) as copy:
                copy.set_types(self._wires)
                for row in rows:
                    copy.write_row(row)
        else:
            stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(self.stage), _ids(self._stage_cols),
                sql.SQL(", ").join(sql.Placeholder() * len(self._stage_cols)))
            cur.executemany(stmt, rows)

    def write_direct(self, cur: psycopg.Cursor, rows: Sequence[Row]) -> bool:
        """Copy the rows straight into the table when none can conflict; False otherwise.

        Runs in a savepoint: on a unique violation nothing of it remains and the caller
        stages and merges the rows instead.
        """
        if not self.direct:
            return False
        if self._pause:
            self._pause -= 1
            return False
        if len(set(map(self._key_of, rows))) != len(rows):
            return False  # a key twice in the batch: the merge picks the newest
        try:
            with cur.connection.transaction(), cur.copy(self._direct_copy) as copy:
                copy.set_types(self._wires[:len(self.spec.columns)])
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            self._pause, self._next_pause = self._next_pause, min(2 * self._next_pause,
                                                                  MAX_DIRECT_PAUSE)
            return False
        self._next_pause = 1
        self.direct_batches += 1
        return True

    def merge(self, cur: psycopg.Cursor) -> int:
        """Move the staged rows into the table; the number of rows inserted or updated."""
        if self._merge is None:
            raise RuntimeError(f"{self.spec.table}: prepare() was not called")
        cur.execute(self._merge)
        self.merged_batches += 1
        return max(cur.rowcount, 0)

    def clear(self, cur: psycopg.Cursor) -> None:
        """Empty the staging table inside the transaction (record-by-record writes)."""
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(self.stage)))


class Writer:
    """One database connection and a `TableWriter` per table; writes whole batches."""

    def __init__(self, dsn: str, method: Method = "copy",
                 application_name: str = "ai-trader-sinks", connect_timeout: float = 5.0,
                 specs: Sequence[t.TableSpec] = t.ALL) -> None:
        self.dsn = dsn
        self.method = method
        self.application_name = application_name
        self.connect_timeout = connect_timeout
        self.tables = {spec.table: TableWriter(spec) for spec in specs}
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        """The open connection, (re)connecting and preparing the staging tables if needed."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self.dsn, application_name=self.application_name,
                               connect_timeout=max(1, int(self.connect_timeout)))
        try:
            for writer in self.tables.values():
                writer.prepare(conn)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def reset(self) -> None:
        """Drop the connection after an error; the next write reconnects."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:  # already broken: nothing more to release
                pass
        self._conn = None

    def close(self) -> None:
        """Close the connection."""
        self.reset()

    def write(self, rows: Mapping[str, Sequence[Row]]) -> dict[str, int]:
        """Write every table's rows in one transaction and commit; rows changed per table."""
        conn = self.connection()
        try:
            # one real transaction (the direct COPYs run in savepoints inside it)
            with conn.transaction(), conn.cursor() as cur:
                written = self._write_tables(cur, rows, direct=True)
                self._finalize(cur, {name for name, r in rows.items() if r})
        except BaseException:
            self._rollback()
            raise
        return written

    def write_each(self, records: Sequence[Sequence[tuple[str, Row]]]
                   ) -> tuple[dict[str, int], list[tuple[int, Exception]]]:
        """Write the records, isolating the refused ones; (rows changed, refused records).

        Groups of records are tried in savepoints, halving a group that fails until the
        records the database refuses are found (a few refused records among thousands
        cost a few dozen statements, not thousands). A refused record is reported with
        its index in `records` and the error; the others are committed.
        """
        conn = self.connection()
        written: dict[str, int] = {}
        refused: list[tuple[int, Exception]] = []
        try:
            with conn.cursor() as cur:
                self._bisect(conn, cur, list(enumerate(records)), written, refused)
                refused_at = {index for index, _ in refused}
                accepted = [r for i, r in enumerate(records) if i not in refused_at]
                grouped = group_rows(accepted)
                self._restage_for_finalizers(cur, grouped)
                self._finalize(cur, {name for name, rows in grouped.items() if rows})
            conn.commit()
        except BaseException:
            self._rollback()
            raise
        return written, refused

    def _bisect(self, conn: psycopg.Connection, cur: psycopg.Cursor,
                records: list[tuple[int, Sequence[tuple[str, Row]]]],
                written: dict[str, int], refused: list[tuple[int, Exception]]) -> None:
        grouped = group_rows(record for _, record in records)
        try:
            with conn.transaction():
                counts = self._write_tables(cur, grouped)
                for name in grouped:  # the next group's merge must not see these rows
                    self.tables[name].clear(cur)
        except ROW_ERRORS as exc:
            if len(records) == 1:
                refused.append((records[0][0], exc))
                return
            half = len(records) // 2
            self._bisect(conn, cur, records[:half], written, refused)
            self._bisect(conn, cur, records[half:], written, refused)
            return
        for name, n in counts.items():
            written[name] = written.get(name, 0) + n

    def _restage_for_finalizers(self, cur: psycopg.Cursor,
                                rows: Mapping[str, Sequence[Row]]) -> None:
        """Stage the accepted rows again (not merged) for the finalizers to read."""
        read = set().union(*(tables for tables, _ in t.FINALIZERS))
        for name, table_rows in rows.items():
            if table_rows and name in read:
                self.tables[name].load(cur, table_rows, self.method)

    def _write_tables(self, cur: psycopg.Cursor, rows: Mapping[str, Sequence[Row]],
                      direct: bool = False) -> dict[str, int]:
        written: dict[str, int] = {}
        for name, writer in self.tables.items():  # declaration order: sinks.tables.ALL
            table_rows = rows.get(name)
            if not table_rows:
                continue
            if direct and self.method == "copy" and writer.write_direct(cur, table_rows):
                written[name] = len(table_rows)
                continue
            writer.load(cur, table_rows, self.method)
            written[name] = writer.merge(cur)
        return written

    def _finalize(self, cur: psycopg.Cursor, touched: set[str]) -> None:
        for tables, statement in t.FINALIZERS:
            if tables & touched:
                cur.execute(statement)

    def _rollback(self) -> None:
        conn = self._conn
        if conn is None:
            return
        if conn.broken or conn.closed:
            self.reset()
            return
        try:
            conn.rollback()
        except psycopg.Error:
            self.reset()


def group_rows(records: Iterable[Sequence[tuple[str, Row]]]) -> dict[str, list[Row]]:
    """(table, row) pairs of many records -> rows per table, in arrival order."""
    out: dict[str, list[Row]] = {}
    for record in records:
        for table, row in record:
            out.setdefault(table, []).append(row)
    return out
