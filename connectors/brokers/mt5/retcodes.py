"""MT5 trade server return codes mapped to the error codes published in `OrderResult`.

Names are the constants of the MetaTrader5 package (`TRADE_RETCODE_*`), values
as documented by MetaQuotes.
"""

from __future__ import annotations

from dataclasses import dataclass

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
TRADE_RETCODE_INVALID_EXPIRATION = 10022
TRADE_RETCODE_ORDER_CHANGED = 10023
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_SERVER_DISABLES_AT = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_LOCKED = 10028
TRADE_RETCODE_FROZEN = 10029
TRADE_RETCODE_INVALID_FILL = 10030
TRADE_RETCODE_CONNECTION = 10031
TRADE_RETCODE_ONLY_REAL = 10032
TRADE_RETCODE_LIMIT_ORDERS = 10033
TRADE_RETCODE_LIMIT_VOLUME = 10034
TRADE_RETCODE_INVALID_ORDER = 10035
TRADE_RETCODE_POSITION_CLOSED = 10036
TRADE_RETCODE_LIMIT_POSITIONS = 10040

SUCCESS = frozenset({TRADE_RETCODE_DONE, TRADE_RETCODE_PLACED, TRADE_RETCODE_DONE_PARTIAL})


@dataclass(frozen=True)
class Retcode:
    """What a return code means for us."""

    name: str
    error_code: str
    message: str
    retryable: bool = False  # worth another attempt (after looking the order up)
    status: str = "rejected"


_TABLE: dict[int, Retcode] = {
    TRADE_RETCODE_REQUOTE: Retcode("TRADE_RETCODE_REQUOTE", "requote", "requote", True),
    TRADE_RETCODE_REJECT: Retcode("TRADE_RETCODE_REJECT", "mt5_reject", "request rejected"),
    TRADE_RETCODE_CANCEL: Retcode("TRADE_RETCODE_CANCEL", "cancelled", "request cancelled"),
    TRADE_RETCODE_ERROR: Retcode("TRADE_RETCODE_ERROR", "mt5_error", "request processing error",
                                 status="failed"),
    TRADE_RETCODE_TIMEOUT: Retcode("TRADE_RETCODE_TIMEOUT", "timeout",
                                   "request cancelled by timeout", True, "failed"),
    TRADE_RETCODE_INVALID: Retcode("TRADE_RETCODE_INVALID", "invalid_request", "invalid request"),
    TRADE_RETCODE_INVALID_VOLUME: Retcode("TRADE_RETCODE_INVALID_VOLUME", "invalid_volume",
                                          "invalid volume"),
    TRADE_RETCODE_INVALID_PRICE: Retcode("TRADE_RETCODE_INVALID_PRICE", "invalid_price",
                                         "invalid price"),
    TRADE_RETCODE_INVALID_STOPS: Retcode("TRADE_RETCODE_INVALID_STOPS", "invalid_stops",
                                         "invalid stops"),
    TRADE_RETCODE_TRADE_DISABLED: Retcode("TRADE_RETCODE_TRADE_DISABLED", "trade_disabled",
                                          "trading disabled for the symbol"),
    TRADE_RETCODE_MARKET_CLOSED: Retcode("TRADE_RETCODE_MARKET_CLOSED", "market_closed",
                                         "market closed"),
    TRADE_RETCODE_NO_MONEY: Retcode("TRADE_RETCODE_NO_MONEY", "no_money", "not enough money"),
    TRADE_RETCODE_PRICE_CHANGED: Retcode("TRADE_RETCODE_PRICE_CHANGED", "price_changed",
                                         "price changed", True),
    TRADE_RETCODE_PRICE_OFF: Retcode("TRADE_RETCODE_PRICE_OFF", "price_off",
                                     "no quotes to process the request", True),
    TRADE_RETCODE_TOO_MANY_REQUESTS: Retcode("TRADE_RETCODE_TOO_MANY_REQUESTS",
                                             "too_many_requests", "too many requests", True),
    TRADE_RETCODE_SERVER_DISABLES_AT: Retcode("TRADE_RETCODE_SERVER_DISABLES_AT",
                                              "autotrading_disabled",
                                              "autotrading disabled by the server"),
    TRADE_RETCODE_CLIENT_DISABLES_AT: Retcode("TRADE_RETCODE_CLIENT_DISABLES_AT",
                                              "autotrading_disabled",
                                              "autotrading disabled by the client terminal"),
    TRADE_RETCODE_INVALID_FILL: Retcode("TRADE_RETCODE_INVALID_FILL", "invalid_fill",
                                        "invalid order filling type"),
    TRADE_RETCODE_CONNECTION: Retcode("TRADE_RETCODE_CONNECTION", "no_connection",
                                      "no connection with the trade server", True, "failed"),
    TRADE_RETCODE_LIMIT_ORDERS: Retcode("TRADE_RETCODE_LIMIT_ORDERS", "limit_orders",
                                        "pending orders limit reached"),
    TRADE_RETCODE_LIMIT_VOLUME: Retcode("TRADE_RETCODE_LIMIT_VOLUME", "limit_volume",
                                        "volume limit reached"),
    TRADE_RETCODE_LIMIT_POSITIONS: Retcode("TRADE_RETCODE_LIMIT_POSITIONS", "limit_positions",
                                           "positions limit reached"),
}


def describe(retcode: int) -> Retcode:
    """The meaning of a return code; unknown ones are plain rejects named by number."""
    return _TABLE.get(retcode, Retcode(f"TRADE_RETCODE_{retcode}", "mt5_reject",
                                       f"rejected with retcode {retcode}"))
