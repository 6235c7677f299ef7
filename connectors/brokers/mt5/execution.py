"""The MT5 broker: orders with a magic number and the idea's compact id in the comment.

Sending: `order_check` first (a refusal there costs nothing), then `order_send`.
`order_send` returning None means *no answer*, not *no order*: the terminal may
have executed it before the link dropped. That raises `OutcomeUnknown`, and the
executor looks the order up by comment before anything else (never a blind retry).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from connectors.brokers.base import (
    AccountInfo,
    BrokerError,
    DealInfo,
    Execution,
    OrderTicket,
    OutcomeUnknown,
    PositionInfo,
    lots,
    money,
)
from connectors.brokers.mt5 import parse
from connectors.brokers.mt5.client import Mt5Session
from connectors.brokers.mt5.config import Mt5Config
from connectors.brokers.mt5.retcodes import (
    SUCCESS,
    TRADE_RETCODE_DONE,
    TRADE_RETCODE_PLACED,
    TRADE_RETCODE_TIMEOUT,
    describe,
)
from connectors.core.clock import Clock, utc_now

log = logging.getLogger(__name__)

SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
ORDER_STATE_CANCELED = 2
ORDER_STATE_EXPIRED = 6
_PENDING_TYPES = {("buy", "limit"): "ORDER_TYPE_BUY_LIMIT", ("sell", "limit"):
                  "ORDER_TYPE_SELL_LIMIT", ("buy", "stop"): "ORDER_TYPE_BUY_STOP",
                  ("sell", "stop"): "ORDER_TYPE_SELL_STOP"}


def retcode_error(retcode: int, comment: str = "") -> BrokerError:
    """A `BrokerError` for a trade server return code."""
    meaning = describe(retcode)
    text = f"{meaning.name}: {meaning.message}" + (f" ({comment})" if comment else "")
    return BrokerError(meaning.error_code, text, retcode, meaning.status, meaning.retryable)


class Mt5Broker:
    """`Broker` over a MetaTrader5 module object."""

    name = "mt5"

    def __init__(self, session: Mt5Session, config: Mt5Config, clock: Clock = utc_now) -> None:
        self.session = session
        self.config = config
        self.clock = clock
        self.mt5 = session.mt5

    @property
    def tz(self) -> Any:
        """The trade server's timezone."""
        return self.config.server_timezone

    def connect(self) -> None:
        """Open the session (initialize + login)."""
        self.session.ensure()

    # --- reading -------------------------------------------------------------------------
    def account(self) -> AccountInfo:
        """account_info() plus today's closed P/L from the deal history."""
        info = self.session.call("account_info")
        if info is None:
            raise BrokerError("mt5_error", f"account_info failed: {self.session.last_error()}",
                              status="failed")
        positions = tuple(self.positions())
        return AccountInfo(
            account=self.config.account, broker=self.name, currency=str(info.currency),
            balance=money(info.balance), equity=money(info.equity),
            margin_used=money(info.margin), margin_free=money(info.margin_free),
            open_pl=money(info.profit), realized_pl_today=self.realized_today(),
            positions=positions,
        )

    def _server_midnight(self) -> datetime:
        local = self.clock().astimezone(self.tz)
        return datetime.combine(local.date(), time(0), self.tz).astimezone(UTC)

    def realized_today(self) -> Decimal:
        """Closed P/L (with commission and swap) of the server's trading day."""
        out = [d for d in self.deals(self._server_midnight()) if d.entry == "out"]
        return sum((d.profit for d in out), Decimal("0.00"))

    def positions(self) -> list[PositionInfo]:
        """positions_get() as `PositionInfo`s."""
        return [parse.position_info(p, self.tz) for p in self.session.query("positions_get")]

    def _history(self, name: str, since: datetime) -> tuple[Any, ...]:
        start = parse.to_server_epoch(since - timedelta(days=1), self.tz)
        end = parse.to_server_epoch(self.clock() + timedelta(days=1), self.tz)
        return self.session.query(name, start, end)

    def deals(self, since: datetime) -> list[DealInfo]:
        """history_deals_get() of trade deals since a time."""
        rows = [parse.deal_info(d, self.tz) for d in self._history("history_deals_get", since)
                if parse.is_trade_deal(d)]
        return [d for d in rows if d.time >= since]

    # --- lookup --------------------------------------------------------------------------
    def find(self, comment: str, magic: int) -> Execution | None:
        """Our order by comment and magic in positions, pending orders, deals, past orders.

        Raises `BrokerUnavailable` when any of them cannot be read: "not found" is
        only said when every place answered.
        """
        mine = _matcher(comment, magic)
        since = self.clock() - timedelta(days=self.config.lookup_days)
        for pos in filter(mine, self.session.query("positions_get")):
            return Execution("filled", int(pos.identifier), None, int(pos.ticket),
                             float(pos.price_open), lots(pos.volume),
                             message="found among open positions")
        for order in filter(mine, self.session.query("orders_get")):
            return Execution("placed", int(order.ticket), price=float(order.price_open),
                             volume=lots(order.volume_current), message="found among orders")
        for deal in filter(mine, self._history("history_deals_get", since)):
            if deal.entry == parse.DEAL_ENTRY_IN:
                return Execution("filled", int(deal.order), int(deal.ticket),
                                 int(deal.position_id), float(deal.price), lots(deal.volume),
                                 message="found in deal history",
                                 executed_at=parse.server_time(deal.time, self.tz))
        for order in filter(mine, self._history("history_orders_get", since)):
            if order.state in (ORDER_STATE_CANCELED, ORDER_STATE_EXPIRED):
                return Execution("placed", int(order.ticket), price=float(order.price_open),
                                 volume=lots(order.volume_initial),
                                 message="found in order history (no longer pending)")
        return None

    # --- trading -------------------------------------------------------------------------
    def _symbol(self, symbol: str) -> Any:
        info = self.session.call("symbol_info", symbol)
        if info is None:
            raise BrokerError("invalid_request", f"unknown symbol {symbol}")
        if not getattr(info, "visible", True):
            self.session.call("symbol_select", symbol, True)
        return info

    def _filling(self, info: Any) -> int:
        mode = int(getattr(info, "filling_mode", 0))
        if mode & SYMBOL_FILLING_FOK:
            return int(self.mt5.ORDER_FILLING_FOK)
        if mode & SYMBOL_FILLING_IOC:
            return int(self.mt5.ORDER_FILLING_IOC)
        return int(self.mt5.ORDER_FILLING_RETURN)

    def _request(self, ticket: OrderTicket) -> dict[str, Any]:
        info = self._symbol(ticket.symbol)
        base: dict[str, Any] = {
            "symbol": ticket.symbol, "volume": float(ticket.volume), "sl": ticket.stop_loss,
            "tp": ticket.take_profit[0] if ticket.take_profit else 0.0,
            "deviation": self.config.deviation_points, "magic": ticket.magic or self.config.magic,
            "comment": ticket.comment, "type_time": int(self.mt5.ORDER_TIME_GTC),
        }
        if ticket.order_type == "market":
            tick = self.session.call("symbol_info_tick", ticket.symbol)
            if tick is None:
                raise BrokerError("price_off", f"no tick for {ticket.symbol}", retryable=True)
            buy = ticket.direction == "buy"
            return {**base, "action": int(self.mt5.TRADE_ACTION_DEAL),
                    "type": int(self.mt5.ORDER_TYPE_BUY if buy else self.mt5.ORDER_TYPE_SELL),
                    "price": float(tick.ask if buy else tick.bid),
                    "type_filling": self._filling(info)}
        kind = _PENDING_TYPES.get((ticket.direction, ticket.order_type))
        if kind is None or ticket.price is None:
            raise BrokerError("invalid_request", f"unsupported order {ticket.order_type}")
        return {**base, "action": int(self.mt5.TRADE_ACTION_PENDING),
                "type": int(getattr(self.mt5, kind)), "price": float(ticket.price),
                "type_filling": int(self.mt5.ORDER_FILLING_RETURN)}

    def _check(self, request: dict[str, Any]) -> None:
        checked = self.session.call("order_check", request)
        if checked is None:
            code, text = self.session.last_error()
            raise BrokerError("invalid_request", f"order_check failed: {code} {text}")
        if checked.retcode not in (0, TRADE_RETCODE_DONE):
            raise retcode_error(int(checked.retcode), str(checked.comment))

    def place(self, ticket: OrderTicket) -> Execution:
        """order_check, then order_send; None from order_send is `OutcomeUnknown`."""
        request = self._request(ticket)
        self._check(request)
        return self._execution(self.session.send(request))

    def _execution(self, result: Any) -> Execution:
        retcode = int(result.retcode)
        if retcode == TRADE_RETCODE_TIMEOUT:
            raise OutcomeUnknown(f"order_send timed out ({result.comment})")
        if retcode not in SUCCESS:
            raise retcode_error(retcode, str(result.comment))
        status = "placed" if retcode == TRADE_RETCODE_PLACED else "filled"
        return Execution(
            status=status, order_id=int(result.order) or None,
            deal_id=int(result.deal) or None,
            position_ticket=int(result.order) if status == "filled" else None,
            price=float(result.price) or None, volume=lots(result.volume), retcode=retcode,
            message=str(result.comment), executed_at=self.clock(),
        )

    def modify(self, position_ticket: int, stop_loss: float | None,
               take_profit: float | None) -> None:
        """TRADE_ACTION_SLTP on a position."""
        pos = self._position(position_ticket)
        request = {"action": int(self.mt5.TRADE_ACTION_SLTP), "position": position_ticket,
                   "symbol": pos.symbol, "sl": stop_loss or 0.0, "tp": take_profit or 0.0,
                   "magic": self.config.magic}
        result = self.session.send(request)
        if int(result.retcode) not in SUCCESS:
            raise retcode_error(int(result.retcode), str(result.comment))

    def _position(self, ticket: int) -> Any:
        found = self.session.query("positions_get", ticket=ticket)
        if not found:
            raise BrokerError("invalid_request", f"no open position {ticket}")
        return found[0]

    def close(self, position_ticket: int, volume: Decimal | None = None) -> Execution:
        """An opposite deal on the position."""
        pos = self._position(position_ticket)
        tick = self.session.call("symbol_info_tick", pos.symbol)
        if tick is None:
            raise BrokerError("price_off", f"no tick for {pos.symbol}", retryable=True)
        sell = pos.type == parse.POSITION_TYPE_BUY
        request = {
            "action": int(self.mt5.TRADE_ACTION_DEAL), "position": position_ticket,
            "symbol": pos.symbol, "volume": float(volume or pos.volume),
            "type": int(self.mt5.ORDER_TYPE_SELL if sell else self.mt5.ORDER_TYPE_BUY),
            "price": float(tick.bid if sell else tick.ask),
            "deviation": self.config.deviation_points, "magic": self.config.magic,
            "comment": str(pos.comment)[:31], "type_time": int(self.mt5.ORDER_TIME_GTC),
            "type_filling": self._filling(self._symbol(pos.symbol)),
        }
        return self._execution(self.session.send(request))


def _matcher(comment: str, magic: int) -> Any:
    def mine(item: Any) -> bool:
        return str(item.comment) == comment and int(item.magic) == magic

    return mine
