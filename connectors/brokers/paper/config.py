"""Configuration of the paper broker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from connectors.instruments import INSTRUMENTS, Instrument


@dataclass(frozen=True)
class PaperConfig:
    """Account terms of the simulated broker.

    `price_timeframe`: the paper broker learns prices from the candles of one
    timeframe only (the finest one published), so a move is never applied twice
    through M1 and M5 bars of the same minutes.
    """

    account: str = "paper-1"
    currency: str = "USD"
    initial_balance: Decimal = Decimal("10000.00")
    slippage_points: int = 0
    price_timeframe: str = "M1"
    state_file: Path | None = None
    max_history: int = 10_000
    instruments: Mapping[str, Instrument] = field(default_factory=lambda: dict(INSTRUMENTS))
