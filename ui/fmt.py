"""How values read on screen: money, percentages, times (UTC and local), badges, errors.

Pure functions (no Streamlit), so each rule is tested on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ui.api_client import ApiError, ApiUnreachable

DASH = "—"

Color = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray"]

HALT_REASONS = {
    "max_drawdown": "Max drawdown breached",
    "daily_target_reached": "Daily target reached",
    "weekly_target_reached": "Weekly target reached",
}

ACTIONS = {
    "ai_proposed": "AI proposed",
    "ai_auto_executed": "AI auto-executed",
    "human_approved": "Human approved",
    "human_rejected": "Human rejected",
    "risk_rejected": "Rejected by risk",
    "ai_halted": "AI halted",
    "ai_resumed": "AI resumed",
}

#: Idea status -> (label, badge colour): green executed, yellow waiting for a human,
#: red refused (blueprint §4.3).
IDEA_STATUSES: dict[str, tuple[str, Color]] = {
    "auto_executed": ("Auto-executed", "green"),
    "executed": ("Executed", "green"),
    "approved": ("Approved", "green"),
    "needs_approval": ("Needs approval", "yellow"),
    "waiting": ("Waiting", "yellow"),
    "rejected": ("Rejected", "red"),
    "halted_by_risk": ("Halted by risk", "red"),
    "execution_failed": ("Execution failed", "red"),
    "expired": ("Expired", "gray"),
}


#: Every status an idea can have in the database (the API takes at most 8 in one filter).
IDEA_STATUS_FILTER = ["waiting", "needs_approval", "auto_executed", "rejected", "halted_by_risk",
                      "expired", "executed", "execution_failed"]


@dataclass(frozen=True)
class Badge:
    """A coloured label (`st.badge`), with an optional explanation next to it."""

    label: str
    color: Color
    detail: str | None = None


def escape(text: str) -> str:
    """Text safe inside Streamlit markdown (no links, emphasis or directives)."""
    out = str(text)
    for char in "\\[]*_`$<>#|~":
        out = out.replace(char, "\\" + char)
    return out


# ------------------------------------------------------------------------------ numbers


def number(value: Any, digits: int = 2) -> str:
    """`1,234.50`; `—` for a missing value."""
    if value is None or value == "":
        return DASH
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def money(value: Any) -> str:
    """Two decimals with thousands separators."""
    return number(value, 2)


def signed_money(value: Any) -> str:
    """`+25.00` / `-10.00`: a P/L always shows its sign."""
    if value is None:
        return DASH
    amount = float(value)
    return f"{'+' if amount > 0 else ''}{amount:,.2f}" if amount else "0.00"


def ratio_pct(value: Any, digits: int = 1) -> str:
    """A 0..1 ratio as a percentage: 0.5 -> `50.0%`."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.{digits}f}%"


def pct(value: Any, digits: int = 2, signed: bool = False) -> str:
    """A value already in percent: 0.42 -> `0.42%` (`+0.42%` when signed)."""
    if value is None:
        return DASH
    amount = float(value)
    sign = "+" if signed and amount > 0 else ""
    return f"{sign}{amount:.{digits}f}%"


def progress(value: float | None, target: float | None) -> float | None:
    """How far `value` is toward `target`, clamped to 0..1 (None without a target)."""
    if value is None or not target:
        return None
    return max(0.0, min(1.0, value / target))


# -------------------------------------------------------------------------------- times


def when(value: Any) -> datetime | None:
    """An aware datetime from the API's ISO text (or a datetime)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def zone(name: str | None) -> ZoneInfo:
    """The named time zone, UTC when unknown or missing."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def utc_text(value: Any, seconds: bool = False) -> str:
    """`2025-10-27 10:15 UTC`."""
    at = when(value)
    if at is None:
        return DASH
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds
                                       else "%Y-%m-%d %H:%M UTC")


def local_text(value: Any, tz: str | None) -> str:
    """The same instant in the viewer's zone: `2025-10-27 12:15 CET`."""
    at = when(value)
    if at is None:
        return DASH
    return at.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def age_text(seconds: float | None) -> str:
    """`8 s`, `12 min`, `3 h`, `2 d` ago-style durations."""
    if seconds is None:
        return DASH
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def minutes_until(minutes: int | None) -> str:
    """`in 45 min` / `12 min ago` / `now`."""
    if minutes is None:
        return DASH
    if minutes == 0:
        return "now"
    return f"in {minutes} min" if minutes > 0 else f"{-minutes} min ago"


# ------------------------------------------------------------------------------- labels


def humanize(code: str | None) -> str:
    """`daily_target_reached` -> `Daily target reached`."""
    if not code:
        return DASH
    text = str(code).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def bullets(values: Mapping[str, Any]) -> str:
    """A mapping as a markdown list: `- Max lot size: 0.5`; nested values as compact JSON."""
    if not values:
        return DASH
    lines = []
    for key, value in values.items():
        if isinstance(value, Mapping | list):
            text = json.dumps(value, separators=(", ", ": "))
        else:
            text = str(value)
        lines.append(f"- {escape(humanize(key))}: {escape(text)}")
    return "\n".join(lines)


def halt_text(reason: str | None) -> str:
    """The words of a halt reason code."""
    if not reason:
        return ""
    return HALT_REASONS.get(reason, humanize(reason))


def ai_badge(risk: Mapping[str, Any] | None) -> Badge:
    """The always-visible "AI Trading: ON/OFF" badge from `GET /v1/settings/risk`.

    OFF says why: the kill switch (who and why), or the halt reason.
    """
    if risk is None:
        return Badge("AI Trading: UNKNOWN", "gray", "no risk configuration applied yet")
    kill = risk.get("kill_switch") or {}
    if kill.get("active"):
        who = f" by {kill['by']}" if kill.get("by") else ""
        why = f": {kill['reason']}" if kill.get("reason") else ""
        return Badge("AI Trading: OFF (kill switch)", "red", f"Kill switch on{who}{why}")
    if risk.get("ai_trading_enabled"):
        return Badge("AI Trading: ON", "green")
    reason = halt_text(risk.get("last_halt_reason"))
    if reason:
        return Badge(f"AI Trading: OFF ({reason})", "red")
    return Badge("AI Trading: OFF", "red", "switched off in the risk settings")


def kill_switch_badge(risk: Mapping[str, Any] | None) -> Badge:
    """The kill switch's own state."""
    kill = (risk or {}).get("kill_switch") or {}
    if kill.get("active"):
        return Badge("Kill switch: ENGAGED", "red", kill.get("reason"))
    return Badge("Kill switch: off", "gray")


def idea_status(status: str | None) -> Badge:
    """The coloured status badge of a trade idea."""
    label, color = IDEA_STATUSES.get(str(status), (humanize(status), "gray"))
    return Badge(label, color)


def action_text(action: str | None) -> str:
    """A decision's action in words."""
    return ACTIONS.get(str(action), humanize(action))


def direction_text(direction: str | None) -> str:
    """BUY / SELL."""
    return str(direction or DASH).upper()


def price(value: Any, like: Any = None) -> str:
    """A price: 5 decimals under 10 (FX quotes), else 2 (gold, indices). A distance
    (spread, ATR) reads with the decimals of the price it is `like`."""
    ref = value if like is None else like
    try:
        small = ref is not None and abs(float(ref)) < 10
    except (TypeError, ValueError):
        small = False
    return number(value, 5 if small else 2)


def levels_text(idea: Mapping[str, Any]) -> str:
    """`2,385.20 / 2,378.50 / 2,398.00`: entry, stop loss and take profit(s)."""
    targets = ", ".join(price(t) for t in idea.get("take_profit") or []) or DASH
    return f"{price(idea.get('entry_price'))} / {price(idea.get('stop_loss'))} / {targets}"


def is_high_impact(impact: str | None) -> bool:
    """High-impact releases are the ones to highlight."""
    return str(impact or "").lower() == "high"


def impact_text(impact: str | None) -> str:
    """`HIGH` stands out; the others read normally."""
    text = str(impact or DASH)
    return text.upper() if is_high_impact(text) else text.capitalize()


# ------------------------------------------------------------------------------ answers


def approve_outcome(answer: Mapping[str, Any]) -> tuple[str, str]:
    """§6.4's answer as (`success`|`error`, text)."""
    if answer.get("status") == "executed":
        order = answer.get("mt5_order_id")
        return "success", f"Executed: MT5 order {order}" if order is not None else "Executed"
    return "error", f"Blocked: {answer.get('reason') or 'no reason given'}"


def error_text(err: ApiError, doing: str | None = None) -> str:
    """One readable paragraph for an API error (the envelope's words, never a trace)."""
    prefix = f"Could not {doing}: " if doing else ""
    if isinstance(err, ApiUnreachable):
        return f"{prefix}{err.message}. Is `ai-trader api` running?"
    if err.status == 401:
        return f"{prefix}your session ended ({err.message}); log in again."
    if err.status == 503:
        return f"{prefix}a dependency is down ({err.message}); the data will be back when " \
               "it recovers."
    if err.status == 504:
        command = err.details.get("command_id")
        extra = f" (command {command})" if command else ""
        return f"{prefix}{err.message}{extra}. The change may still be applied: check again " \
               "in a moment."
    reason = err.details.get("reason")
    text = f"{prefix}{err.message}"
    if reason and str(reason) not in text:
        text += f" ({reason})"
    return text


def field_errors(err: ApiError, fields: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split an error's details into messages per form field and the rest.

    `watchlist.0` belongs to the `watchlist` field; pydantic's "Value error, " prefix
    is dropped.
    """
    per_field: dict[str, str] = {}
    other: list[str] = []
    for where, message in err.field_errors:
        text = message.removeprefix("Value error, ")
        name = next((part for part in where.removeprefix("$.").split(".") if part in fields),
                    None)
        if name is not None:
            per_field.setdefault(name, text)
        else:
            other.append(f"{where}: {text}" if where else text)
    return per_field, other
