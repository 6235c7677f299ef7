"""The gate's bookkeeping around the pure core: one `Book` per account.

The Faust gate agent feeds every record of an account's ordered stream (ideas and
control commands from gate.inbox, account states, order results) to a `Book`, which
answers with the records to publish (`Outputs`). No I/O and no clock: the wall-clock
time a command is checked against comes in as an argument, and every other time is
an event's. The book is a small JSON-able record kept in a Faust table.

What the book adds to `GateState`: the ideas waiting for a human (with the context
their re-validation needs), the ids of recently decided ideas and applied commands
(idempotency and replay refusal), the orders in flight, the strategies, the latest
account, and the head of the decision hash chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from streams import records
from streams.core.audit import seal
from streams.core.gate import (
    HALT_REASONS,
    CheckResult,
    Decision,
    GateContext,
    GateState,
    Transition,
)
from streams.core.model import (
    AccountState,
    Approval,
    CalendarStatus,
    KillSwitch,
    Position,
    RiskConfig,
    TradeIdea,
    to_decimal,
)
from streams.core.strategy import NoMatch, Strategy, StrategyError, parse_strategy
from streams.defaults import parse_risk_config
from streams.proposals import Proposal, from_bundle, strategy_from_json
from topics.commands import GATE_KINDS, CommandRefused, verify_fresh, verify_signature

ORDER_TTL = timedelta(minutes=2)
STATUS_OF_OUTCOME = {
    "auto_execute": "auto_executing",
    "needs_approval": "pending_approval",
    "rejected": "rejected_by_risk",
    "halted_by_risk": "halted_by_risk",
}


class InvalidInboxMessage(ValueError):
    """A gate.inbox record that cannot be processed (goes to the dead-letter topic)."""


def _sha(obj: Any) -> str:
    return hashlib.sha256(records.canonical(obj).encode()).hexdigest()


def config_hash(config: RiskConfig) -> str:
    """The hash a decision records for the risk config it was made under."""
    return _sha(config.to_dict())


@dataclass
class Outputs:
    """Records to publish after one event, in this order."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    risk_states: list[dict[str, Any]] = field(default_factory=list)
    strategy_states: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # for the log and metrics
    #: a command applied before, from this very record: answered then, nothing to do
    redelivered: bool = False

    def records(self, account: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(topic, key, record) of every output, in publishing order: the decision log
        first, the replies last (an issuer told "accepted" finds everything in place)."""
        return [
            *(("decisions.log.v1", account, r) for r in self.decisions),
            *(("ideas.status.v1", r["idea_id"], r) for r in self.statuses),
            *(("orders.requests.v1", account, r) for r in self.orders),
            *(("state.risk_config.v1", account, r) for r in self.risk_states),
            *(("state.strategies.v1", r["strategy_id"], r) for r in self.strategy_states),
            *(("control.replies.v1", account, r) for r in self.replies),
        ]

    def empty(self) -> bool:
        return not (self.decisions or self.statuses or self.orders or self.replies
                    or self.risk_states or self.strategy_states)


@dataclass
class Book:
    """Everything the gate keeps for one account (see the module docstring)."""

    account: str
    state: GateState
    code_version: str = "dev"
    config_version: int = 0
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)
    inflight: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: idea id -> expiry (ISO) of every idea waiting for a human: small, in the record
    expiries: dict[str, str] = field(default_factory=dict)
    # Keyed stores that grow with history live beside the record (their own Faust tables
    # in the worker, plain dicts in tests and replay), so one event writes a few bytes:
    pending: MutableMapping[str, dict[str, Any]] = field(default_factory=dict)
    decided: MutableMapping[str, str] = field(default_factory=dict)  # idea id -> status
    #: command id -> {"kind", "origin": [inbox partition, offset]} (a kind alone when the
    #: command came without an origin: tests, backtests, older books)
    commands: MutableMapping[str, Any] = field(default_factory=dict)
    last_account: dict[str, Any] | None = None
    last_hash: str | None = None
    #: the current risk config and its hash (not persisted: derived)
    _hashed: tuple[RiskConfig, str] | None = field(default=None, init=False, repr=False,
                                                   compare=False)
    #: the gate-state JSON of (state, last_account): every decision records it, and it
    #: changes only when one of the two is replaced (both immutable or never changed in place)
    _state_json: tuple[GateState, dict[str, Any] | None, str] | None = field(
        default=None, init=False, repr=False, compare=False)
    #: strategy id -> (its entry in `strategies`, the Strategy parsed from it): entries are
    #: replaced, never changed in place, so the same entry object parses to the same thing
    _parsed: dict[str, tuple[dict[str, Any], Strategy]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    # ---- persistence

    def to_state(self) -> dict[str, Any]:
        """JSON-able form for the Faust table."""
        return {
            "account": self.account, "state": self.state.to_state(),
            "code_version": self.code_version, "config_version": self.config_version,
            "strategies": self.strategies, "inflight": self.inflight,
            "expiries": self.expiries,
            "last_account": self.last_account, "last_hash": self.last_hash,
        }

    def checkpoint(self) -> tuple[Any, ...]:
        """What `restore` needs to put the book back as it is now (its keyed stores
        aside: the caller keeps their staged writes). Cheap: the state is frozen and the
        book only ever replaces the entries of its dicts and its account, never changes
        one in place, so copies of the dicts suffice."""
        return (self.state, self.code_version, self.config_version, dict(self.strategies),
                dict(self.inflight), dict(self.expiries), self.last_account, self.last_hash)

    def restore(self, checkpoint: tuple[Any, ...]) -> None:
        """The book as it was at `checkpoint` (an event failed half-way)."""
        (self.state, self.code_version, self.config_version, strategies, inflight, expiries,
         self.last_account, self.last_hash) = checkpoint
        self.strategies, self.inflight, self.expiries = (
            dict(strategies), dict(inflight), dict(expiries))

    @classmethod
    def from_state(
        cls, data: Mapping[str, Any],
        pending: MutableMapping[str, dict[str, Any]] | None = None,
        decided: MutableMapping[str, str] | None = None,
        commands: MutableMapping[str, Any] | None = None,
    ) -> Book:
        """Inverse of `to_state`, with the keyed stores attached."""
        return cls(
            pending={} if pending is None else pending,
            decided={} if decided is None else decided,
            commands={} if commands is None else commands,
            expiries=dict(data.get("expiries", {})),
            account=data["account"], state=GateState.from_state(data["state"]),
            code_version=data.get("code_version", "dev"),
            config_version=int(data.get("config_version", 0)),
            strategies=dict(data.get("strategies", {})),
            inflight=dict(data.get("inflight", {})), last_account=data.get("last_account"),
            last_hash=data.get("last_hash"),
        )

    @classmethod
    def new(
        cls, account: str, config: RiskConfig, code_version: str,
        pending: MutableMapping[str, dict[str, Any]] | None = None,
        decided: MutableMapping[str, str] | None = None,
        commands: MutableMapping[str, Any] | None = None,
    ) -> Book:
        """A book for an account never seen before."""
        return cls(account=account, state=GateState(config=config), code_version=code_version,
                   pending={} if pending is None else pending,
                   decided={} if decided is None else decided,
                   commands={} if commands is None else commands)

    # ---- views

    def strategy(self, strategy_id: str) -> Strategy | None:
        """The current version of a strategy, or None."""
        entry = self.strategies.get(strategy_id)
        if entry is None:
            return None
        parsed = self._parsed.get(strategy_id)
        if parsed is None or parsed[0] is not entry:
            # the canonical JSON of a definition per idea was a twentieth of the gate's work
            parsed = (entry, strategy_from_json(records.canonical(entry["definition"])))
            self._parsed[strategy_id] = parsed
        return parsed[1]

    def account_state(self) -> AccountState | None:
        return None if self.last_account is None else AccountState.from_dict(self.last_account)

    def gate_state_json(self) -> str:
        """The gate's own state as a decision records it (input of replay --verify).

        Kept while the same state and account objects are current (a GateState is
        frozen, `last_account` is replaced, never changed in place): a run of ideas
        between two changes of either records the same text, built once.
        """
        cached = self._state_json
        if cached is not None and cached[0] is self.state and cached[1] is self.last_account:
            return cached[2]
        text = records.canonical({
            "gate": self.state.to_state(), "account": self.last_account,
            "config_hash": self._config_hash(),
        })
        self._state_json = (self.state, self.last_account, text)
        return text

    # ---- helpers

    def _settle(self, idea_id: str, status: str) -> None:
        """The idea reached a status after which no command can change it."""
        self.pending.pop(idea_id, None)
        self.expiries.pop(idea_id, None)
        self.decided[idea_id] = status

    def _event(self, d: Decision, *, confidence_json: str | None = None,
               inputs: list[dict[str, Any]] | None = None,
               gate_state_json: str | None = None) -> dict[str, Any]:
        record = {
            "decision_id": d.decision_id, "account": self.account,
            "occurred_at": d.occurred_at, "symbol": d.symbol, "action": d.action,
            "outcome": d.outcome, "rationale": d.rationale,
            "confidence": None if d.confidence is None else d.confidence.quantize(Decimal("0.01")),
            "confidence_json": confidence_json,
            "risk_check_result": d.risk_check_result,
            "checks": [_check_record(c) for c in d.checks],
            "strategy_id": d.strategy_id, "strategy_hash": d.strategy_hash,
            "trade_idea_id": d.trade_idea_id, "snapshot_ref": d.snapshot_ref,
            "command_id": d.command_id, "human_override": d.human_override,
            "issuer": d.issuer, "inputs": inputs or [],
            "risk_config_hash": self._config_hash(),
            "gate_state_json": gate_state_json or self.gate_state_json(),
            "code_version": self.code_version,
        }
        sealed = seal(record, self.last_hash, gate_written=True)  # details: _check_record
        self.last_hash = sealed["hash"]
        return sealed

    def _status(self, idea_id: str, status: str, at: datetime, reason: str | None = None,
                decision_id: str | None = None,
                idea: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"idea_id": idea_id, "account": self.account, "status": status,
                "reason": reason, "decision_id": decision_id, "changed_at": at, "idea": idea}

    def _risk_state(self, by: str, at: datetime) -> dict[str, Any]:
        self.config_version += 1
        config = {**self.state.config.to_dict(), "kill_switch": self.state.kill.to_dict()}
        return {"account": self.account, "config_json": records.canonical(config),
                "config_hash": self._config_hash(), "version": self.config_version,
                "updated_at": at, "updated_by": by}

    def _config_hash(self) -> str:
        config = self.state.config
        if self._hashed is None or self._hashed[0] is not config:
            self._hashed = (config, config_hash(config))  # frozen: same object, same hash
        return self._hashed[1]

    def _control_snapshot(self) -> tuple[RiskConfig, KillSwitch]:
        return (self.state.config, self.state.kill)

    def _control_changed(self, before: tuple[RiskConfig, KillSwitch]) -> bool:
        """Did the risk config or the kill switch change since `before`? Both are frozen:
        the same objects are unchanged; others are compared as they are published."""
        config, kill = before
        if self.state.config is config and self.state.kill is kill:
            return False
        return ((config.to_dict(), kill.to_dict())
                != (self.state.config.to_dict(), self.state.kill.to_dict()))

    def _apply(self, t: Transition, out: Outputs, by: str, at: datetime,
               before: tuple[RiskConfig, KillSwitch], gate_state_json: str) -> None:
        self.state = t.state
        for d in t.decisions:
            out.decisions.append(self._event(d, gate_state_json=gate_state_json))
        if self._control_changed(before):
            out.risk_states.append(self._risk_state(by, at))

    def _order(self, idea: TradeIdea, lots: Decimal, decision_id: str, at: datetime,
               human: bool) -> dict[str, Any]:
        order = {
            "request_id": idea.idea_id, "idea_id": idea.idea_id, "decision_id": decision_id,
            "account": self.account, "symbol": idea.symbol, "direction": idea.direction,
            "order_type": "market", "lot_size": lots.quantize(Decimal("0.01")), "price": None,
            "stop_loss": idea.stop_loss, "take_profit": list(idea.take_profit),
            "strategy_id": idea.strategy_id, "human_override": human,
            "requested_at": at, "expires_at": at + ORDER_TTL,
        }
        self.inflight[idea.idea_id] = {"symbol": idea.symbol, "direction": idea.direction,
                                       "strategy_id": idea.strategy_id}
        return order

    # ---- expiry

    def expire(self, at: datetime, out: Outputs) -> None:
        """Ideas waiting for a human past their expiry become `expired` (event time)."""
        for idea_id, expires in sorted(self.expiries.items()):
            if records_time(expires) <= at:
                self._settle(idea_id, "expired")
                out.statuses.append(self._status(idea_id, "expired", at, "idea_expired"))

    # ---- ideas

    def on_idea(self, message: Mapping[str, Any], inputs: list[dict[str, Any]],
                derived: Proposal | None = None) -> Outputs:
        """An idea with its bundle: decide, log, and send the order when auto-executed.

        `derived`: what `from_bundle` gives for this message's bundle, when the caller
        already has it (`proposals.Derivations`); else it is derived here.
        """
        out = Outputs()
        idea_record, bundle = message.get("idea"), message.get("bundle")
        if idea_record is None or bundle is None:
            raise InvalidInboxMessage("an idea message needs both idea and bundle")
        proposal = from_bundle(bundle) if derived is None else derived
        if isinstance(proposal, NoMatch) or proposal.idea.idea_id != idea_record["idea_id"]:
            raise InvalidInboxMessage(
                f"idea {idea_record['idea_id']} is not reproducible from bundle "
                f"{bundle['snapshot_id']}")
        idea = proposal.idea
        self.expire(idea.created_at, out)
        if idea.idea_id in self.pending or idea.idea_id in self.decided:
            return out  # redelivered: already decided, its records were published then
        account = (records.account(bundle["account_state"])
                   if bundle.get("account_state") is not None else self.account_state())
        context = GateContext(account=account, calendar=records.calendar(
            bundle["calendar"], bundle.get("calendar_last_success")))
        before, gate_json = self._control_snapshot(), self.gate_state_json()
        t = self.state.on_idea(idea, proposal.confidence, self.strategy(idea.strategy_id),
                               context, idea.created_at)
        self.state = t.state
        result = t.result
        # the idea record carries it, written by the same derivation (`from_bundle`)
        confidence_json = proposal.idea_record["confidence_json"]
        all_inputs = [*bundle.get("inputs", []), *inputs]
        events = [self._event(d, confidence_json=confidence_json if i == 0 else None,
                              inputs=all_inputs, gate_state_json=gate_json)
                  for i, d in enumerate(t.decisions)]
        out.decisions.extend(events)
        main = events[0]
        status = STATUS_OF_OUTCOME[result.outcome]
        reason = None if result.decisive is None else result.decisive.reason
        published_idea = {**proposal.idea_record, "expires_at": result.expires_at}
        out.statuses.append(self._status(idea.idea_id, status, idea.created_at, reason,
                                         main["decision_id"], published_idea))
        if result.outcome == "auto_execute":
            self._settle(idea.idea_id, "auto_executing")
            out.orders.append(self._order(idea, result.lot_size, main["decision_id"],
                                          idea.created_at, human=False))
        elif result.outcome == "needs_approval":
            self.pending[idea.idea_id] = {
                "idea": idea.to_dict(), "expires_at": records_iso(result.expires_at),
                "calendar": context.calendar.to_dict(), "decision_id": main["decision_id"],
                "confidence_json": confidence_json,
            }
            self.expiries[idea.idea_id] = records_iso(result.expires_at) or ""
        else:
            self._settle(idea.idea_id, status)
        if self._control_changed(before):
            out.risk_states.append(self._risk_state("gate", idea.created_at))
        return out

    # ---- commands

    def on_command(self, command: Mapping[str, Any], key: bytes, now: datetime,
                   received_at: datetime | None = None,
                   origin: tuple[int, int] | None = None) -> Outputs:
        """A control command: verify it, apply it, and always answer it.

        `received_at` is when the command entered the inbox (the broker's append time,
        default `now`): freshness is judged then, so a command redelivered after a crash
        or replayed from the log gets the verdict it got the first time, however long
        the worker was down. Judged against the restart's clock instead, a kill switch
        already answered "accepted" could come back "stale" and never take effect.
        `origin` (inbox partition, offset) tells a redelivery of an applied command -- its
        reply went out before the book recorded it, so nothing is sent again -- from the
        same id in a new record: a replay, refused.
        """
        out = Outputs()
        try:
            if command.get("kind") not in GATE_KINDS:
                raise CommandRefused("unknown_kind",
                                     f"{command.get('kind')!r} is not a gate command")
            # Authenticity, then replay, then freshness: a replayed command is refused as
            # a replay whatever the wall clock says, so a replay of the log is identical.
            verify_signature(command, key)
            if command.get("account") != self.account:
                raise CommandRefused("wrong_account", f"command for account "
                                     f"{command.get('account')!r} on {self.account!r}'s stream")
            seen = self.commands.get(command["command_id"])
            if seen is not None:
                if (origin is not None and isinstance(seen, dict)
                        and seen.get("origin") == list(origin)):
                    out.redelivered = True
                    return out
                raise CommandRefused("replayed",
                                     f"command {command['command_id']} was already applied")
            verify_fresh(command, now if received_at is None else received_at)
        except CommandRefused as exc:
            out.refusals.append(str(exc))
            out.replies.append(self._reply(command, "refused", str(exc), None, now))
            return out
        self.commands[command["command_id"]] = (
            command["kind"] if origin is None
            else {"kind": command["kind"], "origin": list(origin)})
        at = command["issued_at"]
        self.expire(at, out)
        handler = _COMMAND_HANDLERS[command["kind"]]
        try:
            result = handler(self, command, at, out)
        except CommandRefused as exc:
            out.refusals.append(str(exc))
            out.replies.append(self._reply(command, "refused", str(exc), None, now))
            return out
        out.replies.append(self._reply(command, "accepted", None, result, now))
        return out

    def _reply(self, command: Mapping[str, Any], status: str, reason: str | None,
               result: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
        return {"command_id": str(command.get("command_id") or ""), "account": self.account,
                "kind": str(command.get("kind") or ""), "status": status, "reason": reason,
                "result_json": None if result is None else records.canonical(result),
                "replied_at": now}

    def _pending_idea(self, command: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        idea_id = command.get("idea_id")
        if not idea_id:
            raise CommandRefused("invalid_payload", "idea_id is required")
        entry = self.pending.get(idea_id)
        if entry is None:
            if idea_id in self.decided:
                raise CommandRefused("already_decided", f"idea {idea_id} was already decided")
            raise CommandRefused("unknown_idea", f"no idea {idea_id} is waiting for approval")
        return idea_id, entry

    def _approve(self, command: Mapping[str, Any], at: datetime, out: Outputs) -> dict[str, Any]:
        idea_id, entry = self._pending_idea(command)
        idea = TradeIdea.from_dict(entry["idea"])
        lots = command.get("lot_size")
        approval = Approval(idea_id=idea_id, by=command["issuer"],
                            lot_size=None if lots is None else to_decimal(lots),
                            command_id=command["command_id"])
        context = GateContext(account=self.account_state(),
                              calendar=CalendarStatus.from_dict(entry["calendar"]))
        before, gate_json = self._control_snapshot(), self.gate_state_json()
        t = self.state.on_approval(idea, approval, self.strategy(idea.strategy_id),
                                   context, at)
        self.state = t.state
        events = [self._event(d, confidence_json=entry.get("confidence_json") if i == 0 else None,
                              gate_state_json=gate_json) for i, d in enumerate(t.decisions)]
        out.decisions.extend(events)
        if self._control_changed(before):
            out.risk_states.append(self._risk_state(command["issuer"], at))
        check = t.check
        if not check.ok:
            code = _refusal_code(check.decisive)
            if code == "expired":
                self._settle(idea_id, "expired")
                out.statuses.append(self._status(idea_id, "expired", at, "idea_expired",
                                                 events[0]["decision_id"]))
            raise CommandRefused(code, f"{check.reason}: "
                                 f"{check.decisive.describe() if check.decisive else ''}".strip())
        self._settle(idea_id, "approved")
        decision_id = events[0]["decision_id"]
        out.statuses.append(self._status(idea_id, "approved", at, None, decision_id))
        out.orders.append(self._order(idea, check.lot_size, decision_id, at, human=True))
        return {"decision_id": decision_id, "idea_id": idea_id, "order_request_id": idea_id,
                "lot_size": format(check.lot_size, "f")}

    def _reject(self, command: Mapping[str, Any], at: datetime, out: Outputs) -> dict[str, Any]:
        idea_id, entry = self._pending_idea(command)
        idea = TradeIdea.from_dict(entry["idea"])
        gate_json = self.gate_state_json()
        t = self.state.on_human_reject(idea, command["issuer"], at, command.get("reason"),
                                       command["command_id"])
        self.state = t.state
        events = [self._event(d, gate_state_json=gate_json) for d in t.decisions]
        out.decisions.extend(events)
        self._settle(idea_id, "rejected_by_human")
        out.statuses.append(self._status(idea_id, "rejected_by_human", at,
                                         command.get("reason"), events[0]["decision_id"]))
        return {"decision_id": events[0]["decision_id"], "idea_id": idea_id}

    def _control_result(self, t: Transition, out: Outputs, by: str, at: datetime,
                        before: tuple[RiskConfig, KillSwitch], gate_json: str) -> dict[str, Any]:
        self._apply(t, out, by, at, before, gate_json)
        return {"decision_id": t.decisions[0].decision_id if t.decisions else None,
                "ai_trading_enabled": self.state.ai_trading_enabled,
                "kill_switch": self.state.kill.to_dict(),
                "last_halt_reason": self.state.last_halt_reason}

    def _kill(self, command: Mapping[str, Any], at: datetime, out: Outputs) -> dict[str, Any]:
        reason = (command.get("reason") or "").strip()
        if not reason:
            raise CommandRefused("invalid_payload", "a kill switch needs a reason")
        before, gate_json = self._control_snapshot(), self.gate_state_json()
        t = self.state.kill_switch(command["issuer"], at, reason, command["command_id"])
        return self._control_result(t, out, command["issuer"], at, before, gate_json)

    def _resume(self, command: Mapping[str, Any], at: datetime, out: Outputs) -> dict[str, Any]:
        before, gate_json = self._control_snapshot(), self.gate_state_json()
        reason = command.get("reason") or "Human resumed after review"
        t = self.state.resume(command["issuer"], at, reason, command["command_id"])
        return self._control_result(t, out, command["issuer"], at, before, gate_json)

    def _set_risk(self, command: Mapping[str, Any], at: datetime, out: Outputs) -> dict[str, Any]:
        payload = _payload(command)
        try:
            config = parse_risk_config(payload)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise CommandRefused("invalid_payload", f"invalid risk config: {exc}") from exc
        before, gate_json = self._control_snapshot(), self.gate_state_json()
        t = self.state.apply_config(config, command["issuer"], at, command["command_id"])
        self._apply(t, out, command["issuer"], at, before, gate_json)
        if not out.risk_states:  # an identical config is still an applied command
            out.risk_states.append(self._risk_state(command["issuer"], at))
        return {"config_hash": self._config_hash(), "version": self.config_version}

    def _put_strategy(self, command: Mapping[str, Any], at: datetime,
                      out: Outputs) -> dict[str, Any]:
        payload = _payload(command)
        strategy_id = command.get("strategy_id")
        if "definition" in payload:
            definition = payload["definition"]
        elif "is_active" in payload and strategy_id in self.strategies:
            definition = {**self.strategies[strategy_id]["definition"],
                          "is_active": bool(payload["is_active"])}
        elif "is_active" in payload:
            raise CommandRefused("unknown_strategy", f"no strategy {strategy_id!r}")
        else:
            raise CommandRefused("invalid_payload", "payload needs definition or is_active")
        try:
            strategy = parse_strategy(definition)
        except StrategyError as exc:
            raise CommandRefused("invalid_payload", f"invalid strategy: {exc}") from exc
        if strategy_id and strategy_id != strategy.strategy_id:
            raise CommandRefused("invalid_payload", f"strategy_id {strategy_id!r} does not "
                                 f"match the definition's {strategy.strategy_id!r}")
        current = self.strategies.get(strategy.strategy_id)
        if current is None or current["hash"] != strategy.definition_hash:
            self.strategies[strategy.strategy_id] = {
                "definition": json.loads(strategy.canonical_json),
                "hash": strategy.definition_hash, "version": strategy.version,
            }
            out.strategy_states.append({
                "strategy_id": strategy.strategy_id, "version": strategy.version,
                "is_active": strategy.is_active, "definition_json": strategy.canonical_json,
                "definition_hash": strategy.definition_hash, "updated_at": at,
                "updated_by": command["issuer"],
            })
        return {"strategy_id": strategy.strategy_id, "version": strategy.version,
                "definition_hash": strategy.definition_hash, "is_active": strategy.is_active}

    # ---- broker events

    def on_account(self, record: Mapping[str, Any], now: datetime | None = None) -> Outputs:
        """A fresh account state: sync positions and P/L, fire halt triggers.

        `now` is the wall clock of the live gate (None when replaying history): a state
        captured further ahead of it than MAX_CLOCK_SKEW is refused, since every real
        state after it would look older and be ignored, halts included.
        """
        out = Outputs()
        if record["account"] != self.account:
            return out
        _not_ahead(record["captured_at"], now, "account state captured_at")
        account = records.account(record)
        at = account.captured_at
        self.expire(at, out)
        before, gate_json = self._control_snapshot(), self.gate_state_json()
        t = self.state.on_account(account, at)
        if (self.state.account_synced_at is None
                or account.captured_at >= self.state.account_synced_at):
            self.last_account = account.to_dict()
        self._apply(t, out, "gate", at, before, gate_json)
        return out

    def on_order_result(self, record: Mapping[str, Any], now: datetime | None = None) -> Outputs:
        """What the broker did with an order: the position opens or the reservation goes.
        A result dated ahead of `now` (the live wall clock) is refused, as in `on_account`."""
        out = Outputs()
        _not_ahead(record["executed_at"], now, "order result executed_at")
        idea_id = record["idea_id"]
        order = self.inflight.pop(idea_id, None)
        if order is None or record["status"] == "duplicate":
            return out  # a repeated result: already applied
        at = record["executed_at"]
        if record["status"] in ("filled", "placed"):
            ticket = record.get("position_ticket") or record.get("broker_order_id") or idea_id
            position = Position(
                position_id=str(ticket), symbol=order["symbol"], direction=order["direction"],
                lots=to_decimal(record.get("filled_volume") or 0), opened_at=at,
                idea_id=idea_id, strategy_id=order.get("strategy_id"),
            )
            self.state = self.state.on_position_opened(position, at)
            out.statuses.append(self._status(idea_id, "executed", at, None))
        else:
            self.state = self.state.on_order_failed(idea_id, at)
            reason = record.get("error_code") or record["status"]
            out.statuses.append(self._status(idea_id, "failed", at,
                                             f"{reason}: {record.get('message', '')}"))
        return out


#: How far ahead of the gate's wall clock a broker event's time may be.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _not_ahead(at: datetime, now: datetime | None, what: str) -> None:
    if now is not None and at > now + MAX_CLOCK_SKEW:
        raise InvalidInboxMessage(f"{what} {at.isoformat()} is ahead of the gate's clock "
                                  f"({now.isoformat()}) by more than {MAX_CLOCK_SKEW}")


def _check_record(check: CheckResult) -> dict[str, Any]:
    return {"name": check.name, "passed": check.passed, "code": check.code,
            "detail_json": check.detail_json()}


def _payload(command: Mapping[str, Any]) -> dict[str, Any]:
    try:
        payload = json.loads(command.get("payload_json") or "null")
    except json.JSONDecodeError as exc:
        raise CommandRefused("invalid_payload", f"payload_json is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise CommandRefused("invalid_payload", "payload_json must be a JSON object")
    return payload


def _refusal_code(decisive: CheckResult | None) -> str:
    if decisive is None:
        return "risk_violation"
    if decisive.name == "kill_switch":
        return "kill_switch"
    if decisive.name == "ai_halted" or decisive.reason in HALT_REASONS:
        return "ai_halted"
    if decisive.reason == "idea_expired":
        return "expired"
    if decisive.name.startswith("strategy") or decisive.name in ("session", "symbol_allowed"):
        return "strategy_blocked"
    return "risk_violation"


def records_iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def records_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


_COMMAND_HANDLERS = {
    "approve_idea": Book._approve,
    "reject_idea": Book._reject,
    "kill_switch": Book._kill,
    "resume": Book._resume,
    "set_risk_config": Book._set_risk,
    "put_strategy": Book._put_strategy,
}

