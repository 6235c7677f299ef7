"""A fake `MetaTrader5` module that follows the real package's documented API.

An instance behaves like the module (or like mt5linux's `MetaTrader5(host, port)`
object): the same functions, the same named-tuple structures with the same field
names (the large `SymbolInfo` and `TerminalInfo` keep a subset of theirs), rate
arrays as numpy structured arrays, the documented constant values, `None` plus
`last_error()` on failure.

It executes orders against its own ticks (market orders fill at ask/bid, pending
orders rest) and can be scripted to misbehave: reject with any retcode, requote,
drop the terminal, refuse to reconnect for a while, and — the dangerous case —
time out *after* having executed the order (or before).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

# --- constants (values as documented for the MetaTrader5 package) -----------------------
TIMEFRAME_M1, TIMEFRAME_M2, TIMEFRAME_M3, TIMEFRAME_M4, TIMEFRAME_M5 = 1, 2, 3, 4, 5
TIMEFRAME_M6, TIMEFRAME_M10, TIMEFRAME_M12, TIMEFRAME_M15 = 6, 10, 12, 15
TIMEFRAME_M20, TIMEFRAME_M30 = 20, 30
TIMEFRAME_H1, TIMEFRAME_H2, TIMEFRAME_H3, TIMEFRAME_H4 = 16385, 16386, 16387, 16388
TIMEFRAME_H6, TIMEFRAME_H8, TIMEFRAME_H12, TIMEFRAME_D1 = 16390, 16392, 16396, 16408
TIMEFRAME_W1, TIMEFRAME_MN1 = 32769, 49153

ORDER_TYPE_BUY, ORDER_TYPE_SELL = 0, 1
ORDER_TYPE_BUY_LIMIT, ORDER_TYPE_SELL_LIMIT = 2, 3
ORDER_TYPE_BUY_STOP, ORDER_TYPE_SELL_STOP = 4, 5
ORDER_TYPE_BUY_STOP_LIMIT, ORDER_TYPE_SELL_STOP_LIMIT, ORDER_TYPE_CLOSE_BY = 6, 7, 8

TRADE_ACTION_DEAL, TRADE_ACTION_PENDING, TRADE_ACTION_SLTP = 1, 5, 6
TRADE_ACTION_MODIFY, TRADE_ACTION_REMOVE, TRADE_ACTION_CLOSE_BY = 7, 8, 10

ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN, ORDER_FILLING_BOC = 0, 1, 2, 3
ORDER_TIME_GTC, ORDER_TIME_DAY, ORDER_TIME_SPECIFIED, ORDER_TIME_SPECIFIED_DAY = 0, 1, 2, 3

ORDER_STATE_STARTED, ORDER_STATE_PLACED, ORDER_STATE_CANCELED = 0, 1, 2
ORDER_STATE_PARTIAL, ORDER_STATE_FILLED, ORDER_STATE_REJECTED, ORDER_STATE_EXPIRED = 3, 4, 5, 6

POSITION_TYPE_BUY, POSITION_TYPE_SELL = 0, 1
DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE = 0, 1, 2
DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY = 0, 1, 2, 3
SYMBOL_FILLING_FOK, SYMBOL_FILLING_IOC = 1, 2

TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_CANCEL = 10007
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_DONE_PARTIAL = 10010
TRADE_RETCODE_ERROR = 10011
TRADE_RETCODE_TIMEOUT = 10012
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_INVALID_PRICE = 10015
TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_TRADE_DISABLED = 10017
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_MONEY = 10019
TRADE_RETCODE_PRICE_CHANGED = 10020
TRADE_RETCODE_PRICE_OFF = 10021
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_CONNECTION = 10031

RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NOT_FOUND = -4
RES_E_AUTH_FAILED = -6
RES_E_INTERNAL_FAIL_SEND = -10001
RES_E_INTERNAL_FAIL_RECEIVE = -10002
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005

RATES_DTYPE = np.dtype([
    ("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
    ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8"),
])


# --- structures ---------------------------------------------------------------------------
class TerminalInfo(NamedTuple):
    community_account: bool
    community_connection: bool
    connected: bool
    dlls_allowed: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    build: int
    maxbars: int
    company: str
    name: str
    path: str


class AccountInfo(NamedTuple):
    login: int
    trade_mode: int
    leverage: int
    limit_orders: int
    margin_so_mode: int
    trade_allowed: bool
    trade_expert: bool
    margin_mode: int
    currency_digits: int
    fifo_close: bool
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    margin_so_call: float
    margin_so_so: float
    margin_initial: float
    margin_maintenance: float
    assets: float
    liabilities: float
    commission_blocked: float
    name: str
    server: str
    currency: str
    company: str


class SymbolInfo(NamedTuple):
    custom: bool
    select: bool
    visible: bool
    digits: int
    spread: int
    spread_float: bool
    trade_mode: int
    trade_stops_level: int
    filling_mode: int
    bid: float
    ask: float
    point: float
    trade_tick_value: float
    trade_tick_size: float
    trade_contract_size: float
    volume_min: float
    volume_max: float
    volume_step: float
    currency_base: str
    currency_profit: str
    currency_margin: str
    description: str
    name: str


class Tick(NamedTuple):
    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float


class TradeRequest(NamedTuple):
    action: int
    magic: int
    order: int
    symbol: str
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    deviation: int
    type: int
    type_filling: int
    type_time: int
    expiration: int
    comment: str
    position: int
    position_by: int


class OrderCheckResult(NamedTuple):
    retcode: int
    balance: float
    equity: float
    profit: float
    margin: float
    margin_free: float
    margin_level: float
    comment: str
    request: TradeRequest


class OrderSendResult(NamedTuple):
    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: TradeRequest


class TradePosition(NamedTuple):
    ticket: int
    time: int
    time_msc: int
    time_update: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str
    external_id: str


class TradeOrder(NamedTuple):
    ticket: int
    time_setup: int
    time_setup_msc: int
    time_done: int
    time_done_msc: int
    time_expiration: int
    type: int
    type_time: int
    type_filling: int
    state: int
    magic: int
    position_id: int
    position_by_id: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    price_stoplimit: float
    symbol: str
    comment: str
    external_id: str


class TradeDeal(NamedTuple):
    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str


SYMBOLS = {  # name: (digits, contract size, bid, spread points, profit currency)
    "XAUUSD": (2, 100.0, 2380.00, 25, "USD"),
    "EURUSD": (5, 100_000.0, 1.08500, 12, "USD"),
    "US30": (1, 1.0, 39000.0, 20, "USD"),
}

REQUEST_DEFAULTS = dict(action=0, magic=0, order=0, symbol="", volume=0.0, price=0.0,
                        stoplimit=0.0, sl=0.0, tp=0.0, deviation=0, type=0, type_filling=0,
                        type_time=0, expiration=0, comment="", position=0, position_by=0)


def _request(req: dict[str, Any]) -> TradeRequest:
    return TradeRequest(**{**REQUEST_DEFAULTS, **req})


class FakeMetaTrader5:
    """One fake terminal + trade server. Attribute access mirrors the module."""

    def __getattr__(self, name: str) -> Any:
        value = globals().get(name)
        if value is None or not name.isupper():
            raise AttributeError(name)
        return value

    def __init__(self, clock: Callable[[], datetime] | None = None, balance: float = 10_000.0,
                 login: int = 5551234, password: str = "s3cret-pass",  # noqa: S107
                 leverage: int = 100
                 ) -> None:
        self.clock = clock or (lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        self.expected_login, self.expected_password = login, password
        self.leverage = leverage
        self.balance = balance
        self.connected = False
        self.error: tuple[int, str] = (RES_S_OK, "Success")
        self.ticks = {s: (v[2], v[2] + v[3] * 10 ** -v[0]) for s, v in SYMBOLS.items()}
        self.positions: dict[int, TradePosition] = {}
        self.orders: dict[int, TradeOrder] = {}
        self.history_orders: list[TradeOrder] = []
        self.history_deals: list[TradeDeal] = []
        self.rates: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        self.next_ticket = 100_000
        self.send_script: deque[Any] = deque()
        self.initialize_failures = 0
        self.initialize_calls: list[dict[str, Any]] = []
        self.sent: list[TradeRequest] = []  # every request the server executed
        self.checks = 0

    # --- scripting -------------------------------------------------------------------------
    def script(self, *behaviours: Any) -> None:
        """Queue what the next order_send calls do: 'ok', 'requote', ('reject', retcode),
        'timeout_after' (execute, then no answer and the link drops), 'timeout_before'
        (no answer, nothing executed, link drops)."""
        self.send_script.extend(behaviours)

    def drop(self) -> None:
        """The terminal goes away (until the next successful initialize)."""
        self.connected = False
        self.error = (RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")

    def fail_initialize(self, times: int) -> None:
        """The next `times` initialize() calls fail."""
        self.initialize_failures = times

    def set_tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        """Move the market."""
        digits, _, _, spread, _ = SYMBOLS[symbol]
        self.ticks[symbol] = (bid, ask if ask is not None else round(bid + spread * 10 ** -digits,
                                                                     digits))

    def add_rates(self, symbol: str, timeframe: int,
                  rows: list[tuple[int, float, float, float, float, int, int, int]]) -> None:
        """Append bars (time, open, high, low, close, tick_volume, spread, real_volume);
        the last one is the forming bar."""
        self.rates.setdefault((symbol, timeframe), []).extend(rows)

    def orders_sent_with(self, comment: str) -> int:
        """How many executed requests carried this comment (the duplicate check)."""
        return sum(1 for r in self.sent if r.comment == comment and r.position == 0)

    # --- helpers ---------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock().timestamp())

    def _ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket

    def _fail(self, code: int, text: str) -> None:
        self.error = (code, text)

    def _ok(self) -> None:
        self.error = (RES_S_OK, "Success")

    def _down(self) -> bool:
        if not self.connected:
            self.error = (RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
            return True
        return False

    # --- session ---------------------------------------------------------------------------
    def initialize(self, path: str | None = None, *, login: int | None = None,
                   password: str | None = None, server: str | None = None,
                   timeout: int | None = None, portable: bool = False) -> bool:
        self.initialize_calls.append({"path": path, "login": login, "server": server})
        if self.initialize_failures > 0:
            self.initialize_failures -= 1
            self._fail(RES_E_INTERNAL_FAIL_INIT, "Terminal: Initialization failed")
            return False
        if login is not None and (login, password) != (self.expected_login,
                                                        self.expected_password):
            self._fail(RES_E_AUTH_FAILED, "Terminal: Authorization failed")
            return False
        self.connected = True
        self._ok()
        return True

    def login(self, login: int, password: str | None = None, server: str | None = None,
              timeout: int | None = None) -> bool:
        if self._down():
            return False
        return (login, password) == (self.expected_login, self.expected_password)

    def shutdown(self) -> bool:
        self.connected = False
        return True

    def last_error(self) -> tuple[int, str]:
        return self.error

    def version(self) -> tuple[int, int, str] | None:
        return None if self._down() else (500, 4410, "1 Jan 2026")

    def terminal_info(self) -> TerminalInfo | None:
        if self._down():
            return None
        return TerminalInfo(False, False, True, False, True, False, 4410, 100_000,
                            "Fake Broker Ltd", "MetaTrader 5", "C:/fake")

    # --- market ----------------------------------------------------------------------------
    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        if self._down():
            return None
        if symbol not in SYMBOLS:
            self._fail(RES_E_NOT_FOUND, "Terminal: Not found")
            return None
        digits, contract, _, spread, ccy = SYMBOLS[symbol]
        bid, ask = self.ticks[symbol]
        point = 10 ** -digits
        return SymbolInfo(False, True, True, digits, spread, True, 4, 0,
                          SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC, bid, ask, point,
                          contract * point, point, contract, 0.01, 100.0, 0.01,
                          symbol[:3], ccy, ccy, symbol, symbol)

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        return not self._down() and symbol in SYMBOLS

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        if self._down():
            return None
        if symbol not in self.ticks:
            self._fail(RES_E_NOT_FOUND, "Terminal: Not found")
            return None
        bid, ask = self.ticks[symbol]
        now = self._now()
        return Tick(now, bid, ask, 0.0, 0, now * 1000, 6, 0.0)

    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int,
                            count: int) -> np.ndarray | None:
        if self._down():
            return None
        rows = self.rates.get((symbol, timeframe))
        if not rows:
            self._fail(RES_E_NOT_FOUND, "Terminal: Not found")
            return None
        end = len(rows) - start_pos
        return np.array(rows[max(0, end - count):end], dtype=RATES_DTYPE)

    # --- account ---------------------------------------------------------------------------
    def _profit(self, pos: TradePosition) -> float:
        bid, ask = self.ticks[pos.symbol]
        contract = SYMBOLS[pos.symbol][1]
        if pos.type == POSITION_TYPE_BUY:
            return round((bid - pos.price_open) * pos.volume * contract, 2)
        return round((pos.price_open - ask) * pos.volume * contract, 2)

    def _margin(self) -> float:
        return round(sum(p.volume * SYMBOLS[p.symbol][1] * p.price_open / self.leverage
                         for p in self.positions.values()), 2)

    def account_info(self) -> AccountInfo | None:
        if self._down():
            return None
        profit = round(sum(self._profit(p) for p in self.positions.values()), 2)
        equity = round(self.balance + profit, 2)
        margin = self._margin()
        level = equity / margin * 100 if margin else 0.0
        return AccountInfo(self.expected_login, 0, self.leverage, 200, 0, True, True, 2, 2,
                           False, self.balance, 0.0, profit, equity, margin,
                           round(equity - margin, 2), level, 50.0, 30.0, 0.0, 0.0, 0.0, 0.0,
                           0.0, "Fake Trader", "FakeBroker-Demo", "USD", "Fake Broker Ltd")

    def positions_total(self) -> int | None:
        return None if self._down() else len(self.positions)

    def positions_get(self, symbol: str | None = None, group: str | None = None,
                      ticket: int | None = None) -> tuple[TradePosition, ...] | None:
        if self._down():
            return None
        self._ok()
        out = [p._replace(profit=self._profit(p), price_current=self.ticks[p.symbol][0])
               for p in self.positions.values()]
        if symbol is not None:
            out = [p for p in out if p.symbol == symbol]
        if ticket is not None:
            out = [p for p in out if p.ticket == ticket]
        return tuple(out)

    def orders_total(self) -> int | None:
        return None if self._down() else len(self.orders)

    def orders_get(self, symbol: str | None = None, group: str | None = None,
                   ticket: int | None = None) -> tuple[TradeOrder, ...] | None:
        if self._down():
            return None
        self._ok()
        out = list(self.orders.values())
        if ticket is not None:
            out = [o for o in out if o.ticket == ticket]
        return tuple(o for o in out if symbol is None or o.symbol == symbol)

    def history_orders_get(self, date_from: Any = None, date_to: Any = None,
                           group: str | None = None,
                           ticket: int | None = None, position: int | None = None
                           ) -> tuple[TradeOrder, ...] | None:
        if self._down():
            return None
        self._ok()
        out = self.history_orders
        if ticket is not None:
            return tuple(o for o in out if o.ticket == ticket)
        if position is not None:
            return tuple(o for o in out if o.position_id == position)
        return tuple(o for o in out if _within(o.time_setup, date_from, date_to))

    def history_deals_get(self, date_from: Any = None, date_to: Any = None,
                          group: str | None = None,
                          ticket: int | None = None, position: int | None = None
                          ) -> tuple[TradeDeal, ...] | None:
        if self._down():
            return None
        self._ok()
        out = self.history_deals
        if ticket is not None:
            return tuple(d for d in out if d.order == ticket)
        if position is not None:
            return tuple(d for d in out if d.position_id == position)
        return tuple(d for d in out if _within(d.time, date_from, date_to))

    # --- trading ---------------------------------------------------------------------------
    def _validate(self, req: TradeRequest) -> int:
        if req.symbol not in SYMBOLS:
            return TRADE_RETCODE_INVALID
        if len(req.comment) > 31:
            return TRADE_RETCODE_INVALID
        if req.action == TRADE_ACTION_SLTP:
            return 0 if req.position in self.positions else TRADE_RETCODE_INVALID
        if not 0.01 <= req.volume <= 100.0 or round(req.volume * 100) != req.volume * 100:
            return TRADE_RETCODE_INVALID_VOLUME
        if req.action == TRADE_ACTION_DEAL and req.position == 0:
            bid, ask = self.ticks[req.symbol]
            price = ask if req.type == ORDER_TYPE_BUY else bid
            sign = 1 if req.type == ORDER_TYPE_BUY else -1
            if req.sl and (price - req.sl) * sign <= 0:
                return TRADE_RETCODE_INVALID_STOPS
            if req.tp and (req.tp - price) * sign <= 0:
                return TRADE_RETCODE_INVALID_STOPS
        return 0

    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None:
        if self._down():
            return None
        self.checks += 1
        req = _request(request)
        code = self._validate(req)
        account = self.account_info()
        assert account is not None
        return OrderCheckResult(code, account.balance, account.equity, account.profit,
                                account.margin, account.margin_free, account.margin_level,
                                "Done" if code == 0 else "Invalid request", req)

    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None:
        if self._down():
            return None
        req = _request(request)
        behaviour = self.send_script.popleft() if self.send_script else "ok"
        if behaviour == "timeout_before":
            self.drop()
            self._fail(RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
            return None
        if behaviour == "requote":
            return self._result(req, TRADE_RETCODE_REQUOTE, "Requote")
        if isinstance(behaviour, tuple) and behaviour[0] == "reject":
            return self._result(req, behaviour[1], "Rejected")
        code = self._validate(req)
        if code:
            return self._result(req, code, "Invalid request")
        result = self._execute(req)
        if behaviour == "timeout_after":
            self.drop()
            self._fail(RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
            return None
        return result

    def _result(self, req: TradeRequest, code: int, comment: str, deal: int = 0, order: int = 0,
                price: float = 0.0) -> OrderSendResult:
        self._ok()
        bid, ask = self.ticks.get(req.symbol, (0.0, 0.0))
        return OrderSendResult(code, deal, order, req.volume if deal or order else 0.0, price,
                               bid, ask, comment, 0, 0, req)

    def _execute(self, req: TradeRequest) -> OrderSendResult:
        self.sent.append(req)
        if req.action == TRADE_ACTION_PENDING:
            return self._place_pending(req)
        if req.action == TRADE_ACTION_SLTP:
            pos = self.positions[req.position]
            self.positions[req.position] = pos._replace(sl=req.sl, tp=req.tp)
            return self._result(req, TRADE_RETCODE_DONE, "Request executed")
        if req.position:
            return self._close(req)
        return self._open(req)

    def _place_pending(self, req: TradeRequest) -> OrderSendResult:
        ticket, now = self._ticket(), self._now()
        self.orders[ticket] = TradeOrder(ticket, now, now * 1000, 0, 0, 0, req.type,
                                         req.type_time, req.type_filling, ORDER_STATE_PLACED,
                                         req.magic, 0, 0, 3, req.volume, req.volume, req.price,
                                         req.sl, req.tp, req.price, 0.0, req.symbol, req.comment,
                                         "")
        return self._result(req, TRADE_RETCODE_PLACED, "Request executed", order=ticket)

    def _open(self, req: TradeRequest) -> OrderSendResult:
        bid, ask = self.ticks[req.symbol]
        price = ask if req.type == ORDER_TYPE_BUY else bid
        order, deal, now = self._ticket(), self._ticket(), self._now()
        self.positions[order] = TradePosition(order, now, now * 1000, now, now * 1000, req.type,
                                              req.magic, order, 3, req.volume, price, req.sl,
                                              req.tp, price, 0.0, 0.0, req.symbol, req.comment,
                                              "")
        self.history_orders.append(TradeOrder(order, now, now * 1000, now, now * 1000, 0,
                                              req.type, req.type_time, req.type_filling,
                                              ORDER_STATE_FILLED, req.magic, order, 0, 3,
                                              req.volume, 0.0, price, req.sl, req.tp, price, 0.0,
                                              req.symbol, req.comment, ""))
        self.history_deals.append(TradeDeal(deal, order, now, now * 1000, req.type,
                                            DEAL_ENTRY_IN, req.magic, order, 3, req.volume,
                                            price, 0.0, 0.0, 0.0, 0.0, req.symbol, req.comment,
                                            ""))
        return self._result(req, TRADE_RETCODE_DONE, "Request executed", deal, order, price)

    def _close(self, req: TradeRequest) -> OrderSendResult:
        pos = self.positions[req.position]
        profit = self._profit(pos) * req.volume / pos.volume
        bid, ask = self.ticks[req.symbol]
        price = bid if pos.type == POSITION_TYPE_BUY else ask
        order, deal, now = self._ticket(), self._ticket(), self._now()
        self.balance = round(self.balance + profit, 2)
        self.history_deals.append(TradeDeal(deal, order, now, now * 1000, req.type,
                                            DEAL_ENTRY_OUT, req.magic, pos.ticket, 3, req.volume,
                                            price, 0.0, 0.0, round(profit, 2), 0.0, req.symbol,
                                            req.comment, ""))
        remaining = round(pos.volume - req.volume, 2)
        if remaining <= 0:
            del self.positions[pos.ticket]
        else:
            self.positions[pos.ticket] = pos._replace(volume=remaining)
        return self._result(req, TRADE_RETCODE_DONE, "Request executed", deal, order, price)


def _epoch(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def _within(ts: int, date_from: Any, date_to: Any) -> bool:
    start, end = _epoch(date_from), _epoch(date_to)
    return (start is None or ts >= start) and (end is None or ts <= end)
