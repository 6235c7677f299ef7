"""A TEST DOUBLE OF THE GATE: a small consumer on the real bus that answers control commands.

The real gate (the lead's Faust worker in `streams/`) is built in parallel; until the
end-to-end tests run it, the API's integration tests need something that reads
`gate.inbox.v1` and answers per the contracts: one CommandReply per command on
`control.replies.v1` (sent twice here, so the client's dedupe is exercised), and for an
accepted approval an OrderResult on `orders.results.v1` with request_id == idea_id.
It checks signatures and freshness like the gate (`topics.commands.verify`).

Behaviour is scripted per idea id (`ideas`): `fill`, `broker_reject`, `risk`,
`kill` (refused: kill switch) or `silent` (never answers); unknown ideas are refused
`unknown_idea`. Every command it received is kept in `commands`.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from streams.core.model import RiskConfig
from topics.bus import BusConsumer, BusProducer
from topics.catalog import Catalog
from topics.commands import CommandRefused, command_key, verify
from topics.settings import Settings

MT5_ORDER_ID = 123456789


class GateDouble:
    """Answers gate.inbox commands on the real bus, in a thread."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.key = command_key(settings)
        self.ideas: dict[str, str] = {}
        self.strategies: set[str] = set()
        self.commands: list[dict[str, Any]] = []
        self.version = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gate-double", daemon=True)

    def start(self) -> GateDouble:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("gate double did not get its assignment")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        consumer = BusConsumer(self.settings, self.catalog, ["gate.inbox.v1"],
                               group_id=f"gate-double-{uuid.uuid4().hex}",
                               **{"auto.offset.reset": "earliest"})  # fresh topics
        producer = BusProducer(self.settings, self.catalog)
        try:
            while not consumer.assignment():
                consumer.poll(10, 0.1)
            self._ready.set()
            while not self._stop.is_set():
                for msg in consumer.poll(100, 0.05):
                    command = msg.value.get("command")
                    if command is not None:
                        self.commands.append(command)
                        self._answer(producer, command)
                producer.flush(10)
        finally:
            consumer.close()

    # --- behaviour ----------------------------------------------------------------------------
    def _answer(self, producer: BusProducer, command: dict[str, Any]) -> None:
        try:
            verify(command, self.key, datetime.now(UTC))
            status, reason, result, order = self._decide(command)
        except CommandRefused as exc:
            status, reason, result, order = "refused", str(exc), None, None
        if status == "silent":
            return
        reply = {"command_id": command["command_id"], "account": command["account"],
                 "kind": command["kind"], "status": status, "reason": reason,
                 "result_json": json.dumps(result) if result is not None else None,
                 "replied_at": datetime.now(UTC)}
        for _ in range(2):  # duplicates happen on redelivery: the client must dedupe
            producer.send("control.replies.v1", command["account"], reply)
        if order is not None:
            producer.send("orders.results.v1", command["account"], order)

    def _decide(self, command: dict[str, Any]) -> tuple[str, str | None, Any, Any]:
        kind = command["kind"]
        decision_id = f"d-{command['command_id'][:8]}"
        if kind in ("approve_idea", "reject_idea"):
            return self._idea(command, decision_id)
        if kind == "kill_switch":
            kill = {"active": True, "by": command["issuer"], "reason": command["reason"],
                    "at": datetime.now(UTC).isoformat()}
            return "accepted", None, {"decision_id": decision_id, "ai_trading_enabled": False,
                                      "kill_switch": kill}, None
        if kind == "resume":
            return "accepted", None, {"decision_id": decision_id, "ai_trading_enabled": True,
                                      "kill_switch": {"active": False}}, None
        if kind == "set_risk_config":
            payload = json.loads(command["payload_json"])
            extra = set(payload) - set(RiskConfig.from_dict(payload).to_dict())
            if extra:
                return "refused", f"invalid_payload: unknown fields {sorted(extra)}", None, None
            self.version += 1
            return "accepted", None, {"config_hash": f"h{self.version}",
                                      "version": self.version}, None
        if kind == "put_strategy":
            payload = json.loads(command["payload_json"])
            sid = command["strategy_id"]
            if "definition" not in payload and sid not in self.strategies:
                return "refused", f"unknown_strategy: no strategy {sid}", None, None
            self.strategies.add(sid)
            return "accepted", None, {"strategy_id": sid, "version": 2,
                                      "definition_hash": "abc",
                                      "is_active": payload.get("is_active", True)}, None
        return "refused", f"unknown_kind: {kind}", None, None

    def _idea(self, command: dict[str, Any], decision_id: str) -> tuple[str, str | None, Any, Any]:
        idea_id = command["idea_id"]
        behaviour = self.ideas.get(idea_id)
        if behaviour is None:
            return "refused", f"unknown_idea: no idea {idea_id}", None, None
        if behaviour == "silent":
            return "silent", None, None, None
        if command["kind"] == "reject_idea":
            return "accepted", None, {"decision_id": decision_id, "idea_id": idea_id}, None
        if behaviour == "risk":
            return ("refused", "risk_violation: max_concurrent_trades_exceeded (2 of 2 open)",
                    None, None)
        if behaviour == "kill":
            return "refused", "kill_switch: the kill switch is on", None, None
        lot = command["lot_size"] or "0.10"
        result = {"decision_id": decision_id, "idea_id": idea_id, "order_request_id": idea_id,
                  "lot_size": str(lot)}
        return "accepted", None, result, self._order(command, behaviour)

    def _order(self, command: dict[str, Any], behaviour: str) -> dict[str, Any]:
        filled = behaviour == "fill"
        return {
            "request_id": command["idea_id"], "idea_id": command["idea_id"],
            "account": command["account"], "status": "filled" if filled else "rejected",
            "broker": "paper", "broker_order_id": MT5_ORDER_ID if filled else None,
            "broker_deal_id": None, "position_ticket": None,
            "filled_price": 2385.3 if filled else None, "filled_volume": None,
            "retcode": None if filled else 10019,
            "error_code": None if filled else "no_money",
            "message": "filled" if filled else "not enough money",
            "executed_at": datetime.now(UTC),
        }
