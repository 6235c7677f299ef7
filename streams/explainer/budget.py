"""The per-day LLM budget: calls and tokens, counted in a small file that survives restarts.

One JSON file per state directory (`<state>/explainer/llm-budget.json`) holds the UTC
day and what was used on it. Every change is a read-modify-write under an exclusive
`flock` on a side lock file, and the new content replaces the old with an atomic
rename, so a restart (or a second explainer on the same host and state directory)
continues the same count instead of starting again from zero.

Counting rules:

- a call is counted *before* it is sent (`reserve`): an attempt that fails still
  used a call, and a retry is a new call;
- a reservation is refused when the calls are used up, or when the tokens used so
  far plus the call's estimate (prompt characters / 3 + the output cap) would pass
  the token budget;
- after the attempt, `spend` adds the tokens the server reported (`usage`), or the
  estimate when the outcome is unknown (a timeout: the server may have billed it),
  or nothing when the server refused the request.

A budget of 0 allows nothing. The day is the UTC date of the injected clock.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

if sys.platform != "win32":  # Windows: one process per state directory, the thread lock
    import fcntl

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """What was used on `day`, and the limits."""

    day: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    call_limit: int
    token_limit: int

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def exhausted(self) -> bool:
        """No further call fits."""
        return self.calls >= self.call_limit or self.tokens >= self.token_limit

    def to_dict(self) -> dict[str, object]:
        """Plain form for logs and `ai-trader explainer --status`."""
        return {**asdict(self), "tokens": self.tokens, "exhausted": self.exhausted}


class DailyBudget:
    """Calls and tokens allowed per UTC day, shared through a file."""

    def __init__(self, path: Path, call_limit: int, token_limit: int, clock: Clock) -> None:
        self.path = path
        self.call_limit = call_limit
        self.token_limit = token_limit
        self.clock = clock
        self._thread_lock = threading.Lock()

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self._lock_path, "a+") as lock:
            if sys.platform != "win32":
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if sys.platform != "win32":
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _today(self) -> str:
        return self.clock().date().isoformat()

    def _read(self) -> dict[str, int | str]:
        today = self._today()
        fresh: dict[str, int | str] = {"day": today, "calls": 0, "prompt_tokens": 0,
                                       "completion_tokens": 0}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return fresh
        except (OSError, ValueError) as exc:
            # Unreadable: assume today's budget is spent rather than spend it twice.
            log.error("llm budget file %s unreadable (%s): no LLM calls until tomorrow",
                      self.path, exc)
            return {**fresh, "calls": self.call_limit, "prompt_tokens": self.token_limit}
        if not isinstance(data, dict) or data.get("day") != today:
            return fresh
        return {**fresh, **{k: int(data.get(k, 0)) for k in
                            ("calls", "prompt_tokens", "completion_tokens")}}

    def _write(self, data: dict[str, int | str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    def _usage(self, data: dict[str, int | str]) -> BudgetUsage:
        return BudgetUsage(str(data["day"]), int(data["calls"]), int(data["prompt_tokens"]),
                           int(data["completion_tokens"]), self.call_limit, self.token_limit)

    def usage(self) -> BudgetUsage:
        """Today's usage."""
        with self._locked():
            return self._usage(self._read())

    def reserve(self, estimated_tokens: int) -> BudgetUsage | None:
        """Count one call if it fits (returns the new usage), else None."""
        with self._locked():
            data = self._read()
            used = self._usage(data)
            if used.calls + 1 > self.call_limit or used.tokens + estimated_tokens > (
                self.token_limit
            ):
                return None
            data["calls"] = used.calls + 1
            self._write(data)
            return self._usage(data)

    def spend(self, prompt_tokens: int, completion_tokens: int) -> BudgetUsage:
        """Add the tokens of an attempt (what the server reported, or the estimate)."""
        with self._locked():
            data = self._read()
            data["prompt_tokens"] = int(data["prompt_tokens"]) + max(0, prompt_tokens)
            data["completion_tokens"] = int(data["completion_tokens"]) + max(0, completion_tokens)
            self._write(data)
            return self._usage(data)
