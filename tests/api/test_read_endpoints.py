"""Read endpoints on rows inserted into the real database: ideas, history, snapshot,
account, analysis, data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from starlette.testclient import TestClient

from tests.api import rows
from tests.api.conftest import Api


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return dict(response.json()["error"])


def test_active_ideas_shape_and_status_filter(api: Api, authed: TestClient) -> None:
    acct = api.settings.account
    with api.conn() as conn:
        waiting = rows.idea(conn, acct, status="needs_approval", targets=(2398.0, 2402.0))
        done = rows.idea(conn, acct, status="auto_executed")
    ideas = {i["id"]: i for i in authed.get("/v1/ai/ideas/active").json()}
    assert waiting in ideas
    assert done not in ideas
    idea = ideas[waiting]
    for key in ("symbol", "direction", "entry_price", "stop_loss", "take_profit",
                "expected_hold", "rationale", "confidence_score", "status"):
        assert key in idea
    assert idea["take_profit"] == [2398.0, 2402.0]
    assert idea["confidence_score"] == 91.3
    executed = authed.get("/v1/ai/ideas/active", params={"status": "auto_executed"}).json()
    assert [i["id"] for i in executed if i["id"] in (waiting, done)] == [done]
    _error(authed.get("/v1/ai/ideas/active", params={"status": "bogus"}), 400, "INVALID_INPUT")


def test_history_filters_and_cursor_pagination(api: Api, authed: TestClient) -> None:
    acct = api.settings.account
    base = datetime(2031, 1, 1, tzinfo=UTC)  # a range no other test writes into
    with api.conn() as conn:
        ids = [rows.decision(conn, acct, occurred_at=base + timedelta(minutes=i),
                             symbol="XAUUSD" if i % 2 else "EURUSD",
                             action="ai_proposed" if i % 3 else "human_rejected")
               for i in range(12)]
        # two decisions at the same instant: the cursor must not lose either
        twins = [rows.decision(conn, acct, occurred_at=base + timedelta(minutes=20),
                               symbol="XAUUSD") for _ in range(2)]
    window = {"since": base.isoformat(), "until": (base + timedelta(hours=1)).isoformat()}
    seen: list[str] = []
    params: dict[str, Any] = {**window, "limit": 5}
    while True:
        r = authed.get("/v1/ai/history", params=params)
        assert r.status_code == 200
        seen += [d["id"] for d in r.json()]
        if "x-next-cursor" not in r.headers:
            break
        params["cursor"] = r.headers["x-next-cursor"]
    assert len(seen) == len(set(seen)) == 14
    assert set(seen) == set(ids) | set(twins)
    assert seen[2:] == list(reversed(ids))  # newest first

    xau = authed.get("/v1/ai/history", params={**window, "symbol": "XAUUSD"}).json()
    assert {d["symbol"] for d in xau} == {"XAUUSD"}
    assert len(xau) == 8
    both = authed.get("/v1/ai/history", params={**window, "symbol": "EURUSD",
                                                "action": "human_rejected"}).json()
    assert len(both) == 2
    assert {d["action"] for d in both} == {"human_rejected"}
    first = both[0]
    for key in ("id", "occurred_at", "symbol", "action", "rationale", "confidence_score",
                "risk_check_result", "strategy_id", "trade_idea_id", "snapshot_ref",
                "human_override"):
        assert key in first

    for bad in ({"limit": 1001}, {"limit": 0}, {"cursor": "not-a-cursor"},
                {"since": "2031-01-01T00:00:00"}, {"action": "ai_dreamed"},
                {"symbol": "X AU"}):
        _error(authed.get("/v1/ai/history", params=bad), 400, "INVALID_INPUT")


def test_snapshot_has_the_shape_of_6_5(api: Api, authed: TestClient) -> None:
    acct = api.settings.account
    snap = f"snap-{uuid.uuid4().hex[:8]}"
    with api.conn() as conn:
        rows.bundle(conn, acct, snap)
        with_snap = rows.decision(conn, acct, occurred_at=rows.T0, snapshot_ref=snap)
        halted = rows.decision(conn, acct, occurred_at=rows.T0, symbol=None, action="ai_halted",
                               snapshot_ref=None)
        missing = rows.decision(conn, acct, occurred_at=rows.T0, snapshot_ref="nowhere")
    body = authed.get(f"/v1/ai/history/{with_snap}/snapshot").json()
    assert body["market"]["symbol"] == "XAUUSD"
    assert body["market"]["timeframe"] == "M15"
    assert body["market"]["price"] == {"open": 2383.1, "high": 2386.0, "low": 2382.9,
                                       "close": 2385.2}
    assert body["market"]["indicators"]["rsi_14"] == 38.2
    assert body["market"]["indicators"]["atr"] == 2.3
    assert body["calendar"] == [{"event_time": "2025-10-27T11:00:00Z", "currency": "USD",
                                 "impact_level": "high", "title": "FOMC Rate Decision",
                                 "minutes_until_release": 45}]
    assert body["account"] == {"balance": 12000.0, "equity": 12250.0, "margin_free": 8000.0,
                               "open_positions": 1}
    assert body["strategy"]["name"] == "Gold Pullback Buy"
    assert body["rationale"] == "Strategy matched"
    _error(authed.get(f"/v1/ai/history/{halted}/snapshot"), 404, "SNAPSHOT_NOT_FOUND")
    _error(authed.get(f"/v1/ai/history/{missing}/snapshot"), 404, "SNAPSHOT_NOT_FOUND")
    _error(authed.get(f"/v1/ai/history/{uuid.uuid4()}/snapshot"), 404, "NOT_FOUND")


def test_account_summary_history_and_analysis(api: Api, authed: TestClient) -> None:
    acct = api.settings.account
    _error(authed.get("/v1/account"), 404, "NOT_FOUND")
    now = datetime.now(UTC).replace(microsecond=0)
    day = now.replace(hour=0, minute=0, second=0)
    win_idea, loss_idea = str(uuid.uuid4()), str(uuid.uuid4())
    with api.conn() as conn:
        rows.idea(conn, acct, idea_id=win_idea, entry=100.0, stop=99.0, targets=(102.0,))
        rows.idea(conn, acct, idea_id=loss_idea, entry=100.0, stop=98.0, targets=(103.0,))
        rows.risk_config(conn, acct)
        rows.account_snapshot(conn, acct, day - timedelta(hours=1), "10000.00", [])
        rows.account_snapshot(conn, acct, day + timedelta(seconds=1), "10000.00",
                              [rows.position(1, "150.00", win_idea),
                               rows.position(2, "-40.00", loss_idea)])
        rows.account_snapshot(conn, acct, day + timedelta(seconds=2), "10110.00",
                              [rows.position(3, "5.00")])
    summary = authed.get("/v1/account").json()
    assert summary["balance"] == 10110.0
    assert summary["open_positions"] == 1
    assert summary["positions"][0]["ticket"] == 3
    assert summary["daily_pl"] == 75.0
    assert summary["daily_profit_target"] == 2000.0

    history = authed.get("/v1/account/history").json()
    assert [p["balance"] for p in history["equity"]][:3] == [10110.0, 10000.0, 10000.0]

    cards = authed.get("/v1/analysis", params={"range": "today"}).json()
    assert cards["total_pl"] == 110.0
    assert cards["trades"] == 2
    assert cards["wins"] == 1
    assert cards["losses"] == 1
    assert cards["win_rate"] == 0.5
    assert cards["avg_rr"] == 1.75  # planned 2:1 and 3:2
    assert cards["weekly_target"] == 10000.0
    _error(authed.get("/v1/analysis", params={"range": "custom"}), 400, "INVALID_INPUT")
    _error(authed.get("/v1/analysis", params={"range": "year"}), 400, "INVALID_INPUT")


def test_data_calendar_news_indicators(api: Api, authed: TestClient) -> None:
    now = datetime.now(UTC)
    with api.conn() as conn:
        for captured, actual in ((now - timedelta(hours=2), None), (now, "0.3%")):
            conn.execute(
                "INSERT INTO snapshot_calendar (event_id, event_time, currency, impact_level, "
                "title, actual_value, source, captured_at) VALUES ('cpi', %s, 'USD', 'high', "
                "'CPI m/m', %s, 'test', %s)", (now + timedelta(hours=1), actual, captured))
        conn.execute(
            "INSERT INTO snapshot_news (item_id, headline, source, symbols, published_at, "
            "captured_at) VALUES (%s, 'Gold jumps', 'wire', '{XAUUSD}', %s, %s)",
            (uuid.uuid4().hex, now, now))
        conn.execute(
            "INSERT INTO snapshot_indicators (symbol, timeframe, open_time, close, rsi_14, atr, "
            "macd, values, captured_at) VALUES ('XAUUSD', 'M1', %s, 2385.2, 38.2, 2.3, %s, "
            "'{}', %s)", (now, Jsonb({"macd": 1.0, "signal": 0.5, "hist": 0.5}), now))
    cal = authed.get("/v1/data/calendar", params={"currency": "usd"}).json()
    cpi = [e for e in cal if e["event_id"] == "cpi"]
    assert len(cpi) == 1
    assert cpi[0]["actual_value"] == "0.3%"
    news = authed.get("/v1/data/news", params={"symbol": "XAUUSD"}).json()
    assert any(n["headline"] == "Gold jumps" for n in news)
    ind = authed.get("/v1/data/indicators", params={"symbol": "XAUUSD"}).json()
    assert ind
    assert ind[0]["rsi_14"] == 38.2
    assert ind[0]["macd"]["signal"] == 0.5
    _error(authed.get("/v1/data/calendar", params={"impact": "huge"}), 400, "INVALID_INPUT")


def test_data_candles_oldest_first_with_their_indicators(api: Api, authed: TestClient) -> None:
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with api.conn() as conn:
        for i in range(5):
            at = t0 + timedelta(minutes=i)
            conn.execute(
                "INSERT INTO snapshot_market (symbol, timeframe, open_time, open, high, low, "
                "close, volume, spread, source) VALUES ('CANDLE1', 'M1', %s, %s, %s, %s, %s, "
                "10, 0.2, 'test')", (at, 100 + i, 101 + i, 99 + i, 100.5 + i))
        conn.execute(
            "INSERT INTO snapshot_indicators (symbol, timeframe, open_time, close, sma_50, "
            "values, captured_at) VALUES ('CANDLE1', 'M1', %s, 104.5, 101.25, '{}', %s)",
            (t0 + timedelta(minutes=4), t0))
    rows = authed.get("/v1/data/candles",
                      params={"symbol": "CANDLE1", "timeframe": "M1", "limit": 3}).json()
    assert [r["close"] for r in rows] == [102.5, 103.5, 104.5]  # the newest 3, oldest first
    assert [r["sma_50"] for r in rows] == [None, None, 101.25]
    _error(authed.get("/v1/data/candles", params={"symbol": "CANDLE1", "timeframe": "M2"}),
           400, "INVALID_INPUT")
    _error(authed.get("/v1/data/candles", params={"timeframe": "M1"}), 400, "INVALID_INPUT")
