"""The one broker interface and the values that cross it.

Every broker (paper, MT5, the next one) implements `Broker`. Money is `Decimal`
(2 places), volumes are `Decimal` lots (2 places), prices are floats on the
symbol's grid, times are timezone-aware UTC.

Take-profit lists: MT5 holds one TP per position. Splitting the lot into one
order per TP would turn one idempotency key into several orders that can fail
separately (leg 1 filled, leg 2 rejected), which one `OrderResult` cannot say
and which makes "exactly once" a property of a group. So every broker here sends
**one order per request, with the first (nearest) TP**; the other TPs are kept
with the position (`Position.take_profit` lists them all) for a human or a later
management rule to act on. Documented in the README of connectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

CENT = Decimal("0.01")


def money(value: Decimal | float | int) -> Decimal:
    """Money rounded to cents (half up, like statements)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def lots(value: Decimal | float | str) -> Decimal:
    """A volume in lots, 2 places."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class BrokerError(Exception):
    """The broker refused or failed an operation; nothing was executed.

    `error_code` is the stable word published in `OrderResult.error_code`
    (mt5_reject, requote, no_money, market_closed, invalid_stops ...), `status`
    is `rejected` (the trade server said no) or `failed` (we could not ask).
    """

    def __init__(self, error_code: str, message: str, retcode: int | None = None,
                 status: str = "rejected", retryable: bool = False) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.retcode = retcode
        self.status = status
        self.retryable = retryable


class BrokerUnavailable(Exception):
    """The broker could not be reached; nothing is known to have happened. Retry later."""


class OutcomeUnknown(BrokerUnavailable):
    """A send was attempted and no answer came back: the order may or may not exist.

    The executor must look the order up by its comment before doing anything else.
    """


@dataclass(frozen=True)
class OrderTicket:
    """What the executor asks a broker to do for one request."""

    request_id: str
    comment: str  # the compact idempotency key, <= 31 chars (MT5 limit)
    symbol: str
    direction: str  # buy | sell
    order_type: str  # market | limit | stop
    volume: Decimal
    stop_loss: float
    take_profit: tuple[float, ...] = ()
    price: float | None = None  # limit/stop price
    magic: int = 0


@dataclass(frozen=True)
class Execution:
    """What the broker did: a fill (`filled`) or a resting pending order (`placed`)."""

    status: str  # filled | placed
    order_id: int | None
    deal_id: int | None = None
    position_ticket: int | None = None
    price: float | None = None
    volume: Decimal | None = None
    retcode: int | None = None
    message: str = ""
    executed_at: datetime | None = None


@dataclass(frozen=True)
class PositionInfo:
    """An open position as the broker reports it."""

    ticket: int
    symbol: str
    direction: str
    volume: Decimal
    entry_price: float
    stop_loss: float | None
    take_profit: tuple[float, ...]
    unrealized_pl: Decimal
    opened_at: datetime
    comment: str = ""
    magic: int = 0


@dataclass(frozen=True)
class DealInfo:
    """One deal of the history (an entry or an exit)."""

    ticket: int
    order_id: int
    position_ticket: int
    symbol: str
    direction: str
    entry: str  # in | out
    volume: Decimal
    price: float
    profit: Decimal
    time: datetime
    comment: str = ""
    magic: int = 0


@dataclass(frozen=True)
class AccountInfo:
    """Balances as the broker reports them (realised P/L of today computed from deals)."""

    account: str
    broker: str
    currency: str
    balance: Decimal
    equity: Decimal
    margin_used: Decimal
    margin_free: Decimal
    open_pl: Decimal
    realized_pl_today: Decimal
    positions: tuple[PositionInfo, ...] = field(default_factory=tuple)


class Broker(Protocol):
    """What the executor and the account publisher need from any broker."""

    name: str

    def connect(self) -> None:
        """Open (or re-open) the session; raise `BrokerUnavailable` if it cannot."""

    def account(self) -> AccountInfo:
        """Balance, equity, margin, open P/L, realised P/L today and open positions."""

    def positions(self) -> list[PositionInfo]:
        """Open positions."""

    def deals(self, since: datetime) -> list[DealInfo]:
        """Deals since a time (the trade history)."""

    def place(self, ticket: OrderTicket) -> Execution:
        """Send a market or pending order.

        Raises `BrokerError` when refused (nothing executed), `BrokerUnavailable`
        when it could not even try, `OutcomeUnknown` when it tried and got no answer.
        """

    def modify(self, position_ticket: int, stop_loss: float | None,
               take_profit: float | None) -> None:
        """Change a position's SL/TP."""

    def close(self, position_ticket: int, volume: Decimal | None = None) -> Execution:
        """Close a position (all of it by default)."""

    def find(self, comment: str, magic: int) -> Execution | None:
        """The order a request produced, looked up by its comment in orders, positions
        and deals; None when the broker has no trace of it."""
