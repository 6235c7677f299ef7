"""Pure conversions from MT5 structures (named tuples, rate arrays) to our values."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

from connectors.brokers.base import DealInfo, PositionInfo, lots, money

# MetaTrader5 constants used when reading structures (values as documented)
POSITION_TYPE_BUY = 0
DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

TIMEFRAME_CODES = {
    "M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 16385, "H4": 16388, "D1": 16408,
}


def server_time(seconds: float, server_tz: tzinfo) -> datetime:
    """An MT5 timestamp (server wall clock written as UTC epoch) as a real UTC time."""
    wall = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return wall.replace(tzinfo=server_tz).astimezone(UTC)


def to_server_epoch(at: datetime, server_tz: tzinfo) -> int:
    """A UTC time as the epoch seconds MT5 expects (server wall clock as UTC)."""
    wall = at.astimezone(server_tz).replace(tzinfo=UTC)
    return int(wall.timestamp())


def position_info(pos: Any, server_tz: tzinfo) -> PositionInfo:
    """A `TradePosition` as a `PositionInfo`."""
    return PositionInfo(
        ticket=int(pos.ticket), symbol=str(pos.symbol),
        direction="buy" if pos.type == POSITION_TYPE_BUY else "sell",
        volume=lots(pos.volume), entry_price=float(pos.price_open),
        stop_loss=float(pos.sl) or None, take_profit=(float(pos.tp),) if pos.tp else (),
        unrealized_pl=money(pos.profit + getattr(pos, "swap", 0.0)),
        opened_at=server_time(pos.time, server_tz), comment=str(pos.comment),
        magic=int(pos.magic),
    )


def deal_info(deal: Any, server_tz: tzinfo) -> DealInfo:
    """A `TradeDeal` as a `DealInfo` (profit includes commission, swap and fee)."""
    entry = "in" if deal.entry == DEAL_ENTRY_IN else "out"
    total = deal.profit + deal.commission + deal.swap + getattr(deal, "fee", 0.0)
    return DealInfo(
        ticket=int(deal.ticket), order_id=int(deal.order), position_ticket=int(deal.position_id),
        symbol=str(deal.symbol), direction="buy" if deal.type == DEAL_TYPE_BUY else "sell",
        entry=entry, volume=lots(deal.volume), price=float(deal.price), profit=money(total),
        time=server_time(deal.time, server_tz), comment=str(deal.comment), magic=int(deal.magic),
    )


def is_trade_deal(deal: Any) -> bool:
    """Buy/sell deals only (not balance, credit, commission entries)."""
    return int(deal.type) in (DEAL_TYPE_BUY, DEAL_TYPE_SELL)


def rates_to_candles(rates: Any, symbol: str, timeframe: str, point: float,
                     server_tz: tzinfo) -> list[dict[str, Any]]:
    """Rows of a `copy_rates_*` array (oldest first) as Candle v2 records (spread in price)."""
    out = []
    for row in rates:
        out.append({
            "symbol": symbol, "timeframe": timeframe,
            "open_time": server_time(int(row["time"]), server_tz),
            "open": float(row["open"]), "high": float(row["high"]), "low": float(row["low"]),
            "close": float(row["close"]),
            "volume": int(row["tick_volume"]) or int(row["real_volume"]),
            "source": "mt5", "spread": round(int(row["spread"]) * point, 10), "closed": True,
        })
    return out


def volume_decimal(value: float) -> Decimal:
    """An MT5 float volume in lots."""
    return lots(value)
