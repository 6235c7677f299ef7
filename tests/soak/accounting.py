"""The books at the end of a soak run: what went in, what came out, what was stored.

Everything is read back from the topics (from offset 0, a fresh consumer group) and
from the database the sinks wrote, then compared:

- every idea on gate.inbox has exactly one first status (a redelivered copy is the same
  record; a second *different* verdict is a duplicate, no status at all is a loss);
- every order request has a result; two different requests or two different outcomes
  for one request id are duplicates; the paper broker's own deal list is searched for
  a second entry deal with the same order comment (a second order at the broker);
- every decision event is one link of the account's hash chain (copies removed), and
  decision_history holds each exactly once; `ai-trader audit verify` passes on the
  database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from connectors.orders.ledger import compact_id
from streams.core.audit import verify_chain
from tests.soak.stack import ACCOUNT, QUIET, Stack
from topics.bus import BusConsumer


@dataclass
class Books:
    """Counts and problems found (see the module docstring)."""

    counts: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    duplicated: dict[str, int] = field(default_factory=dict)
    redelivered: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())

    @property
    def total_duplicated(self) -> int:
        return sum(self.duplicated.values())


def read_all(stack: Stack, topics: tuple[str, ...], quiet: float = 3.0,
             timeout: float = 180.0) -> dict[str, list[dict[str, Any]]]:
    """Every record of the topics, read from the start until `quiet` seconds bring nothing."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
    with BusConsumer(stack.settings, stack.catalog, topics, **QUIET,
                     group_id=f"{stack.catalog.prefix}audit-{uuid.uuid4().hex}") as consumer:
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            batch = consumer.poll(5000, 0.5)
            for r in batch:
                out[r.topic].append(r.value)
            if batch:
                last = time.monotonic()
    return out


def _ideas(records: dict[str, list[dict[str, Any]]], books: Books) -> set[str]:
    ideas = {m["idea"]["idea_id"] for m in records["gate.inbox.v1"] if m.get("idea")}
    first: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    later: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    copies: Counter[tuple[str, tuple[Any, ...]]] = Counter()
    for s in records["ideas.status.v1"]:
        key = (s["status"], s["decision_id"], s["reason"])
        (first if s.get("idea") is not None else later)[s["idea_id"]].add(key)
        copies[(s["idea_id"], key)] += 1
    books.counts["ideas"] = len(ideas)
    books.lost["idea statuses"] = len(ideas - set(first))
    books.duplicated["idea verdicts"] = sum(1 for v in first.values() if len(v) > 1)
    terminal = {"executed", "failed", "expired", "rejected_by_human"}
    books.duplicated["idea terminal statuses"] = sum(
        1 for v in later.values() if len({k[0] for k in v} & terminal) > 1)
    books.redelivered["statuses"] = sum(n - 1 for n in copies.values())
    books.counts["ideas auto_executing"] = sum(
        1 for v in first.values() if any(k[0] == "auto_executing" for k in v))
    books.counts["ideas rejected"] = sum(
        1 for v in first.values() if any(k[0].startswith(("rejected", "halted")) for k in v))
    return ideas


def _orders(records: dict[str, list[dict[str, Any]]], books: Books,
            paper_state: Path | None) -> None:
    requests: dict[str, set[str]] = defaultdict(set)
    for o in records["orders.requests.v1"]:
        requests[o["request_id"]].add(json.dumps(o, default=str, sort_keys=True))
    outcomes: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for r in records["orders.results.v1"]:
        outcomes[r["request_id"]].add((r["status"], r["broker_order_id"], r["error_code"]))
    books.counts["order requests"] = len(requests)
    books.counts["order results"] = len(outcomes)
    books.counts["orders filled"] = sum(1 for o in outcomes.values()
                                        if any(x[0] == "filled" for x in o))
    books.redelivered["order requests"] = (len(records["orders.requests.v1"]) - len(requests))
    books.redelivered["order results"] = (len(records["orders.results.v1"])
                                          - sum(len(o) for o in outcomes.values()))
    books.duplicated["order requests"] = sum(1 for v in requests.values() if len(v) > 1)
    books.duplicated["order outcomes"] = sum(1 for v in outcomes.values() if len(v) > 1)
    books.lost["order results"] = len(set(requests) - set(outcomes))
    if paper_state is not None and paper_state.exists():
        deals = json.loads(paper_state.read_text())["deals"]
        entries = Counter(d["comment"] for d in deals if d["entry"] == "in")
        wanted = {compact_id(rid) for rid in requests}
        books.duplicated["orders at the broker"] = sum(
            1 for c, n in entries.items() if c in wanted and n > 1)
        filled = {compact_id(rid) for rid, o in outcomes.items()
                  if any(x[0] == "filled" for x in o)}
        books.lost["fills missing at the broker"] = len(filled - set(entries))


def _decisions(stack: Stack, records: dict[str, list[dict[str, Any]]], books: Books,
               ideas: set[str], database: bool) -> None:
    unique = {d["hash"]: d for d in records["decisions.log.v1"] if d["account"] == ACCOUNT}
    books.counts["decision events"] = len(unique)
    books.redelivered["decision events"] = (len(records["decisions.log.v1"]) - len(unique))
    ids = Counter(d["decision_id"] for d in unique.values())
    books.duplicated["decision ids"] = sum(1 for n in ids.values() if n > 1)
    report = verify_chain(ACCOUNT, unique.values())
    if not report.ok:
        books.problems.append(f"decisions.log chain: {report.first_break}")
    decided = {d["trade_idea_id"] for d in unique.values() if d["trade_idea_id"]}
    books.lost["idea decisions"] = len(ideas - decided)
    if not database:
        return
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT id, hash FROM decision_history WHERE account = %s",
                            (ACCOUNT,)).fetchall()
        books.counts["decision_history rows"] = len(rows)
        stored = Counter(r[0] for r in rows)
        books.duplicated["decision_history rows"] = sum(1 for n in stored.values() if n > 1)
        books.lost["decision_history rows"] = len({d["decision_id"] for d in unique.values()}
                                                  - set(stored))
        extra = set(stored) - {d["decision_id"] for d in unique.values()}
        if extra:
            books.problems.append(f"{len(extra)} decision_history rows not on the topic")
        idea_rows = conn.execute("SELECT count(*) FROM trade_ideas").fetchone()
        books.counts["trade_ideas rows"] = int(idea_rows[0]) if idea_rows else 0
        books.lost["trade_ideas rows"] = max(0, len(ideas) - books.counts["trade_ideas rows"])
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "api.cli", "audit", "verify", "--json"],
        env=stack.services["sinks"].env if "sinks" in stack.services else None,
        capture_output=True, text=True, timeout=300, check=False)
    books.counts["audit verify exit"] = done.returncode
    if done.returncode != 0:
        books.problems.append(f"ai-trader audit verify: {done.stdout[-500:]} {done.stderr[-500:]}")


def settle(stack: Stack, timeout: float = 240.0) -> None:
    """Wait until the worker and the sinks have caught up with everything (or time out)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        stack.supervise()
        try:
            lag = stack.lags(periodic=False)
        except Exception:  # noqa: BLE001 - the bus may still be coming back
            lag = {"?": 1}
        quiet = quiet + 1 if sum(lag.values()) == 0 else 0
        if quiet >= 3:
            return
        time.sleep(2.0)


def audit(stack: Stack, database: bool = True) -> Books:
    """The whole accounting (see the module docstring)."""
    books = Books()
    records = read_all(stack, ("gate.inbox.v1", "ideas.status.v1", "orders.requests.v1",
                               "orders.results.v1", "decisions.log.v1"))
    ideas = _ideas(records, books)
    broker = stack.services.get("broker")
    paper = None if broker is None else broker.workdir / f"paper-{ACCOUNT}.json"
    _orders(records, books, paper)
    _decisions(stack, records, books, ideas, database)
    return books
