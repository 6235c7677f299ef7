"""The daily budget: enforced, persisted across restarts, shared by processes, reset daily."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.explainer.budget import DailyBudget

DAY1 = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)


def _budget(path: Path, calls: int = 3, tokens: int = 10_000,
            at: datetime = DAY1) -> DailyBudget:
    return DailyBudget(path / "llm-budget.json", calls, tokens, lambda: at)


def test_calls_are_refused_once_the_daily_call_budget_is_used(tmp_path: Path) -> None:
    budget = _budget(tmp_path)
    granted = [budget.reserve(100) for _ in range(5)]
    assert [g is not None for g in granted] == [True, True, True, False, False]
    assert budget.usage().calls == 3
    assert budget.usage().exhausted


def test_a_call_whose_estimate_would_pass_the_token_budget_is_refused(tmp_path: Path) -> None:
    budget = _budget(tmp_path, calls=100, tokens=1000)
    assert budget.reserve(600) is not None
    budget.spend(500, 100)
    assert budget.reserve(401) is None  # 600 + 401 > 1000
    assert budget.reserve(400) is not None
    usage = budget.usage()
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (2, 500, 100)


def test_usage_survives_a_restart_and_resets_the_next_utc_day(tmp_path: Path) -> None:
    _budget(tmp_path).reserve(10)
    _budget(tmp_path).spend(40, 2)
    again = _budget(tmp_path).usage()
    assert (again.day, again.calls, again.tokens) == ("2026-03-02", 1, 42)
    tomorrow = _budget(tmp_path, at=DAY1 + timedelta(minutes=2)).usage()
    assert (tomorrow.day, tomorrow.calls, tomorrow.tokens) == ("2026-03-03", 0, 0)


def test_an_unreadable_budget_file_counts_as_spent(tmp_path: Path) -> None:
    (tmp_path / "llm-budget.json").write_text("{not json")
    budget = _budget(tmp_path)
    assert budget.reserve(1) is None
    assert budget.usage().exhausted


def test_a_zero_budget_allows_nothing(tmp_path: Path) -> None:
    assert _budget(tmp_path, calls=0).reserve(1) is None
    assert _budget(tmp_path / "t", calls=10, tokens=0).reserve(1) is None


def _reserve_many(path: str, n: int, limit: int, go: Any, out: Any) -> None:
    budget = DailyBudget(Path(path), limit, 10**9, lambda: DAY1)
    go.wait(30)
    out.put(sum(1 for _ in range(n) if budget.reserve(1) is not None))


def test_two_processes_share_one_budget_without_losing_a_count(tmp_path: Path) -> None:
    path = str(tmp_path / "llm-budget.json")
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_reserve_many, args=(path, 300, 500, go, out))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    go.set()  # both hammer the file at the same time
    granted = [out.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert sum(granted) == 500  # exactly the limit: no reservation lost or granted twice
    assert DailyBudget(Path(path), 500, 10**9, lambda: DAY1).usage().calls == 500
