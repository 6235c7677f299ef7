"""The risk configuration an account starts with, and the strict parser of changes.

Defaults are deliberately cautious: AI trading off (every idea waits for a human),
small lots, a drawdown halt. A user raises them through `ai-trader risk set` or the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streams.core.calendar import zone
from streams.core.model import RiskConfig

DEFAULT_RISK: Final[dict[str, Any]] = {
    "ai_trading_enabled": False,
    "min_confidence_threshold": "90",
    "max_lot_size": "1.00",
    "max_concurrent_trades": 2,
    "daily_profit_target": "200.00",
    "stop_after_target": True,
    "max_drawdown_amount": "300.00",
    "halt_on_drawdown": True,
    "allow_off_watchlist_autotrade": False,
    "watchlist": ["XAUUSD", "EURUSD", "US30"],
}
BOOLEAN_FIELDS: Final = frozenset({
    "ai_trading_enabled", "stop_after_target", "halt_on_drawdown",
    "allow_off_watchlist_autotrade",
})


def default_risk_config() -> RiskConfig:
    """The configuration of an account the gate has never seen."""
    return RiskConfig.from_dict(DEFAULT_RISK)


def parse_risk_config(payload: Mapping[str, Any]) -> RiskConfig:
    """A risk config from user input: unknown fields and non-boolean flags are refused
    (RiskConfig.from_dict alone would coerce `"false"` to True)."""
    known = set(default_risk_config().to_dict())
    unknown = sorted(set(payload) - known)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    for name in BOOLEAN_FIELDS & set(payload):
        if not isinstance(payload[name], bool):
            raise ValueError(f"{name} must be true or false, not {payload[name]!r}")
    for name in ("max_concurrent_trades",):
        if name in payload and (isinstance(payload[name], bool)
                                or not isinstance(payload[name], int)):
            raise ValueError(f"{name} must be an integer, not {payload[name]!r}")
    if "trading_day_tz" in payload:
        zone(str(payload["trading_day_tz"]))  # InvalidTimezone (a ValueError) names it
    return RiskConfig.from_dict(payload)
