"""Contract facts of the symbols the product trades: price scale, point, contract size, leverage.

One table serves the synthetic feed (price scale and spreads), the file parsers
(MT5 exports give the spread in points) and the paper broker (margin and P/L).
The values are typical retail CFD terms and are documented here, not guessed
elsewhere:

| symbol | digits | point   | contract size          | leverage | typical spread |
| ------ | ------ | ------- | ---------------------- | -------- | -------------- |
| XAUUSD | 2      | 0.01    | 100 oz per lot         | 1:20     | 25 points      |
| EURUSD | 5      | 0.00001 | 100,000 EUR per lot    | 1:30     | 12 points      |
| US30   | 1      | 0.1     | 1 USD per index point  | 1:20     | 20 points      |

All three quote in USD, so P/L of one lot is `price change * contract size` USD.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Instrument:
    """What a connector needs to know about one symbol."""

    symbol: str
    digits: int
    contract_size: Decimal
    leverage: Decimal
    spread_points: int
    start_price: float
    daily_volatility: float  # typical daily return stdev, for the synthetic feed
    profit_currency: str = "USD"
    volume_min: Decimal = Decimal("0.01")
    volume_step: Decimal = Decimal("0.01")
    volume_max: Decimal = Decimal("100")
    currencies: tuple[str, ...] = ()

    @property
    def point(self) -> Decimal:
        """The smallest price increment (MT5's `point`)."""
        return Decimal(1).scaleb(-self.digits)

    def points_to_price(self, points: float) -> float:
        """A spread or distance in points as a price difference."""
        return round(points * float(self.point), self.digits)

    def round_price(self, price: float) -> float:
        """A price on the symbol's grid."""
        return round(price, self.digits)


INSTRUMENTS: dict[str, Instrument] = {
    "XAUUSD": Instrument("XAUUSD", 2, Decimal(100), Decimal(20), 25, 2380.0, 0.010,
                         currencies=("XAU", "USD")),
    "EURUSD": Instrument("EURUSD", 5, Decimal(100_000), Decimal(30), 12, 1.0850, 0.005,
                         currencies=("EUR", "USD")),
    "US30": Instrument("US30", 1, Decimal(1), Decimal(20), 20, 39_000.0, 0.009,
                       currencies=("USD",)),
}


class UnknownSymbol(KeyError):
    """A symbol missing from the instrument table."""


def instrument(symbol: str) -> Instrument:
    """The instrument of a symbol, or `UnknownSymbol`."""
    try:
        return INSTRUMENTS[symbol]
    except KeyError:
        raise UnknownSymbol(f"no contract facts for symbol {symbol!r}") from None
