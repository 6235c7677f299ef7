"""The structured facts an explanation may use, taken from the records on the bus.

A `Subject` is one thing to explain (an idea, or one decision of the log) with its
facts as a JSON-able dict and the deterministic rationale that stands when the model
cannot be used. The facts are what the prompt shows and what the number guard checks
against, so they are built only from the records themselves (plus a few exact
differences: stop and target distances, reward-to-risk) and never from a clock.

Times are written `YYYY-MM-DD HH:MM UTC`; decimals and floats as plain numbers
(never in exponent form), so the model can copy them as they are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

SubjectKind = Literal["idea", "decision"]
EXPLANATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ai-trader.local/explanations")
MAX_EVENTS = 5
MAX_NEWS = 3

# Indicator fields shown to the model (ids and bus positions are not facts about the market).
_INDICATORS = ("close", "spread", "rsi_14", "sma_50", "sma_200", "macd", "macd_signal",
               "macd_hist", "prev_macd_hist", "atr_14", "day_open", "pct_move_today",
               "swing_high", "swing_low")


@dataclass(frozen=True, slots=True)
class Subject:
    """One idea or decision to explain."""

    kind: SubjectKind
    subject_id: str
    account: str
    event_time: datetime
    facts: dict[str, Any]
    rationale: str

    @property
    def explanation_id(self) -> str:
        """Deterministic from (kind, id): a redelivered subject gets the same id."""
        return explanation_id(self.kind, self.subject_id)


def explanation_id(kind: str, subject_id: str) -> str:
    """uuid5 of the subject kind and id."""
    return str(uuid.uuid5(EXPLANATION_NAMESPACE, f"{kind}:{subject_id}"))


# ------------------------------------------------------------------------------ values


def when(value: datetime | None) -> str | None:
    """A time as the facts write it: `2026-03-02 08:15 UTC`."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _decimal(value: float | Decimal | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def number(value: float | Decimal | int | None) -> int | float | str | None:
    """A JSON number the model can copy: no exponent, no float noise."""
    if value is None or isinstance(value, bool):
        return value
    try:
        dec = _decimal(value)
    except InvalidOperation:
        return None
    if not dec.is_finite():
        return None
    if dec == dec.to_integral_value():
        return int(dec)
    as_float = float(dec)
    return as_float if "e" not in repr(as_float) else format(dec.normalize(), "f")


def _difference(a: float, b: float) -> Decimal:
    return abs(_decimal(a) - _decimal(b))


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return _plain(json.loads(text))
    except ValueError:
        return text


def _plain(value: Any) -> Any:
    """Numbers inside parsed JSON made copyable (same rules as `number`)."""
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        return number(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None and v != [] and v != {}}


# ------------------------------------------------------------------------------- ideas


def _levels(idea: Mapping[str, Any]) -> dict[str, Any]:
    entry, stop = idea["entry_price"], idea["stop_loss"]
    risk = _difference(entry, stop)
    targets = []
    for price in idea.get("take_profit") or ():
        reward = _difference(price, entry)
        rr = (reward / risk).quantize(Decimal("0.01")) if risk else None
        targets.append(_drop_none({"price": number(price), "distance": number(reward),
                                   "reward_to_risk": number(rr)}))
    zone = None
    if idea.get("entry_low") is not None and idea.get("entry_high") is not None:
        zone = [number(idea["entry_low"]), number(idea["entry_high"])]
    return _drop_none({"entry_price": number(entry), "entry_zone": zone,
                       "stop_loss": number(stop), "stop_distance": number(risk),
                       "take_profit": targets})


def _indicators(snapshot: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not snapshot:
        return None
    values = {name: number(snapshot.get(name)) for name in _INDICATORS}
    return _drop_none({"timeframe": snapshot.get("timeframe"),
                       "candle_open": when(snapshot.get("open_time")), **values})


def _events(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    captured = bundle.get("captured_at")
    events = [e for e in bundle.get("calendar") or ()
              if captured is None or e["event_time"] >= captured]
    events.sort(key=lambda e: e["event_time"])
    return [
        _drop_none({"time": when(e["event_time"]), "all_day": e.get("all_day") or None,
                    "currency": e.get("currency"), "impact": e.get("impact"),
                    "title": e.get("title"), "previous": e.get("previous_raw"),
                    "forecast": e.get("forecast_raw"), "actual": e.get("actual_raw")})
        for e in events[:MAX_EVENTS]
    ]


def bundle_facts(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """Market context of an idea from its snapshot bundle: indicators, events, headlines."""
    news = [n.get("headline") for n in (bundle.get("news") or ())[:MAX_NEWS]]
    return _drop_none({
        "indicators": _indicators(bundle.get("indicators")),
        "higher_timeframe": _indicators(bundle.get("higher_timeframe")),
        "upcoming_events": _events(bundle),
        "headlines": [h for h in news if h],
    })


def idea_subject(status: Mapping[str, Any],
                 bundle: Mapping[str, Any] | None = None) -> Subject | None:
    """The idea of its first status record (None for later statuses, which carry none)."""
    idea = status.get("idea")
    if not idea:
        return None
    facts: dict[str, Any] = {
        "subject": "trade idea",
        "symbol": idea["symbol"],
        "timeframe": idea["timeframe"],
        "direction": idea["direction"],
        "strategy": {"id": idea["strategy_id"], "version": idea["strategy_version"]},
        **_levels(idea),
        "lot_size": number(idea["lot_size"]),
        "expected_hold": idea.get("expected_hold"),
        "confidence": {"score": number(idea["confidence"]), "out_of": 100,
                       "components": _json(idea.get("confidence_json"))},
        "rationale_bullets": list(idea.get("rationale_bullets") or ()),
        "status": status.get("status"),
        "status_reason": status.get("reason"),
        "created_at": when(idea.get("created_at")),
        "expires_at": when(idea.get("expires_at")),
    }
    if bundle is not None:
        facts.update(bundle_facts(bundle))
    return Subject("idea", idea["idea_id"], status["account"], idea["created_at"],
                   _drop_none(facts), idea["rationale"])


# --------------------------------------------------------------------------- decisions


def _checks(checks: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    if not checks:
        return None
    listed = [
        _drop_none({"name": c["name"], "passed": c["passed"], "code": c["code"],
                    "values": _json(c.get("detail_json"))})
        for c in checks
    ]
    passed = sum(1 for c in checks if c["passed"])
    return {"total": len(checks), "passed": passed, "failed": len(checks) - passed,
            "list": listed}


def decision_subject(decision: Mapping[str, Any]) -> Subject:
    """One entry of the decision log."""
    facts = {
        "subject": "decision of the risk and autonomy gate",
        "action": decision["action"],
        "outcome": decision.get("outcome"),
        "occurred_at": when(decision["occurred_at"]),
        "symbol": decision.get("symbol"),
        "strategy_id": decision.get("strategy_id"),
        "deterministic_rationale": decision["rationale"],
        "risk_check_result": decision.get("risk_check_result"),
        "confidence": None if decision.get("confidence") is None else {
            "score": number(decision["confidence"]), "out_of": 100,
            "components": _json(decision.get("confidence_json")),
        },
        "checks": _checks(list(decision.get("checks") or ())),
        "human_override": decision.get("human_override") or None,
    }
    return Subject("decision", decision["decision_id"], decision["account"],
                   decision["occurred_at"], _drop_none(facts), decision["rationale"])
