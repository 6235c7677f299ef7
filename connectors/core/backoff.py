"""Bounded exponential backoff with seeded jitter.

Jitter spreads retries of many feeds so they do not hammer a recovering server
together; the RNG is seeded so a test (and a replay of logs) sees the same delays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """`next_delay()` after each failure, `reset()` after a success."""

    base: float = 1.0
    cap: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2
    seed: int = 0
    failures: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff needs 0 < base <= cap, factor >= 1, 0 <= jitter < 1")
        self._rng = random.Random(self.seed)  # noqa: S311 - jitter, not cryptography

    def next_delay(self) -> float:
        """The wait before the next attempt; never above `cap`, never below 0."""
        raw = min(self.cap, self.base * self.factor ** min(self.failures, 64))
        self.failures += 1
        spread = raw * self.jitter
        return max(0.0, min(self.cap, raw + self._rng.uniform(-spread, spread)))

    def reset(self) -> None:
        """Back to the base delay after a success."""
        self.failures = 0
