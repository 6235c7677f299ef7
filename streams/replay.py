"""Replay: what the AI saw at a decision, and the proof that the core still decides the same.

Pure functions over records as the bus carries them (a `DecisionEvent` and the
`SnapshotBundle` its `snapshot_ref` names), whoever read them (the database's raw Avro
bytes, or the topics). No I/O and no clock.

`verify_decision(event, bundle)` re-runs the decision core on the frozen inputs:

1. `from_bundle(bundle)` (the single derivation path, the one the gate itself used) must
   give the same idea id, confidence and confidence components;
2. the gate's state is rebuilt from the decision's own `gate_state_json`
   (`{"gate": GateState.to_state(), "account": ..., "config_hash": ...}`, the state the
   gate held just before deciding), the strategy from the bundle's `strategy_json`, the
   `GateContext` from the bundle's account and calendar (as `Book.on_idea` builds it);
3. `GateState.on_idea` re-decides at the idea's `created_at`: decision id, action,
   outcome, risk check result, every check with its compared values, confidence,
   rationale and the resulting risk config hash must equal the recorded event, and the
   follow-up decisions it produces (an `ai_halted` when a halt trigger fires) must be
   in the log too.

Each mismatch is a `Difference` carrying both sides as text. Zero differences over a
range is the audit proof that the logged decisions are what the core decides.

Limit: the gate judges an idea against the strategy version *it* holds; the decision
records that version's hash only through the `strategy_version` check. Replay uses the
bundle's strategy (the one the idea was built from), so a strategy edited between the
proposal and the gate shows up as a difference, which is worth a look anyway.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from streams import records
from streams.core.audit import decision_hash
from streams.core.gate import Decision, GateContext, GateState
from streams.core.model import AccountState, fmt_decimal
from streams.core.strategy import NoMatch, StrategyError, parse_strategy_json
from streams.gatekeeper import config_hash
from streams.proposals import from_bundle

#: Parsing (and schema-validating) a strategy costs about a millisecond; a range repeats
#: the same few definitions, and a Strategy is immutable.
_strategy = functools.lru_cache(maxsize=64)(parse_strategy_json)

#: Decisions the gate takes on an idea from the strategy agent (not on a human command).
IDEA_ACTIONS = ("ai_proposed", "ai_auto_executed", "risk_rejected")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Difference:
    """One field where the recorded decision and today's re-decision disagree."""

    field: str
    recorded: str
    replayed: str

    def to_dict(self) -> dict[str, str]:
        """Plain JSON-able form."""
        return {"field": self.field, "recorded": self.recorded, "replayed": self.replayed}


@dataclass(frozen=True, slots=True)
class Verification:
    """The re-decision of one recorded decision and what differed."""

    decision_id: str
    idea_id: str | None
    occurred_at: datetime
    action: str
    differences: tuple[Difference, ...]
    #: decisions the re-run produced after the main one (halts), to find in the log
    followups: tuple[Decision, ...] = ()

    @property
    def ok(self) -> bool:
        """No difference."""
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"decision_id": self.decision_id, "idea_id": self.idea_id,
                "occurred_at": self.occurred_at.isoformat(), "action": self.action,
                "ok": self.ok, "differences": [d.to_dict() for d in self.differences]}


@dataclass
class RangeReport:
    """Every verification of a range, plus decisions that could not be verified at all."""

    verifications: list[Verification] = field(default_factory=list)
    decisions_read: int = 0

    @property
    def differences(self) -> int:
        """How many differences in total."""
        return sum(len(v.differences) for v in self.verifications)

    @property
    def failed(self) -> list[Verification]:
        """The verifications with at least one difference."""
        return [v for v in self.verifications if not v.ok]

    @property
    def ok(self) -> bool:
        """Zero differences: the audit proof."""
        return self.differences == 0


def is_idea_decision(event: Mapping[str, Any]) -> bool:
    """A gate decision on an idea with a snapshot (not an approval, halt or resume)."""
    return (event.get("action") in IDEA_ACTIONS and bool(event.get("snapshot_ref"))
            and event.get("outcome") is not None and not event.get("command_id")
            and not event.get("human_override"))


# ------------------------------------------------------------------------ comparison text


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_text(value: str | Mapping[str, Any] | None) -> str:
    """A JSON value (text or parsed) as canonical text, so key order never matters."""
    if value is None:
        return "null"
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return f"<not JSON: {value!r}>"
    return records.canonical(data)


def _money_text(value: Any) -> str:
    if value is None:
        return "null"
    return fmt_decimal(Decimal(str(value)).quantize(CENT))


def _check_rows(checks: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(name, `passed code values`) per check, comparable whatever the source."""
    rows = []
    for c in checks:
        detail = c.get("detail_json", c.get("detail"))
        rows.append((str(c["name"]),
                     f"passed={_text(bool(c['passed']))} {c['code']} {_json_text(detail)}"))
    return rows


def _compare_checks(recorded: Sequence[Mapping[str, Any]],
                    replayed: Sequence[Mapping[str, Any]]) -> list[Difference]:
    left, right = _check_rows(recorded), _check_rows(replayed)
    if [n for n, _ in left] != [n for n, _ in right]:
        return [Difference("checks", ", ".join(n for n, _ in left),
                           ", ".join(n for n, _ in right))]
    return [Difference(f"checks.{name}", a, b)
            for (name, a), (_, b) in zip(left, right, strict=True) if a != b]


# -------------------------------------------------------------------------- re-decision


class _Unverifiable(Exception):
    def __init__(self, difference: Difference) -> None:
        super().__init__(difference.field)
        self.difference = difference


def _gate_state(event: Mapping[str, Any]) -> tuple[GateState, dict[str, Any]]:
    try:
        data = json.loads(event["gate_state_json"])
        return GateState.from_state(data["gate"]), data
    except (TypeError, KeyError, ValueError) as exc:
        raise _Unverifiable(Difference("gate_state_json", "recorded state",
                                       f"unreadable: {type(exc).__name__}: {exc}")) from exc


def _account(bundle: Mapping[str, Any], gate: Mapping[str, Any]) -> AccountState | None:
    """The account `Book.on_idea` decided with: the bundle's, else the book's latest."""
    if bundle.get("account_state") is not None:
        return records.account(bundle["account_state"])
    last = gate.get("account")
    return None if last is None else AccountState.from_dict(last)


def _event_of(decision: Decision, confidence_json: str | None,
              risk_config_hash: str) -> dict[str, Any]:
    """The fields of the DecisionEvent `Book._event` would build from `decision`."""
    return {
        "decision_id": decision.decision_id, "occurred_at": decision.occurred_at,
        "symbol": decision.symbol, "action": decision.action, "outcome": decision.outcome,
        "rationale": decision.rationale,
        "confidence": None if decision.confidence is None else decision.confidence.quantize(CENT),
        "confidence_json": confidence_json, "risk_check_result": decision.risk_check_result,
        "checks": [{"name": c.name, "passed": c.passed, "code": c.code,
                    "detail_json": records.canonical(c.to_dict()["values"])}
                   for c in decision.checks],
        "strategy_id": decision.strategy_id, "strategy_hash": decision.strategy_hash,
        "trade_idea_id": decision.trade_idea_id, "snapshot_ref": decision.snapshot_ref,
        "risk_config_hash": risk_config_hash,
    }


_PLAIN_FIELDS = ("decision_id", "action", "outcome", "risk_check_result", "symbol",
                 "trade_idea_id", "snapshot_ref", "strategy_id", "strategy_hash",
                 "occurred_at", "rationale", "risk_config_hash")


def compare_events(recorded: Mapping[str, Any],
                   replayed: Mapping[str, Any]) -> list[Difference]:
    """Every difference between a recorded DecisionEvent and a re-decided one."""
    out = [Difference(name, _text(recorded.get(name)), _text(replayed.get(name)))
           for name in _PLAIN_FIELDS if _text(recorded.get(name)) != _text(replayed.get(name))]
    rec_conf, rep_conf = (_money_text(recorded.get("confidence")),
                          _money_text(replayed.get("confidence")))
    if rec_conf != rep_conf:
        out.append(Difference("confidence", rec_conf, rep_conf))
    rec_json = _json_text(recorded.get("confidence_json"))
    rep_json = _json_text(replayed.get("confidence_json"))
    if rec_json != rep_json:
        out.append(Difference("confidence_json", rec_json, rep_json))
    out += _compare_checks(recorded.get("checks") or (), replayed.get("checks") or ())
    return out


def _integrity(event: Mapping[str, Any], gate: Mapping[str, Any],
               state: GateState) -> list[Difference]:
    out = []
    if event.get("hash") and decision_hash(event) != event["hash"]:
        out.append(Difference("hash", str(event["hash"]), decision_hash(event)))
    recorded = gate.get("config_hash")
    if recorded is not None and recorded != config_hash(state.config):
        out.append(Difference("gate_state_json.config_hash", str(recorded),
                              config_hash(state.config)))
    return out


def redecide(event: Mapping[str, Any], bundle: Mapping[str, Any]
             ) -> tuple[dict[str, Any], tuple[Decision, ...], list[Difference]]:
    """Re-run the core on a decision's bundle and recorded gate state.

    Returns the re-decided event fields, the follow-up decisions, and the differences
    found before the gate (the idea itself, the recorded state's integrity). Raises
    `_Unverifiable` when the inputs cannot even be read.
    """
    try:
        proposal = from_bundle(bundle)
        strategy = _strategy(bundle["strategy_json"])
    except (StrategyError, KeyError, TypeError, ValueError) as exc:
        raise _Unverifiable(Difference("bundle", str(event.get("snapshot_ref")),
                                       f"unreadable: {type(exc).__name__}: {exc}")) from exc
    if isinstance(proposal, NoMatch):
        raise _Unverifiable(Difference("trade_idea_id", _text(event.get("trade_idea_id")),
                                       "no idea: " + ", ".join(proposal.codes)))
    state, gate = _gate_state(event)
    early = _integrity(event, gate, state)
    idea = proposal.idea
    context = GateContext(account=_account(bundle, gate), calendar=records.calendar(
        bundle["calendar"], bundle.get("calendar_last_success")))
    t = state.on_idea(idea, proposal.confidence, strategy, context, idea.created_at)
    main = _event_of(t.decisions[0], records.canonical(proposal.confidence.to_dict()),
                     config_hash(t.state.config))
    return main, t.decisions[1:], early


def verify_decision(event: Mapping[str, Any], bundle: Mapping[str, Any] | None) -> Verification:
    """Re-decide one recorded idea decision from its bundle and compare (see module doc)."""
    def verdict(differences: Iterable[Difference],
                followups: tuple[Decision, ...] = ()) -> Verification:
        return Verification(str(event["decision_id"]), event.get("trade_idea_id"),
                            event["occurred_at"], str(event["action"]), tuple(differences),
                            followups)

    if bundle is None:
        return verdict([Difference("snapshot_ref", _text(event.get("snapshot_ref")),
                                   "no such snapshot bundle")])
    try:
        replayed, followups, early = redecide(event, bundle)
    except _Unverifiable as exc:
        return verdict([exc.difference])
    return verdict([*early, *compare_events(event, replayed)], followups)


def _followup_differences(v: Verification, recorded: Sequence[Mapping[str, Any]]
                          ) -> list[Difference]:
    """The re-run's follow-ups (halts) against the log's decisions about the same idea."""
    logged = {str(e["decision_id"]): e for e in recorded
              if e.get("trade_idea_id") == v.idea_id and e.get("action") == "ai_halted"
              and e.get("occurred_at") == v.occurred_at}
    out = []
    for decision in v.followups:
        mine = _event_of(decision, None, "")
        theirs = logged.pop(decision.decision_id, None)
        if theirs is None:
            out.append(Difference(f"followup.{decision.action}", "absent from the log",
                                  f"{decision.decision_id}: {decision.rationale}"))
            continue
        for name in ("action", "rationale", "risk_check_result"):
            if _text(theirs.get(name)) != _text(mine.get(name)):
                out.append(Difference(f"followup.{name}", _text(theirs.get(name)),
                                      _text(mine.get(name))))
    out += [Difference("followup.ai_halted", f"{ident}: {e.get('rationale')}",
                       "not produced by the re-run") for ident, e in sorted(logged.items())]
    return out


def verify_range(events: Iterable[Mapping[str, Any]],
                 bundles: Mapping[str, Mapping[str, Any]],
                 progress: Callable[[int], None] | None = None) -> RangeReport:
    """Verify every idea decision among `events` (all decisions of a range, any action).

    `bundles` maps snapshot ids to bundles; `progress`, when given, is called with the
    number of decisions done after each one.
    """
    all_events = list(events)
    report = RangeReport(decisions_read=len(all_events))
    for index, event in enumerate(e for e in all_events if is_idea_decision(e)):
        v = verify_decision(event, bundles.get(str(event["snapshot_ref"])))
        extra = _followup_differences(v, all_events)
        if extra:
            v = Verification(v.decision_id, v.idea_id, v.occurred_at, v.action,
                             (*v.differences, *extra), v.followups)
        report.verifications.append(v)
        if progress is not None:
            progress(index + 1)
    return report


# ------------------------------------------------------------------------ what it saw


def minutes_until(event_time: datetime, at: datetime) -> float:
    """Minutes from `at` to a release (negative when it is already past)."""
    return round((event_time - at).total_seconds() / 60.0, 1)


def _strategy_view(bundle: Mapping[str, Any]) -> dict[str, Any]:
    try:
        definition = json.loads(bundle["strategy_json"])
    except (TypeError, ValueError):
        definition = None
    return {"id": bundle["strategy_id"], "version": bundle["strategy_version"],
            "hash": bundle["strategy_hash"],
            "name": definition.get("name") if isinstance(definition, dict) else None,
            "definition": definition}


def _market_view(bundle: Mapping[str, Any]) -> dict[str, Any]:
    candle, ind = bundle["candle"], bundle["indicators"]
    skip = {"symbol", "timeframe", "open_time", "input_partition", "input_offset"}
    return {
        "symbol": bundle["symbol"], "timeframe": bundle["timeframe"],
        "candle": {k: candle.get(k) for k in ("open_time", "open", "high", "low", "close",
                                             "volume", "spread")},
        "indicators": {k: v for k, v in ind.items() if k not in skip},
        "higher_timeframe": bundle.get("higher_timeframe"),
    }


def _calendar_view(bundle: Mapping[str, Any], at: datetime) -> list[dict[str, Any]]:
    return [{"event_time": e["event_time"], "currency": e["currency"], "impact": e["impact"],
             "title": e["title"], "all_day": bool(e.get("all_day")),
             "minutes_until_release": minutes_until(e["event_time"], at),
             "forecast": e.get("forecast_raw"), "previous": e.get("previous_raw"),
             "actual": e.get("actual_raw")}
            for e in bundle.get("calendar") or ()]


def _news_view(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"published_at": n["published_at"], "source": n["source"],
             "headline": n["headline"], "url": n.get("url"),
             "symbols": list(n.get("symbols") or ()),
             "currencies": list(n.get("currencies") or ())}
            for n in bundle.get("news") or ()]


def _risk_view(event: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        gate = json.loads(event["gate_state_json"])["gate"]
    except (TypeError, KeyError, ValueError):
        return None
    return {**gate.get("config", {}), "kill_switch": gate.get("kill"),
            "open_positions": len(gate.get("positions") or ()),
            "realised_today": gate.get("realised_today"),
            "trading_day": gate.get("trading_day")}


def context_view(event: Mapping[str, Any], bundle: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything the AI saw at a decision (blueprint §1.4 full context replay).

    The decision itself (action, outcome, rationale, confidence and its components,
    every check), the gate's risk config and state at that moment, and, when the
    decision is about an idea, its snapshot bundle: candle, indicators, calendar events
    with minutes until release (from the decision's time), news, account, strategy.
    """
    at = event["occurred_at"]
    confidence_json = event.get("confidence_json")
    view: dict[str, Any] = {
        "decision": {
            "decision_id": event["decision_id"], "account": event.get("account"),
            "occurred_at": at, "action": event["action"], "outcome": event.get("outcome"),
            "symbol": event.get("symbol"), "trade_idea_id": event.get("trade_idea_id"),
            "snapshot_ref": event.get("snapshot_ref"), "issuer": event.get("issuer"),
            "human_override": bool(event.get("human_override")),
            "rationale": event.get("rationale"),
            "risk_check_result": event.get("risk_check_result"),
            "code_version": event.get("code_version"), "hash": event.get("hash"),
        },
        "confidence": {
            "score": event.get("confidence"),
            "components": (json.loads(confidence_json).get("components")
                           if confidence_json else None),
        },
        "checks": [{"name": c["name"], "passed": bool(c["passed"]), "code": c["code"],
                    "values": json.loads(c["detail_json"]) if c.get("detail_json") else {}}
                   for c in event.get("checks") or ()],
        "risk_config": _risk_view(event),
        "bundle": None,
    }
    if bundle is not None:
        view["bundle"] = {
            "snapshot_id": bundle["snapshot_id"], "captured_at": bundle["captured_at"],
            "code_version": bundle.get("code_version"),
            "market": _market_view(bundle), "calendar": _calendar_view(bundle, at),
            "calendar_last_success": bundle.get("calendar_last_success"),
            "news": _news_view(bundle), "account": bundle.get("account_state"),
            "strategy": _strategy_view(bundle),
            "inputs": list(bundle.get("inputs") or ()),
        }
    return view
