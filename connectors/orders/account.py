"""AccountState records from whatever broker is active."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.brokers.base import AccountInfo, PositionInfo, lots, money
from connectors.orders.ledger import Ledger


def _position(pos: PositionInfo, ledger: Ledger | None) -> dict[str, Any]:
    entry = ledger.by_comment(pos.comment) if ledger is not None and pos.comment else None
    take_profit = list(pos.take_profit)
    idea_id = strategy_id = None
    if entry is not None:
        idea_id = entry.idea_id
        strategy_id = entry.request.get("strategy_id")
        take_profit = list(entry.request.get("take_profit") or take_profit)  # all TPs
    return {
        "ticket": pos.ticket, "symbol": pos.symbol, "direction": pos.direction,
        "volume": lots(pos.volume), "entry_price": pos.entry_price,
        "stop_loss": pos.stop_loss, "take_profit": take_profit,
        "unrealized_pl": money(pos.unrealized_pl), "opened_at": pos.opened_at,
        "idea_id": idea_id, "strategy_id": strategy_id, "magic": pos.magic,
    }


def account_record(info: AccountInfo, reconciled: bool, captured_at: datetime,
                   ledger: Ledger | None = None) -> dict[str, Any]:
    """The `account.state.v1` record; positions name their idea via the ledger's comments."""
    return {
        "account": info.account, "broker": info.broker, "currency": info.currency,
        "balance": money(info.balance), "equity": money(info.equity),
        "margin_used": money(info.margin_used), "margin_free": money(info.margin_free),
        "open_pl": money(info.open_pl), "realized_pl_today": money(info.realized_pl_today),
        "positions": [_position(p, ledger) for p in info.positions],
        "reconciled": reconciled, "captured_at": captured_at,
    }


AccountSource = Callable[[], AccountInfo]
