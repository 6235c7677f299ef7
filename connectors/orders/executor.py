"""The order executor: every allowed order reaches the broker at most once, and none is lost.

For each `OrderRequest` (its `request_id` is the idea id, the idempotency key):

1. The ledger is asked first. A request with a recorded result gets that same
   result again (a redelivery after a crash), nothing is sent.
2. The broker is asked next, by the request's comment (and magic) in orders,
   positions and deals: an order found there is recorded, not sent again. This
   covers a crash between `order_send` and the ledger commit, and a lost ledger.
3. Refusals, each a terminal result with its reason: wrong account, expired
   (`expires_at` against the injected clock), account halted (ai_halted seen on
   decisions.log.v1), reduce-only (not yet reconciled with the broker after a start:
   every order request opens exposure, so none passes until reconciliation did).
4. The ledger moves to `sending` (fsync'd), then the broker is called. No answer
   (`OutcomeUnknown`) triggers a lookup before any retry; retryable refusals
   (requote, price changed, too many requests, no connection) are retried a few
   times, each retry preceded by a lookup.
5. The result is written to the ledger (terminal) and returned for publishing.

When the broker cannot be reached at a point where we cannot know what happened,
`RetryLater` is raised: the service keeps the request (offset not committed) and
tries again after a backoff.

`hook(point, request_id)` is called at `before_send`, `after_send` and
`after_ledger` (and by the service at `after_publish`): the crash tests raise there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.brokers.base import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    Execution,
    OrderTicket,
    OutcomeUnknown,
    PositionInfo,
)
from connectors.core.backoff import Backoff
from connectors.core.clock import Clock, utc_now
from connectors.orders.ledger import FAILED, SENDING, SENT, Entry, Ledger

log = logging.getLogger(__name__)

Hook = Callable[[str, str], None]
HALTED_FACT = "halted"


class RetryLater(Exception):
    """The broker could not answer; keep the request and try again later."""


def _no_hook(point: str, request_id: str) -> None:
    return None


@dataclass(frozen=True)
class ExecutorConfig:
    """Who we are at the broker and how hard we try."""

    account: str
    broker: str
    magic: int
    max_attempts: int = 3
    lookup_days: int = 7


@dataclass
class Reconciliation:
    """What the start-up comparison with the broker found."""

    positions: int = 0
    recovered: list[str] = field(default_factory=list)  # `sending` entries found at the broker
    unknown_positions: list[int] = field(default_factory=list)  # our magic, comment not ours
    foreign_positions: list[int] = field(default_factory=list)  # opened by someone else

    def differences(self) -> str | None:
        """A one-line summary of differences, or None."""
        parts = []
        if self.recovered:
            parts.append(f"{len(self.recovered)} in-flight orders found at the broker")
        if self.unknown_positions:
            parts.append(f"positions {self.unknown_positions} carry our magic but no ledger "
                         f"entry")
        if self.foreign_positions:
            parts.append(f"positions {self.foreign_positions} were opened outside ai-trader")
        return "; ".join(parts) or None


class OrderExecutor:
    """Turns order requests into broker orders exactly once (see the module doc)."""

    def __init__(self, broker: Broker, ledger: Ledger, config: ExecutorConfig,
                 clock: Clock = utc_now, hook: Hook | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.broker = broker
        self.ledger = ledger
        self.config = config
        self.clock = clock
        self.hook = hook or _no_hook
        self.sleep = sleep
        self.reconciled = False
        self.backoff = Backoff(base=0.2, cap=2.0, seed=config.magic)

    # --- halt --------------------------------------------------------------------------------
    @property
    def halted(self) -> bool:
        """True between an ai_halted and the next ai_resumed of this account."""
        return self.ledger.fact(HALTED_FACT) == "1"

    def on_decision(self, event: dict[str, Any]) -> None:
        """Track ai_halted / ai_resumed from `decisions.log.v1`."""
        if event.get("account") != self.config.account:
            return
        action = event.get("action")
        if action in ("ai_halted", "ai_resumed"):
            self.ledger.set_fact(HALTED_FACT, "1" if action == "ai_halted" else "0")
            log.warning("account %s %s", self.config.account, action,
                        extra={"decision_id": event.get("decision_id")})

    # --- reconciliation ----------------------------------------------------------------------
    def reconcile(self) -> Reconciliation:
        """Compare the ledger with the broker; until this passes the account is reduce-only."""
        self.broker.connect()
        report = Reconciliation()
        for entry in self.ledger.in_state(SENDING):
            found = self.broker.find(entry.comment, self.config.magic)
            if found is not None:
                self._finish(entry, SENT, self._result(entry.request, found, recovered=True))
                report.recovered.append(entry.request_id)
        positions = self.broker.positions()
        report.positions = len(positions)
        self._classify(positions, report)
        self.reconciled = True
        log.info("reconciled with %s: %s", self.config.broker,
                 report.differences() or "no differences")
        return report

    def _classify(self, positions: list[PositionInfo], report: Reconciliation) -> None:
        known = self.ledger.comments()
        for pos in positions:
            if pos.magic != self.config.magic:
                report.foreign_positions.append(pos.ticket)
            elif pos.comment not in known:
                report.unknown_positions.append(pos.ticket)

    # --- requests ----------------------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The `OrderResult` of a request; raises `RetryLater` when the broker cannot answer."""
        rid = request["request_id"]
        entry = self.ledger.get(rid)
        if entry is not None and entry.terminal and entry.result is not None:
            log.info("request %s already %s: republishing its result", rid, entry.state,
                     extra={"request_id": rid, "idea_id": request["idea_id"]})
            return entry.result
        entry = entry or self.ledger.receive(request, self.clock())
        found = self._lookup(entry)
        if found is not None:
            return self._finish(entry, SENT, self._result(request, found, recovered=True))
        refusal = self._refusal(request)
        if refusal is not None:
            return self._finish(entry, FAILED, refusal)
        return self._send(entry, request)

    def _lookup(self, entry: Entry) -> Execution | None:
        try:
            return self.broker.find(entry.comment, self.config.magic)
        except BrokerUnavailable as exc:
            raise RetryLater(f"cannot look up {entry.request_id} at the broker: {exc}") from exc

    def _refusal(self, request: dict[str, Any]) -> dict[str, Any] | None:
        now = self.clock()
        if request["account"] != self.config.account:
            return self._failure(request, "rejected", "wrong_account",
                                 f"request for account {request['account']} reached "
                                 f"{self.config.account}")
        if now >= request["expires_at"]:
            return self._failure(request, "expired", "expired",
                                 f"expired at {request['expires_at'].isoformat()}, "
                                 f"now {now.isoformat()}")
        if self.halted:
            return self._failure(request, "rejected", "halted", "AI trading is halted for "
                                                                "this account")
        if not self.reconciled:
            return self._failure(request, "rejected", "reduce_only",
                                 "not yet reconciled with the broker: reduce-only")
        return None

    def _ticket(self, entry: Entry, request: dict[str, Any]) -> OrderTicket:
        return OrderTicket(
            request_id=entry.request_id, comment=entry.comment, symbol=request["symbol"],
            direction=request["direction"], order_type=request.get("order_type", "market"),
            volume=request["lot_size"], stop_loss=request["stop_loss"],
            take_profit=tuple(request.get("take_profit") or ()), price=request.get("price"),
            magic=self.config.magic,
        )

    def _send(self, entry: Entry, request: dict[str, Any]) -> dict[str, Any]:
        ticket = self._ticket(entry, request)
        last: BrokerError | None = None
        for attempt in range(1, self.config.max_attempts + 1):
            if attempt > 1:
                found = self._retry_gate(entry)
                if found is not None:
                    return self._finish(entry, SENT, self._result(request, found, True))
                refusal = self._refusal(request)
                if refusal is not None:
                    return self._finish(entry, FAILED, refusal)
            outcome = self._attempt(entry, ticket)
            if isinstance(outcome, Execution):
                self.hook("after_send", entry.request_id)
                return self._finish(entry, SENT, self._result(request, outcome))
            last = outcome
            if not outcome.retryable:
                break
        assert last is not None  # noqa: S101 - the loop ran at least once
        return self._finish(entry, FAILED, self._failure(
            request, last.status, last.error_code, str(last), last.retcode))

    def _retry_gate(self, entry: Entry) -> Execution | None:
        """Before any retry: wait a little, then look the order up."""
        self.sleep(self.backoff.next_delay())
        return self._lookup(entry)

    def _attempt(self, entry: Entry, ticket: OrderTicket) -> Execution | BrokerError:
        """One send. An unknown outcome resolved by lookup counts as the execution."""
        self.ledger.mark(entry.request_id, SENDING, self.clock())
        self.hook("before_send", entry.request_id)
        try:
            return self.broker.place(ticket)
        except OutcomeUnknown as exc:
            log.warning("no answer to order %s, looking it up: %s", entry.request_id, exc,
                        extra={"request_id": entry.request_id})
            found = self._lookup(entry)
            if found is not None:
                return replace(found, message=f"recovered after no answer: {found.message}")
            return BrokerError("no_answer", f"no answer from the broker and no order found: "
                                            f"{exc}", status="failed", retryable=True)
        except BrokerUnavailable as exc:
            raise RetryLater(f"broker unavailable before sending {entry.request_id}: {exc}") \
                from exc
        except BrokerError as exc:
            log.warning("broker refused %s: %s (%s)", entry.request_id, exc, exc.error_code,
                        extra={"request_id": entry.request_id, "retcode": exc.retcode})
            return exc

    def _finish(self, entry: Entry, state: str, result: dict[str, Any]) -> dict[str, Any]:
        self.ledger.mark(entry.request_id, state, self.clock(), result)
        log.info("request %s %s", entry.request_id, result["status"],
                 extra={"request_id": entry.request_id, "idea_id": result["idea_id"],
                        "order_id": result.get("broker_order_id"),
                        "error_code": result.get("error_code")})
        self.hook("after_ledger", entry.request_id)
        return result

    # --- results -----------------------------------------------------------------------------
    def _base(self, request: dict[str, Any], status: str) -> dict[str, Any]:
        return {
            "request_id": request["request_id"], "idea_id": request["idea_id"],
            "account": request["account"], "status": status, "broker": self.config.broker,
            "broker_order_id": None, "broker_deal_id": None, "position_ticket": None,
            "filled_price": None, "filled_volume": None, "retcode": None, "error_code": None,
            "message": "", "executed_at": self.clock(),
        }

    def _result(self, request: dict[str, Any], ex: Execution,
                recovered: bool = False) -> dict[str, Any]:
        rec = self._base(request, ex.status)
        volume = ex.volume if ex.status == "filled" else None
        rec.update(broker_order_id=ex.order_id, broker_deal_id=ex.deal_id,
                   position_ticket=ex.position_ticket, filled_price=ex.price,
                   filled_volume=Decimal(volume).quantize(Decimal("0.01")) if volume else None,
                   retcode=ex.retcode,
                   message=("recovered: " if recovered else "") + (ex.message or ex.status))
        return rec

    def _failure(self, request: dict[str, Any], status: str, error_code: str, message: str,
                 retcode: int | None = None) -> dict[str, Any]:
        rec = self._base(request, status)
        rec.update(error_code=error_code, message=message[:1000], retcode=retcode)
        return rec


def expires_in(request: dict[str, Any], now: datetime) -> timedelta:
    """Time left before a request expires (negative when expired)."""
    expires: datetime = request["expires_at"]
    return expires - now
