"""The paper account's state and its JSON form (persisted atomically after every change)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.core.files import write_atomic
from connectors.core.tagged_json import dumps, loads


@dataclass
class Quote:
    """The latest bid of a symbol and its spread (ask = bid + spread)."""

    bid: float
    spread: float
    time: datetime

    @property
    def ask(self) -> float:
        """The price a buy pays."""
        return self.bid + self.spread


@dataclass
class PaperPosition:
    """An open position."""

    ticket: int
    order_id: int
    symbol: str
    direction: str
    volume: Decimal
    entry_price: float
    stop_loss: float | None
    take_profit: tuple[float, ...]
    opened_at: datetime
    comment: str
    magic: int


@dataclass
class PaperOrder:
    """A resting limit or stop order."""

    ticket: int
    symbol: str
    direction: str
    order_type: str
    volume: Decimal
    price: float
    stop_loss: float | None
    take_profit: tuple[float, ...]
    placed_at: datetime
    comment: str
    magic: int


@dataclass
class PaperDeal:
    """One entry or exit."""

    ticket: int
    order_id: int
    position_ticket: int
    symbol: str
    direction: str
    entry: str
    volume: Decimal
    price: float
    profit: Decimal
    time: datetime
    comment: str
    magic: int
    reason: str = ""


@dataclass
class PaperState:
    """Everything the paper account is; a restart loads it and continues."""

    balance: Decimal
    next_ticket: int = 1
    positions: dict[int, PaperPosition] = field(default_factory=dict)
    orders: dict[int, PaperOrder] = field(default_factory=dict)
    deals: list[PaperDeal] = field(default_factory=list)
    quotes: dict[str, Quote] = field(default_factory=dict)

    def ticket(self) -> int:
        """A fresh ticket number (orders, deals and positions share one sequence)."""
        value = self.next_ticket
        self.next_ticket += 1
        return value


def _with_tuple_tps(data: dict[str, Any]) -> dict[str, Any]:
    data["take_profit"] = tuple(data["take_profit"])
    return data


def dump_state(state: PaperState, path: Path) -> None:
    """Write the state atomically (temp file, fsync, rename)."""
    data = {
        "balance": state.balance,
        "next_ticket": state.next_ticket,
        "positions": [asdict(p) for p in state.positions.values()],
        "orders": [asdict(o) for o in state.orders.values()],
        "deals": [asdict(d) for d in state.deals],
        "quotes": {s: asdict(q) for s, q in state.quotes.items()},
    }
    write_atomic(path, dumps(data).encode())


def load_state(path: Path) -> PaperState:
    """Read a state written by `dump_state`."""
    data = loads(path.read_text())
    positions = [PaperPosition(**_with_tuple_tps(p)) for p in data["positions"]]
    orders = [PaperOrder(**_with_tuple_tps(o)) for o in data["orders"]]
    return PaperState(
        balance=data["balance"],
        next_ticket=data["next_ticket"],
        positions={p.ticket: p for p in positions},
        orders={o.ticket: o for o in orders},
        deals=[PaperDeal(**d) for d in data["deals"]],
        quotes={s: Quote(**q) for s, q in data["quotes"].items()},
    )
