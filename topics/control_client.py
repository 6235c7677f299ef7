"""Publish signed control commands and wait for their replies (used by the API and the CLI).

A `ControlClient` owns one producer and one background consumer per process. The
consumer is *assigned* (no group rebalance) to every partition of
`control.replies.v1` and `orders.results.v1` at their current end offsets when the
client starts, so a reply to a command published afterwards is never missed; waiters
register a future by command id (and, for an approval, by idea id for the order result)
**before** the command is published.

Replies may be delivered twice (a gate restart re-processes a command): the first one
settles the future, later ones are ignored. A timeout does not mean the command was
not applied: the gate may still process it, and its reply says so later.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from topics.bus import BusError, consumer_config, producer_config
from topics.catalog import Catalog, encode_key
from topics.codec import CodecError
from topics.commands import GATE_KINDS, command_key, new_command
from topics.settings import Settings

log = logging.getLogger(__name__)

REPLIES: Final = "control.replies.v1"
RESULTS: Final = "orders.results.v1"
INBOX: Final = "gate.inbox.v1"
BROKER_COMMANDS: Final = "broker.commands.v1"

#: Order result statuses that end an approval, and what they mean to the issuer.
EXECUTED_STATUSES: Final = frozenset({"filled", "placed"})
BLOCKED_STATUSES: Final = frozenset({"rejected", "failed", "expired"})


class CommandTimeout(TimeoutError):
    """No answer within the timeout; the command may still be applied later."""

    def __init__(self, command_id: str, kind: str, stage: str, timeout: float,
                 reply: Reply | None = None) -> None:
        what = "reply from the gate" if stage == "reply" else "order result from the broker"
        super().__init__(f"{kind} {command_id}: no {what} within {timeout:g} s "
                         "(the command may still be applied)")
        self.command_id = command_id
        self.kind = kind
        self.stage = stage
        self.reply = reply


@dataclass(frozen=True)
class Reply:
    """A gate's CommandReply, with `reason` split into its code and message."""

    command_id: str
    kind: str
    status: str
    reason: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """True when the gate applied the command."""
        return self.status == "accepted"

    @property
    def code(self) -> str | None:
        """The refusal code (`risk_violation`, `unknown_idea`, ...), None when accepted."""
        if self.reason is None:
            return None if self.accepted else "refused"
        return self.reason.split(":", 1)[0].strip()

    @property
    def message(self) -> str:
        """The human part of the refusal reason."""
        if self.reason is None:
            return ""
        code, sep, rest = self.reason.partition(":")
        return rest.strip() if sep else code.strip()

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Reply:
        """From a decoded CommandReply record."""
        result: dict[str, Any] = {}
        if record.get("result_json"):
            try:
                parsed = json.loads(record["result_json"])
                result = parsed if isinstance(parsed, dict) else {"value": parsed}
            except ValueError:
                result = {"raw": record["result_json"]}
        return cls(command_id=str(record["command_id"]), kind=str(record["kind"]),
                   status=str(record["status"]), reason=record.get("reason"), result=result)


@dataclass(frozen=True)
class ApprovalOutcome:
    """The end of an approval: `executed` with the broker's order id, or `blocked` with why."""

    status: str  # executed | blocked
    reply: Reply
    mt5_order_id: int | None = None
    reason: str | None = None
    order: dict[str, Any] | None = None


@dataclass
class Pending:
    """Futures of one published command: its reply and, for an approval, its order result."""

    command: dict[str, Any]
    reply: cf.Future[Reply]
    order: cf.Future[dict[str, Any]] | None = None

    @property
    def command_id(self) -> str:
        """Id of the command."""
        return str(self.command["command_id"])


def approval_outcome(reply: Reply, order: Mapping[str, Any]) -> ApprovalOutcome:
    """Map an accepted approval's OrderResult to executed / blocked."""
    status = str(order.get("status"))
    if status in EXECUTED_STATUSES:
        return ApprovalOutcome("executed", reply, mt5_order_id=order.get("broker_order_id"),
                               order=dict(order))
    code = order.get("error_code") or status
    message = order.get("message") or status
    return ApprovalOutcome("blocked", reply, reason=f"{code}: {message}", order=dict(order))


def _high_watermark(consumer: Consumer, tp: TopicPartition, timeout: float) -> int:
    """The partition's end offset; retried while leadership settles (a new topic)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            return int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BusError(f"no end offset for {tp.topic}[{tp.partition}]: {exc}") from exc
            time.sleep(0.2)


class ControlClient:
    """Signed commands out, replies in. Start once per process; thread-safe; async-friendly."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None,
                 key: bytes | None = None, poll_interval: float = 0.05) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog(settings.topic_prefix)
        self._key = key if key is not None else command_key(settings)
        self._poll = poll_interval
        self._lock = threading.Lock()
        self._replies: dict[str, cf.Future[Reply]] = {}
        self._orders: dict[str, cf.Future[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self.started = False

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> ControlClient:
        """Assign the reply topics at their end offsets and start the listener thread."""
        if self.started:
            return self
        self._producer = Producer(producer_config(self.settings))
        consumer = Consumer(consumer_config(
            self.settings, f"control-client-{uuid.uuid4().hex}",
            **{"auto.offset.reset": "latest", "fetch.wait.max.ms": 10}))
        try:
            consumer.assign(self._end_offsets(consumer, timeout))
        except Exception:
            consumer.close()
            raise
        self._consumer = consumer
        self._thread = threading.Thread(target=self._run, name="control-replies", daemon=True)
        self._thread.start()
        self.started = True
        return self

    def _end_offsets(self, consumer: Consumer, timeout: float) -> list[TopicPartition]:
        """Every partition of the reply topics at its high watermark, resolved now."""
        out: list[TopicPartition] = []
        for logical in (REPLIES, RESULTS):
            name = self.catalog.name(logical)
            meta = consumer.list_topics(name, timeout=timeout).topics.get(name)
            if meta is None or meta.error is not None or not meta.partitions:
                raise BusError(f"topic {name} is not available: "
                               f"{meta.error if meta is not None else 'missing'}")
            for partition in meta.partitions:
                high = _high_watermark(consumer, TopicPartition(name, partition), timeout)
                out.append(TopicPartition(name, partition, high))
        return out

    def close(self) -> None:
        """Stop the listener; pending waits fail with `CommandTimeout` when they time out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        self.started = False

    def __enter__(self) -> ControlClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- listener ------------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._consumer is not None  # noqa: S101 - set by start()
        while not self._stop.is_set():
            try:
                messages = self._consumer.consume(200, self._poll)
            except Exception:  # noqa: BLE001 - the listener must survive a bad poll
                log.exception("control reply listener: poll failed")
                self._stop.wait(0.5)
                continue
            for msg in messages:
                self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("control reply listener: %s", err.str())
            return
        logical = self.catalog.logical(msg.topic() or "")
        try:
            record = self.catalog.codec(logical).decode(msg.value())
        except CodecError as exc:
            # not ours to dead-letter: the sinks consume these topics and do it
            log.warning("undecodable record on %s[%s]@%s: %s",
                        msg.topic(), msg.partition(), msg.offset(), exc)
            return
        if logical == REPLIES:
            self._settle_reply(record)
        else:
            self._settle_order(record)

    def _settle_reply(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            fut = self._replies.pop(str(record.get("command_id")), None)
        if fut is not None and not fut.done():
            fut.set_result(Reply.from_record(record))

    def _settle_order(self, record: Mapping[str, Any]) -> None:
        status = record.get("status")
        if status not in EXECUTED_STATUSES | BLOCKED_STATUSES:
            return  # e.g. `duplicate`: the first result of that request is the one that counts
        with self._lock:
            fut = self._orders.pop(str(record.get("request_id")), None)
        if fut is not None and not fut.done():
            fut.set_result(dict(record))

    # --- commands ------------------------------------------------------------------------------
    def command(self, kind: str, issuer: str, account: str | None = None,
                **fields: Any) -> dict[str, Any]:
        """A signed ControlCommand record (see `topics.commands.new_command`)."""
        lot = fields.get("lot_size")
        if lot is not None and not isinstance(lot, Decimal):
            fields["lot_size"] = Decimal(str(lot))
        return new_command(kind, account or self.settings.account, issuer, self._key, **fields)

    def submit(self, command: dict[str, Any], timeout: float = 10.0) -> Pending:
        """Register the futures, publish the command and wait for the broker's ack (blocking)."""
        if not self.started or self._producer is None:
            raise RuntimeError("ControlClient.start() first")
        command_id = str(command["command_id"])
        pending = Pending(command=command, reply=cf.Future())
        with self._lock:
            self._replies[command_id] = pending.reply
            if command["kind"] == "approve_idea" and command.get("idea_id"):
                pending.order = cf.Future()
                self._orders[str(command["idea_id"])] = pending.order
        try:
            self._publish(command, timeout)
        except Exception:
            self.forget(pending)
            raise
        log.info("published %s", command["kind"],
                 extra={"command_id": command_id, "idea_id": command.get("idea_id"),
                        "strategy_id": command.get("strategy_id"), "issuer": command["issuer"]})
        return pending

    def _publish(self, command: dict[str, Any], timeout: float) -> None:
        assert self._producer is not None  # noqa: S101 - checked by submit()
        if command["kind"] in GATE_KINDS:
            logical = INBOX
            record: dict[str, Any] = {"account": command["account"], "idea": None,
                                      "bundle": None, "command": command}
        else:
            logical, record = BROKER_COMMANDS, command
        value = self.catalog.codec(logical).encode(record)
        delivered: cf.Future[None] = cf.Future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                delivered.set_result(None)
            else:
                delivered.set_exception(BusError(f"command not delivered: {err.str()}"))

        self._producer.produce(self.catalog.name(logical), value=value,
                               key=encode_key(command["account"]), on_delivery=on_delivery)
        self._producer.flush(timeout)
        if not delivered.done():
            raise BusError(f"command not acknowledged by the bus within {timeout:g} s")
        delivered.result()

    def forget(self, pending: Pending) -> None:
        """Drop a pending command's futures (after a timeout)."""
        with self._lock:
            if self._replies.get(pending.command_id) is pending.reply:
                del self._replies[pending.command_id]
            idea_id = str(pending.command.get("idea_id"))
            if pending.order is not None and self._orders.get(idea_id) is pending.order:
                del self._orders[idea_id]

    # --- sync waiting (CLI) ----------------------------------------------------------------------
    def wait_reply(self, pending: Pending, timeout: float) -> Reply:
        """Block until the reply arrives or raise `CommandTimeout`."""
        try:
            return pending.reply.result(timeout)
        except cf.TimeoutError:
            self.forget(pending)
            raise CommandTimeout(pending.command_id, pending.command["kind"], "reply",
                                 timeout) from None

    def wait_order(self, pending: Pending, reply: Reply, timeout: float) -> ApprovalOutcome:
        """Block until the approved order's result arrives or raise `CommandTimeout`."""
        assert pending.order is not None  # noqa: S101 - only approvals are waited on
        try:
            return approval_outcome(reply, pending.order.result(timeout))
        except cf.TimeoutError:
            self.forget(pending)
            raise CommandTimeout(pending.command_id, "approve_idea", "order_result", timeout,
                                 reply) from None

    def request(self, kind: str, issuer: str, timeout: float = 10.0, **fields: Any) -> Reply:
        """Publish a command and wait for the gate's reply."""
        pending = self.submit(self.command(kind, issuer, **fields), timeout)
        reply = self.wait_reply(pending, timeout)
        if pending.order is not None:
            self.forget(pending)
        return reply

    def approve(self, idea_id: str, issuer: str, lot_size: Decimal | None = None,
                timeout: float = 10.0, order_timeout: float = 30.0) -> ApprovalOutcome:
        """Approve an idea; wait for the gate's reply and then the broker's result."""
        pending = self.submit(self.command("approve_idea", issuer, idea_id=idea_id,
                                           lot_size=lot_size), timeout)
        reply = self.wait_reply(pending, timeout)
        if not reply.accepted:
            self.forget(pending)
            return ApprovalOutcome("blocked", reply, reason=reply.reason)
        return self.wait_order(pending, reply, order_timeout)

    def notify(self, kind: str, issuer: str, timeout: float = 10.0, **fields: Any) -> str:
        """Publish a command nobody replies to (`refresh_account`); returns its id."""
        command = self.command(kind, issuer, **fields)
        self._publish(command, timeout)
        return str(command["command_id"])

    # --- async waiting (API) -----------------------------------------------------------------
    async def asubmit(self, command: dict[str, Any], seconds: float = 10.0) -> Pending:
        """`submit` off the event loop (publishing blocks until the bus acknowledges)."""
        return await asyncio.to_thread(self.submit, command, seconds)

    async def await_reply(self, pending: Pending, seconds: float) -> Reply:
        """Wait for the reply without blocking the event loop."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(pending.reply), seconds)
        except TimeoutError:
            self.forget(pending)
            raise CommandTimeout(pending.command_id, pending.command["kind"], "reply",
                                 seconds) from None

    async def await_order(self, pending: Pending, reply: Reply,
                          seconds: float) -> ApprovalOutcome:
        """Wait for the approved order's result without blocking the event loop."""
        assert pending.order is not None  # noqa: S101 - only approvals are waited on
        try:
            order = await asyncio.wait_for(asyncio.wrap_future(pending.order), seconds)
        except TimeoutError:
            self.forget(pending)
            raise CommandTimeout(pending.command_id, "approve_idea", "order_result", seconds,
                                 reply) from None
        return approval_outcome(reply, order)

    async def arequest(self, kind: str, issuer: str, seconds: float = 10.0,
                       **fields: Any) -> Reply:
        """Async `request`."""
        pending = await self.asubmit(self.command(kind, issuer, **fields), seconds)
        reply = await self.await_reply(pending, seconds)
        if pending.order is not None:
            self.forget(pending)
        return reply

    async def aapprove(self, idea_id: str, issuer: str, lot_size: Decimal | None = None,
                       seconds: float = 10.0, order_seconds: float = 30.0) -> ApprovalOutcome:
        """Async `approve`."""
        pending = await self.asubmit(self.command("approve_idea", issuer, idea_id=idea_id,
                                                  lot_size=lot_size), seconds)
        reply = await self.await_reply(pending, seconds)
        if not reply.accepted:
            self.forget(pending)
            return ApprovalOutcome("blocked", reply, reason=reply.reason)
        return await self.await_order(pending, reply, order_seconds)

    async def anotify(self, kind: str, issuer: str, seconds: float = 10.0, **fields: Any) -> str:
        """Async `notify`."""
        return await asyncio.to_thread(self.notify, kind, issuer, seconds, **fields)
