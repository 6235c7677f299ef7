"""The paper broker: fills against the latest candle, SL/TP on later candles, real accounting.

Model (documented because strategies are judged on it):
- Candle prices are bids (as MT5 bars are); ask = bid + the candle's spread (the
  instrument's typical spread when the candle has none).
- A market buy fills at ask + slippage, a sell at bid - slippage (`slippage_points`).
- Pending limit/stop orders trigger when a later candle's range reaches the price
  (buys on the ask side, sells on the bid side) and fill at the order price, or at
  the candle's open when it gapped through.
- Stops and targets are checked on every later candle: a buy exits on the bid
  (low <= SL, high >= TP), a sell on the ask (high + spread >= SL, low + spread <= TP).
  **When SL and TP are both inside one candle, the SL is assumed to have come first**
  (the worse case: intrabar order is unknown). A gap through the level fills at the open.
- Only the first TP is enforced (see `brokers.base` for why); all are reported.
- Margin = lots * contract size * entry price / leverage per symbol (`instruments`).
- equity = balance + open P/L at every step; margin free = equity - margin used.
- Money is Decimal, rounded to cents per position; the state is written atomically
  after every change, so a restart continues the same account.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.brokers.base import (
    AccountInfo,
    BrokerError,
    DealInfo,
    Execution,
    OrderTicket,
    PositionInfo,
    money,
)
from connectors.brokers.paper.config import PaperConfig
from connectors.brokers.paper.state import (
    PaperDeal,
    PaperOrder,
    PaperPosition,
    PaperState,
    Quote,
    dump_state,
    load_state,
)
from connectors.core.clock import Clock, utc_now
from connectors.instruments import Instrument
from connectors.market.synthetic import TIMEFRAME_DELTAS

log = logging.getLogger(__name__)


class PaperBroker:
    """A simulated account fed by `market.candles.v1`."""

    name = "paper"

    def __init__(self, config: PaperConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self.clock = clock
        self._last_event: datetime | None = None
        path = config.state_file
        if path is not None and path.exists():
            self.state = load_state(path)
            log.info("paper account %s restored from %s", config.account, path)
        else:
            self.state = PaperState(balance=money(config.initial_balance))

    # --- time and prices -------------------------------------------------------------------
    def now(self) -> datetime:
        """The paper world's time: the later of the clock and the last candle's close."""
        now = self.clock()
        return max(now, self._last_event) if self._last_event else now

    def _inst(self, symbol: str) -> Instrument:
        try:
            return self.config.instruments[symbol]
        except KeyError:
            raise BrokerError("invalid_request", f"paper broker does not trade {symbol}",
                              status="rejected") from None

    def _quote(self, symbol: str) -> Quote:
        quote = self.state.quotes.get(symbol)
        if quote is None:
            raise BrokerError("market_closed", f"no price for {symbol} yet", status="rejected")
        return quote

    def set_quote(self, symbol: str, bid: float, spread: float, at: datetime) -> None:
        """Set a price directly (tests, and the first candle of a symbol)."""
        self.state.quotes[symbol] = Quote(bid, spread, at)

    # --- accounting ----------------------------------------------------------------------
    def _pl(self, pos: PaperPosition, quote: Quote) -> Decimal:
        inst = self._inst(pos.symbol)
        if pos.direction == "buy":
            move = Decimal(str(quote.bid)) - Decimal(str(pos.entry_price))
        else:
            move = Decimal(str(pos.entry_price)) - Decimal(str(quote.ask))
        return money(move * pos.volume * inst.contract_size)

    def _margin(self, symbol: str, volume: Decimal, price: float) -> Decimal:
        inst = self._inst(symbol)
        return money(volume * inst.contract_size * Decimal(str(price)) / inst.leverage)

    def unrealized(self, pos: PaperPosition) -> Decimal:
        """Open P/L of one position at the latest quote."""
        quote = self.state.quotes.get(pos.symbol)
        return self._pl(pos, quote) if quote else Decimal("0.00")

    def open_pl(self) -> Decimal:
        """Sum of the positions' open P/L."""
        return sum((self.unrealized(p) for p in self.state.positions.values()), Decimal("0.00"))

    def margin_used(self) -> Decimal:
        """Margin held by open positions."""
        return sum((self._margin(p.symbol, p.volume, p.entry_price)
                    for p in self.state.positions.values()), Decimal("0.00"))

    def equity(self) -> Decimal:
        """Balance plus open P/L."""
        return self.state.balance + self.open_pl()

    # --- Broker interface ----------------------------------------------------------------
    def connect(self) -> None:
        """Nothing to connect to."""

    def account(self) -> AccountInfo:
        """Balances, margin and positions now."""
        equity, used = self.equity(), self.margin_used()
        return AccountInfo(
            account=self.config.account, broker=self.name, currency=self.config.currency,
            balance=self.state.balance, equity=equity, margin_used=used,
            margin_free=equity - used, open_pl=self.open_pl(),
            realized_pl_today=self.realized_today(), positions=tuple(self.positions()),
        )

    def realized_today(self) -> Decimal:
        """Closed P/L of the current UTC day."""
        today = self.now().astimezone(UTC).date()
        return sum((d.profit for d in self.state.deals
                    if d.entry == "out" and d.time.astimezone(UTC).date() == today),
                   Decimal("0.00"))

    def positions(self) -> list[PositionInfo]:
        """Open positions with their open P/L."""
        return [
            PositionInfo(
                ticket=p.ticket, symbol=p.symbol, direction=p.direction, volume=p.volume,
                entry_price=p.entry_price, stop_loss=p.stop_loss, take_profit=p.take_profit,
                unrealized_pl=self.unrealized(p), opened_at=p.opened_at, comment=p.comment,
                magic=p.magic,
            )
            for p in self.state.positions.values()
        ]

    def deals(self, since: datetime) -> list[DealInfo]:
        """Deals at or after `since`."""
        return [
            DealInfo(ticket=d.ticket, order_id=d.order_id, position_ticket=d.position_ticket,
                     symbol=d.symbol, direction=d.direction, entry=d.entry, volume=d.volume,
                     price=d.price, profit=d.profit, time=d.time, comment=d.comment,
                     magic=d.magic)
            for d in self.state.deals if d.time >= since
        ]

    def place(self, ticket: OrderTicket) -> Execution:
        """A market order fills now; a limit/stop order rests until a candle reaches it."""
        inst = self._inst(ticket.symbol)
        self._check_volume(inst, ticket.volume)
        quote = self._quote(ticket.symbol)
        if ticket.order_type == "market":
            return self._fill_market(ticket, inst, quote)
        return self._rest(ticket, quote)

    def modify(self, position_ticket: int, stop_loss: float | None,
               take_profit: float | None) -> None:
        """New SL/TP for an open position."""
        pos = self._position(position_ticket)
        pos.stop_loss = stop_loss
        pos.take_profit = (take_profit,) + pos.take_profit[1:] if take_profit else ()
        self._save()

    def close(self, position_ticket: int, volume: Decimal | None = None) -> Execution:
        """Close all or part of a position at the current quote."""
        pos = self._position(position_ticket)
        quote = self._quote(pos.symbol)
        price = quote.bid if pos.direction == "buy" else quote.ask
        deal = self._exit(pos, price, volume or pos.volume, self.now(), "client")
        self._save()
        return Execution("filled", deal.order_id, deal.ticket, pos.ticket, price, deal.volume,
                         message="closed", executed_at=deal.time)

    def find(self, comment: str, magic: int) -> Execution | None:
        """Look the comment up in positions, pending orders and the deal history."""
        for deal in self.state.deals:
            if deal.comment == comment and deal.entry == "in" and deal.magic == magic:
                return Execution("filled", deal.order_id, deal.ticket, deal.position_ticket,
                                 deal.price, deal.volume, message="found in deal history",
                                 executed_at=deal.time)
        for pos in self.state.positions.values():
            if pos.comment == comment and pos.magic == magic:
                return Execution("filled", pos.order_id, None, pos.ticket, pos.entry_price,
                                 pos.volume, message="found among open positions",
                                 executed_at=pos.opened_at)
        for order in self.state.orders.values():
            if order.comment == comment and order.magic == magic:
                return Execution("placed", order.ticket, price=order.price, volume=order.volume,
                                 message="found among pending orders",
                                 executed_at=order.placed_at)
        return None

    # --- orders ----------------------------------------------------------------------------
    @staticmethod
    def _check_volume(inst: Instrument, volume: Decimal) -> None:
        if volume < inst.volume_min or volume > inst.volume_max or volume % inst.volume_step:
            raise BrokerError("invalid_volume",
                              f"volume {volume} outside {inst.volume_min}-{inst.volume_max} "
                              f"step {inst.volume_step}")

    @staticmethod
    def _check_stops(direction: str, price: float, ticket: OrderTicket) -> None:
        sign = 1 if direction == "buy" else -1
        if ticket.stop_loss and (price - ticket.stop_loss) * sign <= 0:
            raise BrokerError("invalid_stops", f"stop loss {ticket.stop_loss} on the wrong side "
                                               f"of {price}")
        if ticket.take_profit and (ticket.take_profit[0] - price) * sign <= 0:
            raise BrokerError("invalid_stops", f"take profit {ticket.take_profit[0]} on the "
                                               f"wrong side of {price}")

    def _fill_market(self, ticket: OrderTicket, inst: Instrument, quote: Quote) -> Execution:
        slip = inst.points_to_price(self.config.slippage_points)
        price = inst.round_price(quote.ask + slip if ticket.direction == "buy"
                                 else quote.bid - slip)
        self._check_stops(ticket.direction, price, ticket)
        self._check_margin(ticket.symbol, ticket.volume, price)
        pos, deal = self._open(ticket.symbol, ticket.direction, ticket.volume, price,
                               ticket.stop_loss, ticket.take_profit, ticket.comment,
                               ticket.magic, self.now())
        self._save()
        return Execution("filled", deal.order_id, deal.ticket, pos.ticket, price, ticket.volume,
                         message="filled by the paper broker", executed_at=deal.time)

    def _check_margin(self, symbol: str, volume: Decimal, price: float) -> None:
        need = self._margin(symbol, volume, price)
        free = self.equity() - self.margin_used()
        if need > free:
            raise BrokerError("no_money", f"margin {need} needed, {free} free")

    def _rest(self, ticket: OrderTicket, quote: Quote) -> Execution:
        if ticket.price is None or ticket.order_type not in ("limit", "stop"):
            raise BrokerError("invalid_request", "a pending order needs type limit/stop and a "
                                                 "price")
        market = quote.ask if ticket.direction == "buy" else quote.bid
        below = ticket.price < market
        wants_below = (ticket.order_type == "limit") == (ticket.direction == "buy")
        if below != wants_below:
            raise BrokerError("invalid_price", f"{ticket.direction} {ticket.order_type} at "
                                               f"{ticket.price} is on the wrong side of {market}")
        self._check_stops(ticket.direction, ticket.price, ticket)
        order = PaperOrder(self.state.ticket(), ticket.symbol, ticket.direction,
                           ticket.order_type, ticket.volume, ticket.price, ticket.stop_loss,
                           ticket.take_profit, self.now(), ticket.comment, ticket.magic)
        self.state.orders[order.ticket] = order
        self._save()
        return Execution("placed", order.ticket, price=order.price, volume=order.volume,
                         message="pending order placed", executed_at=order.placed_at)

    def _open(self, symbol: str, direction: str, volume: Decimal, price: float,
              stop_loss: float | None, take_profit: tuple[float, ...], comment: str,
              magic: int, at: datetime) -> tuple[PaperPosition, PaperDeal]:
        order_id = self.state.ticket()
        pos = PaperPosition(self.state.ticket(), order_id, symbol, direction, volume, price,
                            stop_loss or None, tuple(take_profit), at, comment, magic)
        deal = PaperDeal(self.state.ticket(), order_id, pos.ticket, symbol, direction, "in",
                         volume, price, Decimal("0.00"), at, comment, magic)
        self.state.positions[pos.ticket] = pos
        self._record(deal)
        log.info("paper %s %s %s at %s", direction, volume, symbol, price,
                 extra={"order_id": order_id, "position": pos.ticket})
        return pos, deal

    def _exit(self, pos: PaperPosition, price: float, volume: Decimal, at: datetime,
              reason: str) -> PaperDeal:
        volume = min(volume, pos.volume)
        inst = self._inst(pos.symbol)
        sign = 1 if pos.direction == "buy" else -1
        profit = money((Decimal(str(price)) - Decimal(str(pos.entry_price))) * sign * volume
                       * inst.contract_size)
        exit_dir = "sell" if pos.direction == "buy" else "buy"
        deal = PaperDeal(self.state.ticket(), self.state.ticket(), pos.ticket, pos.symbol,
                         exit_dir, "out", volume, price, profit, at, pos.comment, pos.magic,
                         reason)
        self.state.balance += profit
        pos.volume -= volume
        if pos.volume <= 0:
            del self.state.positions[pos.ticket]
        self._record(deal)
        return deal

    def _record(self, deal: PaperDeal) -> None:
        self.state.deals.append(deal)
        overflow = len(self.state.deals) - self.config.max_history
        if overflow > 0:
            del self.state.deals[:overflow]

    def _position(self, ticket: int) -> PaperPosition:
        pos = self.state.positions.get(ticket)
        if pos is None:
            raise BrokerError("invalid_request", f"no open position {ticket}")
        return pos

    def _save(self) -> None:
        if self.config.state_file is not None:
            dump_state(self.state, self.config.state_file)

    # --- candles ---------------------------------------------------------------------------
    def on_candle(self, candle: dict[str, Any]) -> list[PaperDeal]:
        """Learn the price from a closed candle; trigger pending orders, stops and targets.

        Returns the deals it caused (the service publishes the account after fills).
        """
        if candle["timeframe"] != self.config.price_timeframe or not candle.get("closed", True):
            return []
        symbol = candle["symbol"]
        if symbol not in self.config.instruments:
            return []
        at = candle["open_time"] + TIMEFRAME_DELTAS[candle["timeframe"]]
        previous = self.state.quotes.get(symbol)
        if previous is not None and at <= previous.time:
            return []  # a replayed or re-sent bar: already applied
        spread = candle.get("spread") or self._inst(symbol).points_to_price(
            self._inst(symbol).spread_points)
        deals = self._trigger_exits(symbol, candle, spread, at)
        deals += self._trigger_orders(symbol, candle, spread, at)
        self.state.quotes[symbol] = Quote(candle["close"], spread, at)
        self._last_event = at
        if deals or self.state.positions or self.state.orders:
            self._save()  # open P/L depends on the quote: a restart must see the same equity
        return deals

    def _trigger_orders(self, symbol: str, candle: dict[str, Any], spread: float,
                        at: datetime) -> list[PaperDeal]:
        deals: list[PaperDeal] = []
        for order in [o for o in self.state.orders.values() if o.symbol == symbol]:
            price = _order_fill(order, candle, spread)
            if price is None:
                continue
            del self.state.orders[order.ticket]
            _, deal = self._open(symbol, order.direction, order.volume, price, order.stop_loss,
                                 order.take_profit, order.comment, order.magic, at)
            deals.append(deal)
        return deals

    def _trigger_exits(self, symbol: str, candle: dict[str, Any], spread: float,
                       at: datetime) -> list[PaperDeal]:
        deals: list[PaperDeal] = []
        for pos in [p for p in self.state.positions.values() if p.symbol == symbol]:
            hit = _exit_hit(pos, candle, spread)
            if hit is not None:
                price, reason = hit
                deals.append(self._exit(pos, self._inst(symbol).round_price(price), pos.volume,
                                        at, reason))
        return deals


def _order_fill(order: PaperOrder, candle: dict[str, Any], spread: float) -> float | None:
    """The fill price of a pending order in this candle, or None."""
    shift = spread if order.direction == "buy" else 0.0  # buys trade on the ask
    low, high, open_ = candle["low"] + shift, candle["high"] + shift, candle["open"] + shift
    goes_down = (order.order_type == "limit") == (order.direction == "buy")
    if goes_down and low <= order.price:
        return min(order.price, open_)
    if not goes_down and high >= order.price:
        return max(order.price, open_)
    return None


def _exit_hit(pos: PaperPosition, candle: dict[str, Any], spread: float) -> \
        tuple[float, str] | None:
    """(exit price, sl|tp) when this candle reaches the stop or the first target."""
    shift = spread if pos.direction == "sell" else 0.0  # a sell position exits on the ask
    low, high, open_ = candle["low"] + shift, candle["high"] + shift, candle["open"] + shift
    tp = pos.take_profit[0] if pos.take_profit else None
    if pos.direction == "buy":
        if pos.stop_loss is not None and low <= pos.stop_loss:
            return min(pos.stop_loss, open_), "sl"  # SL first when both are in the bar
        if tp is not None and high >= tp:
            return max(tp, open_), "tp"
        return None
    if pos.stop_loss is not None and high >= pos.stop_loss:
        return max(pos.stop_loss, open_), "sl"
    if tp is not None and low <= tp:
        return min(tp, open_), "tp"
    return None


def bar_close_time(candle: dict[str, Any]) -> datetime:
    """When a candle closed."""
    delta: timedelta = TIMEFRAME_DELTAS[candle["timeframe"]]
    open_time: datetime = candle["open_time"]
    return open_time + delta
