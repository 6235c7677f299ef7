"""Approve / reject / kill / risk / strategies through the bus, answered by the gate double."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from streams.core.model import RiskConfig
from tests.api import rows
from tests.api.conftest import Api
from tests.api.gate_double import MT5_ORDER_ID, GateDouble

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    return dict(body["error"])


def _published(gate: GateDouble, before: int) -> list[dict[str, Any]]:
    return gate.commands[before:]


def test_approve_executed_answers_the_mt5_order_id(api: Api, authed: TestClient,
                                                   gate: GateDouble) -> None:
    idea_id = str(uuid.uuid4())
    gate.ideas[idea_id] = "fill"
    before = len(gate.commands)
    r = authed.post(f"/v1/ai/ideas/{idea_id}/approve", json={"lot_size": 0.5})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "executed", "mt5_order_id": MT5_ORDER_ID, "reason": None}
    (command,) = _published(gate, before)
    assert command["kind"] == "approve_idea"
    assert command["issuer"] == api.email
    assert str(command["lot_size"]) == "0.50"
    assert command["account"] == api.settings.account


def test_approve_blocked_by_the_broker_and_by_risk(authed: TestClient, gate: GateDouble) -> None:
    rejected, risky, killed = (str(uuid.uuid4()) for _ in range(3))
    gate.ideas.update({rejected: "broker_reject", risky: "risk", killed: "kill"})
    r = authed.post(f"/v1/ai/ideas/{rejected}/approve")
    assert r.json() == {"status": "blocked", "mt5_order_id": None,
                        "reason": "no_money: not enough money"}
    r = authed.post(f"/v1/ai/ideas/{risky}/approve", json={})
    assert r.status_code == 200
    assert r.json()["status"] == "blocked"
    assert r.json()["reason"].startswith("risk_violation: max_concurrent_trades_exceeded")
    assert authed.post(f"/v1/ai/ideas/{killed}/approve").json()["status"] == "blocked"


def test_approve_unknown_idea_is_404_and_silence_is_504(api: Api, authed: TestClient,
                                                        gate: GateDouble) -> None:
    _error(authed.post(f"/v1/ai/ideas/{uuid.uuid4()}/approve"), 404, "NOT_FOUND")
    silent = str(uuid.uuid4())
    gate.ideas[silent] = "silent"
    err = _error(authed.post(f"/v1/ai/ideas/{silent}/approve"), 504, "TIMEOUT")
    assert err["details"]["waiting_for"] == "reply"
    assert err["details"]["command_id"]


def test_invalid_approvals_publish_nothing(authed: TestClient, gate: GateDouble) -> None:
    before = len(gate.commands)
    for body in ({"lot_size": 0.123}, {"lot_size": -1}, {"lot_size": "0.5"},
                 {"lot_size": 0.5, "extra": 1}):
        err = _error(authed.post(f"/v1/ai/ideas/{uuid.uuid4()}/approve", json=body), 400,
                     "INVALID_INPUT")
        assert err["details"]["errors"]
    _error(authed.post("/v1/ai/ideas/bad id!/approve"), 400, "INVALID_INPUT")
    assert len(gate.commands) == before


def test_reject(authed: TestClient, gate: GateDouble) -> None:
    idea_id = str(uuid.uuid4())
    gate.ideas[idea_id] = "fill"
    r = authed.post(f"/v1/ai/ideas/{idea_id}/reject", json={"reason": "too close to NFP"})
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    assert r.json()["idea_id"] == idea_id
    assert gate.commands[-1]["reason"] == "too close to NFP"
    _error(authed.post(f"/v1/ai/ideas/{uuid.uuid4()}/reject"), 404, "NOT_FOUND")


def test_kill_and_resume(api: Api, authed: TestClient, gate: GateDouble) -> None:
    r = authed.post("/v1/control/kill", json={"reason": "news spike"})
    assert r.status_code == 200, r.text
    assert r.json()["kill_switch"]["active"] is True
    assert r.json()["kill_switch"]["by"] == api.email
    assert r.json()["ai_trading_enabled"] is False
    assert authed.post("/v1/control/resume").json()["kill_switch"]["active"] is False
    before = len(gate.commands)
    _error(authed.post("/v1/control/kill", json={}), 400, "INVALID_INPUT")
    _error(authed.post("/v1/control/kill", json={"reason": ""}), 400, "INVALID_INPUT")
    assert len(gate.commands) == before


def _risk_body(**overrides: Any) -> dict[str, Any]:
    body = {"ai_trading_enabled": False, "min_confidence_threshold": 92.5, "max_lot_size": 0.5,
            "max_concurrent_trades": 2, "daily_profit_target": 2000.0,
            "stop_after_target": True, "max_drawdown_amount": 800.0, "halt_on_drawdown": True,
            "allow_off_watchlist_autotrade": False}
    body.update(overrides)
    return body


def test_risk_get_and_put_become_a_full_validated_config(api: Api, authed: TestClient,
                                                         gate: GateDouble) -> None:
    with api.conn() as conn:
        rows.risk_config(conn, api.settings.account)
    got = authed.get("/v1/settings/risk").json()
    assert got["max_lot_size"] == 1.0
    assert got["ai_trading_enabled"] is True
    assert got["kill_switch"]["active"] is False
    assert got["version"] == 7
    assert got["watchlist"] == ["XAUUSD"]
    assert got["last_halt_reason"] is None

    before = len(gate.commands)
    r = authed.put("/v1/settings/risk", json=_risk_body())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    assert r.json()["version"] >= 1
    (command,) = _published(gate, before)
    payload = json.loads(command["payload_json"])
    assert set(payload) == set(RiskConfig.from_dict(payload).to_dict())
    assert payload["max_lot_size"] == "0.5"
    assert payload["min_confidence_threshold"] == "92.5"
    assert payload["watchlist"] == ["XAUUSD"]  # not in the body: kept from the current config
    assert payload["ai_trading_enabled"] is False


def test_risk_put_refuses_bad_values_before_publishing(authed: TestClient,
                                                       gate: GateDouble) -> None:
    before = len(gate.commands)
    bad = [
        _risk_body(min_confidence_threshold=101), _risk_body(min_confidence_threshold=-1),
        _risk_body(max_lot_size=0), _risk_body(max_drawdown_amount=-5),
        _risk_body(halt_on_drawdown="true"), _risk_body(stop_after_target=1),
        _risk_body(max_concurrent_trades=2.5), _risk_body(max_lot_size=0.005),
        _risk_body(surprise=True), _risk_body(last_halt_reason=None),
        _risk_body(trading_day_tz="Mars/Olympus"), _risk_body(trading_day_start="25:00"),
        {k: v for k, v in _risk_body().items() if k != "max_lot_size"},
    ]
    for body in bad:
        err = _error(authed.put("/v1/settings/risk", json=body), 400, "INVALID_INPUT")
        assert err["details"]["errors"][0]["loc"], body
    _error(authed.put("/v1/settings/risk", content=b"{not json",
                      headers={"content-type": "application/json"}), 400, "INVALID_INPUT")
    assert len(gate.commands) == before


def _definition(name: str = "gold_pullback_buy.json") -> dict[str, Any]:
    definition: dict[str, Any] = json.loads((STRATEGIES / name).read_text())
    definition["id"] = str(uuid.uuid4())
    return definition


def test_strategies_list_show_create_update_toggle(api: Api, authed: TestClient,
                                                   gate: GateDouble) -> None:
    stored = _definition()
    with api.conn() as conn:
        rows.strategy(conn, stored)
    listed = {s["id"]: s for s in authed.get("/v1/strategies").json()}
    assert listed[stored["id"]]["allowed_symbols"] == ["XAUUSD"]
    one = authed.get(f"/v1/strategies/{stored['id']}").json()
    assert one["entry_conditions"] == stored["entry_conditions"]
    _error(authed.get(f"/v1/strategies/{uuid.uuid4()}"), 404, "NOT_FOUND")

    fresh = _definition("eurusd_macd_trend_sell.json")
    r = authed.post("/v1/strategies", json=fresh)
    assert r.status_code == 201, r.text
    assert r.json()["strategy_id"] == fresh["id"]
    assert json.loads(gate.commands[-1]["payload_json"])["definition"]["id"] == fresh["id"]
    _error(authed.post("/v1/strategies", json=stored), 409, "CONFLICT")

    r = authed.put(f"/v1/strategies/{fresh['id']}", json={"is_active": False})
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    assert json.loads(gate.commands[-1]["payload_json"]) == {"is_active": False}
    r = authed.put(f"/v1/strategies/{fresh['id']}", json={**fresh, "name": "renamed"})
    assert r.status_code == 200


def test_strategy_errors_carry_their_json_path(authed: TestClient, gate: GateDouble) -> None:
    before = len(gate.commands)
    broken = _definition()
    broken["entry_conditions"]["rsi_below"] = 140
    err = _error(authed.post("/v1/strategies", json=broken), 400, "INVALID_INPUT")
    paths = [e["path"] for e in err["details"]["errors"]]
    assert "$.entry_conditions.rsi_below" in paths
    extra = {**_definition(), "colour": "red"}
    assert _error(authed.post("/v1/strategies", json=extra), 400, "INVALID_INPUT")
    mismatch = _definition()
    err = _error(authed.put(f"/v1/strategies/{uuid.uuid4()}", json=mismatch), 400,
                 "INVALID_INPUT")
    assert err["details"]["errors"][0]["path"] == "$.id"
    _error(authed.put(f"/v1/strategies/{uuid.uuid4()}", json={"is_active": "no"}), 400,
           "INVALID_INPUT")
    _error(authed.post("/v1/strategies", content=b'{"x": NaN}',
                       headers={"content-type": "application/json"}), 400, "INVALID_INPUT")
    assert len(gate.commands) == before
    # enabling a strategy the gate does not know: its refusal becomes a 404
    _error(authed.put(f"/v1/strategies/{uuid.uuid4()}", json={"is_active": True}), 404,
           "NOT_FOUND")
