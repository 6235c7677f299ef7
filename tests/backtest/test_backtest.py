"""`ai-trader backtest`: the live core and the paper broker over files, no bus, no database."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from api.cli import main
from streams.backtest.engine import BacktestConfig, Simulation, Step
from streams.backtest.inputs import InputError, load_candles, load_risk, load_strategies
from streams.backtest.run import RunOptions, run_backtest
from streams.defaults import parse_risk_config
from tests import factories
from tests.backtest.data import (
    ANY_BAR,
    GOLD_M1,
    REPO,
    RISK_ON,
    minute,
    strategy,
    synthetic,
    write_calendar,
    write_candles,
    write_json,
)

FIXTURES = REPO / "tests" / "fixtures" / "connectors"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two days of synthetic gold, a strategy that fires now and then, a calendar, risk."""
    d = tmp_path_factory.mktemp("inputs")
    candles = synthetic(2 * 1440)
    return {
        "data": write_candles(d / "XAUUSD_M1.csv", candles),
        "strategy": write_json(d / "gold_m1.json", GOLD_M1),
        "risk": write_json(d / "risk.json", {**RISK_ON, "max_concurrent_trades": 1}),
        "calendar": write_calendar(d / "calendar.csv", [
            (minute(14 * 60 + 30), "USD", "High", "Non-Farm Employment Change"),
            (minute(20 * 60), "EUR", "Low", "Speech")]),
    }


def _options(inputs: dict[str, Path], out: Path, **kw: object) -> RunOptions:
    base = RunOptions(data=[inputs["data"]], strategies=[inputs["strategy"]], out=out,
                      calendar=[inputs["calendar"]], risk=inputs["risk"], progress=False)
    return replace(base, **kw)  # type: ignore[arg-type]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_same_inputs_give_byte_identical_files(inputs: dict[str, Path], tmp_path: Path) -> None:
    first = run_backtest(_options(inputs, tmp_path / "a"))
    second = run_backtest(_options(inputs, tmp_path / "b"))

    assert first.summary["results"]["trades"] > 3  # the run did something worth comparing
    for name in ("candles.csv", "ideas.csv", "decisions.csv", "trades.csv", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert second.summary == first.summary
    rows = _rows(tmp_path / "a" / "candles.csv")
    assert len(rows) == 2 * 1440
    assert rows[-1]["rsi_14"]
    assert rows[-1]["atr_14"]
    assert rows[-1]["equity"]
    assert any(":ai_auto_executed:pass" in r["decisions"] for r in rows)


def test_report_figures_agree_with_the_trades_and_the_equity(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    report = run_backtest(_options(inputs, tmp_path))
    res = report.summary["results"]
    trades = _rows(tmp_path / "trades.csv")
    pls = [Decimal(t["pl"]) for t in trades]

    assert res["trades"] == len(trades) > 0
    assert res["net_pl"] == sum(pls)
    assert res["final_balance"] == Decimal("10000.00") + sum(pls)
    assert res["wins"] == sum(1 for p in pls if p > 0)
    assert res["win_rate_pct"] == (Decimal(res["wins"]) * 100 / len(trades)).quantize(
        Decimal("0.01"))
    assert {t["exit_reason"] for t in trades} <= {"sl", "tp", "time", "end"}
    # max drawdown = the largest fall of the equity column from its running peak
    peak, worst = Decimal("10000.00"), Decimal(0)
    for row in _rows(tmp_path / "candles.csv"):
        equity = Decimal(row["equity"])
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    assert res["max_drawdown"] == worst.quantize(Decimal("0.01"))
    ideas = _rows(tmp_path / "ideas.csv")
    assert res["ideas"] == len(ideas)
    executed = {t["idea_id"] for t in trades}
    assert executed <= {i["idea_id"] for i in ideas if i["outcome"] == "auto_execute"}
    per = report.summary["per_strategy"][GOLD_M1["id"]]
    assert per["trades"] == len(trades)


def test_every_backtest_decision_replays_identically(inputs: dict[str, Path],
                                                     tmp_path: Path) -> None:
    report = run_backtest(_options(inputs, tmp_path, verify=True, audit_log=True))

    assert report.verified == report.summary["results"]["ideas"] > 0
    assert report.differences == []
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == len(_rows(tmp_path / "decisions.csv"))
    first = json.loads(lines[0])
    assert first["bundle"]["snapshot_id"] == first["decision"]["snapshot_ref"]


def test_no_idea_inside_a_high_impact_usd_blackout(tmp_path: Path) -> None:
    release = minute(5 * 60)  # 05:00 UTC, ANY_BAR blocks 15 minutes either side for USD
    options = RunOptions(
        data=[write_candles(tmp_path / "XAUUSD_M1.csv", synthetic(6 * 60))],
        strategies=[write_json(tmp_path / "any.json", ANY_BAR)], out=tmp_path / "out",
        calendar=[write_calendar(tmp_path / "cal.csv", [(release, "USD", "High", "NFP")])],
        risk=write_json(tmp_path / "risk.json", RISK_ON), progress=False)
    run_backtest(options)

    times = [datetime.fromisoformat(i["created_at"]) for i in _rows(tmp_path / "out" / "ideas.csv")]
    inside = [t for t in times if abs(t - release) <= timedelta(minutes=15)]
    assert inside == []
    assert any(t < release - timedelta(minutes=15) for t in times)
    assert any(t > release + timedelta(minutes=15) for t in times)


# ------------------------------------------------------------------------ exits, by hand


def _sim(**risk: object) -> Simulation:
    config = BacktestConfig(strategies=(strategy(ANY_BAR),),
                            risk=parse_risk_config({**RISK_ON, "max_concurrent_trades": 1,
                                                    **risk}),
                            price_timeframes={"XAUUSD": "M1"})
    return Simulation(config)


def _bar(i: int, low: float, high: float, open_: float, close: float) -> dict[str, object]:
    return factories.candle(i, open_time=minute(i), open=open_, high=high, low=low,
                            close=close, spread=0.2)


def _warm(sim: Simulation) -> tuple[int, Step]:
    """Feed a gentle rise until the first auto-executed trade opens; its step."""
    for i in range(40):
        base = 2400.0 + i * 0.4
        step = sim.step(_bar(i, base - 0.8, base + 1.0, base, base + 0.3))
        if any(d.action == "ai_auto_executed" for d in step.decisions):
            return i, step
    raise AssertionError("no trade opened")


def _position(sim: Simulation) -> tuple[float, float, float]:
    (pos,) = sim.broker.state.positions.values()
    return pos.entry_price, pos.stop_loss or 0.0, pos.take_profit[0]


def test_stop_loss_is_hit_on_a_later_bar_and_fills_at_the_stop() -> None:
    sim = _sim()
    i, _ = _warm(sim)
    entry, sl, tp = _position(sim)
    step = sim.step(_bar(i + 1, sl - 1.0, entry + 0.1, entry, sl - 0.5))

    (trade,) = step.exits
    assert trade.exit_reason == "sl"
    assert trade.exit_price == sl
    assert trade.pl == Decimal(str(round((sl - entry) * 0.1 * 100, 2))).quantize(Decimal("0.01"))
    assert trade.r_multiple == pytest.approx(-1.0, abs=0.01)


def test_take_profit_is_hit_and_sl_wins_when_both_are_in_one_bar() -> None:
    sim = _sim()
    i, _ = _warm(sim)
    entry, sl, tp = _position(sim)
    (won,) = sim.step(_bar(i + 1, entry - 0.1, tp + 1.0, entry, tp + 0.5)).exits
    assert (won.exit_reason, won.exit_price) == ("tp", tp)
    assert won.pl > 0

    sim2 = _sim()
    j, _ = _warm(sim2)
    entry, sl, tp = _position(sim2)
    (both,) = sim2.step(_bar(j + 1, sl - 1.0, tp + 1.0, entry, entry)).exits
    assert both.exit_reason == "sl"  # intrabar order unknown: the worse case


def test_a_position_is_closed_at_its_time_limit() -> None:
    sim = _sim()
    i, step = _warm(sim)
    entry, sl, tp = _position(sim)
    opened = minute(i + 1)
    exits = []
    for k in range(1, 40):
        exits = sim.step(_bar(i + k, entry - 0.05, entry + 0.05, entry, entry)).exits
        if exits:
            break
    (trade,) = exits
    assert trade.exit_reason == "time"
    assert trade.exit_time == opened + timedelta(minutes=ANY_BAR["exit_rules"]
                                                 ["time_limit_minutes"])


def test_a_drawdown_halt_stops_trading_until_the_next_day_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    data = write_candles(tmp_path / "XAUUSD_M1.csv", synthetic(2 * 1440, seed=3))
    risk = write_json(tmp_path / "risk.json", {**RISK_ON, "max_drawdown_amount": "20.00"})
    strategies = [write_json(tmp_path / "any.json", ANY_BAR)]
    resumed = run_backtest(RunOptions(data=[data], strategies=strategies, risk=risk,
                                      out=tmp_path / "a", progress=False))
    kept = run_backtest(RunOptions(data=[data], strategies=strategies, risk=risk,
                                   out=tmp_path / "b", progress=False, daily_resume=False))

    actions = resumed.summary["results"]["decisions_by_action"]
    assert actions["ai_halted"] >= 2
    assert actions["ai_resumed"] >= 1
    halted_once = kept.summary["results"]["decisions_by_action"]
    assert halted_once["ai_halted"] == 1
    assert "ai_resumed" not in halted_once
    decisions = _rows(tmp_path / "b" / "decisions.csv")
    halt_at = next(d["occurred_at"] for d in decisions if d["action"] == "ai_halted")
    assert not any(d["action"] == "ai_auto_executed" for d in decisions
                   if d["occurred_at"] > halt_at)
    assert resumed.summary["results"]["trades"] > kept.summary["results"]["trades"]


# ------------------------------------------------------------------------ inputs and CLI


def test_candle_files_of_every_format_merge_in_close_time_order() -> None:
    loaded = load_candles([FIXTURES / "US30_M5_ohlcv.csv",
                           FIXTURES / "XAUUSD_M1_mt5_export_utf16.csv",
                           FIXTURES / "EURUSD_H1_mt5_export_utf8.csv"])
    pairs = {(c["symbol"], c["timeframe"]) for c in loaded.records}
    assert pairs == {("US30", "M5"), ("XAUUSD", "M1"), ("EURUSD", "H1")}
    closes = [c["open_time"] + {"M1": timedelta(minutes=1), "M5": timedelta(minutes=5),
                                "H1": timedelta(hours=1)}[c["timeframe"]]
              for c in loaded.records]
    assert closes == sorted(closes)


def test_bad_inputs_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no timeframe"):
        load_candles([write_candles(tmp_path / "gold.csv", synthetic(5))])
    with pytest.raises(InputError, match="invalid risk config"):
        load_risk(write_json(tmp_path / "r.json", {**RISK_ON, "max_lot_size": "-1"}))
    with pytest.raises(InputError, match="unknown field"):
        load_risk(write_json(tmp_path / "r2.json", {**RISK_ON, "yolo": True}))
    changed = {**GOLD_M1, "version": 2}
    with pytest.raises(InputError, match="defined twice"):
        load_strategies([write_json(tmp_path / "a.json", GOLD_M1),
                         write_json(tmp_path / "b.json", changed)])


def test_backtest_command_writes_the_report_with_charts(
    inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_out = tmp_path / "report"
    code = main(["backtest", "--json", "--no-progress", "--data", str(inputs["data"]),
                 "--strategies", str(inputs["strategy"]), str(REPO / "strategies"),
                 "--calendar", str(inputs["calendar"]), "--risk", str(inputs["risk"]),
                 "--account-balance", "25000", "--out", str(cli_out)])
    out = json.loads(capsys.readouterr().out)

    assert code == 0
    assert out["run"]["initial_balance"] == "25000.00"
    assert len(out["per_strategy"]) == 4  # the test strategy and the three shipped ones
    for name in ("equity.png", "price_XAUUSD.png"):
        assert (cli_out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (cli_out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "Per strategy" in page
    assert "Gold pullback M1 (test)" in page

    code = main(["backtest", "--no-progress", "--data", str(inputs["data"]),
                 "--strategies", str(cli_out / "missing.json"), "--out", str(cli_out)])
    assert code == 1
    assert "missing.json: no such file" in capsys.readouterr().err
