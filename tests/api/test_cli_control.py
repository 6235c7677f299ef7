"""`ai-trader` control commands against the real database and bus (gate double answering),
and the control client's waiting: dedupe, timeout, broker commands."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api import cli
from api.auth import verify_password
from sinks import queries
from tests.api import rows
from tests.api.conftest import Api
from tests.api.gate_double import MT5_ORDER_ID, GateDouble
from topics.bus import BusConsumer
from topics.catalog import Catalog
from topics.control_client import CommandTimeout, ControlClient
from topics.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


@pytest.fixture
def run(stack: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `ai-trader ARGS` in-process on the test stack: (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "get_settings", lambda: stack)
    monkeypatch.setattr("topics.logs.configure_logging", lambda *a, **k: None)

    def _run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_approve_prints_the_order_and_json(run: Any, gate: GateDouble) -> None:
    idea_id = str(uuid.uuid4())
    gate.ideas[idea_id] = "fill"
    code, out, err = run("approve", idea_id, "--lot", "0.3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "executed"
    assert data["mt5_order_id"] == MT5_ORDER_ID
    assert gate.commands[-1]["issuer"].startswith("cli:")
    blocked = str(uuid.uuid4())
    gate.ideas[blocked] = "risk"
    code, out, _ = run("approve", blocked)
    assert code == 1
    assert out.startswith("blocked: risk_violation")


def test_refusal_and_timeout_exit_non_zero(run: Any, gate: GateDouble) -> None:
    code, out, _ = run("reject", str(uuid.uuid4()))
    assert code == 1
    assert out.startswith("refused: unknown_idea")
    silent = str(uuid.uuid4())
    gate.ideas[silent] = "silent"
    code, _, err = run("reject", silent, "--timeout", "1")
    assert code == 1
    assert "no reply from the gate within 1 s" in err


def test_validation_happens_before_publishing(run: Any, gate: GateDouble, api: Api,
                                              tmp_path: Path) -> None:
    with api.conn() as conn:
        rows.risk_config(conn, api.settings.account)
    before = len(gate.commands)
    for argv in (("approve", "x", "--lot", "0.001"), ("approve", "x", "--lot", "-1"),
                 ("risk", "set", "max_lot_size=0"), ("risk", "set", "halt_on_drawdown=yes"),
                 ("risk", "set", "nonsense=1"), ("risk", "set", "broken"),
                 ("kill", "--reason", "  ")):
        code, _, err = run(*argv)
        assert code == 1, argv
        assert err, argv
    bad = tmp_path / "bad.json"
    definition = json.loads((STRATEGIES / "gold_pullback_buy.json").read_text())
    definition["entry_conditions"]["rsi_below"] = 140
    bad.write_text(json.dumps(definition))
    code, _, err = run("strategy", "apply", str(bad))
    assert code == 1
    assert "$.entry_conditions.rsi_below" in err
    assert len(gate.commands) == before


def test_risk_show_and_set(run: Any, gate: GateDouble, api: Api) -> None:
    with api.conn() as conn:
        rows.risk_config(conn, api.settings.account)
    code, out, _ = run("risk", "show", "--json")
    assert code == 0
    assert json.loads(out)["max_lot_size"] == "1.00"
    code, out, _ = run("risk", "set", "max_lot_size=0.25", 'watchlist=["XAUUSD","EURUSD"]')
    assert code == 0
    assert "applied" in out
    payload = json.loads(gate.commands[-1]["payload_json"])
    assert payload["max_lot_size"] == "0.25"
    assert payload["watchlist"] == ["EURUSD", "XAUUSD"]
    assert payload["max_concurrent_trades"] == 3  # untouched keys keep their value


def test_kill_resume_strategy_and_ideas(run: Any, gate: GateDouble, api: Api) -> None:
    code, out, _ = run("kill", "--reason", "flash crash")
    assert code == 0
    assert "kill switch ON" in out
    assert gate.commands[-1]["reason"] == "flash crash"
    assert run("resume")[0] == 0
    code, out, _ = run("strategy", "apply", str(STRATEGIES / "us30_breakout_momentum.json"))
    assert code == 0
    assert "applied" in out
    sid = json.loads(gate.commands[-1]["payload_json"])["definition"]["id"]
    assert run("strategy", "disable", sid)[0] == 0
    assert json.loads(gate.commands[-1]["payload_json"]) == {"is_active": False}
    with api.conn() as conn:
        idea_id = rows.idea(conn, api.settings.account)
    code, out, _ = run("ideas", "--json")
    assert code == 0
    assert idea_id in [i["id"] for i in json.loads(out)]


def test_ideas_show_how_long_an_approval_has_left(run: Any, api: Api) -> None:
    now = datetime.now(UTC)
    with api.conn() as conn:  # rows.idea: expires 15 minutes after it was created
        fresh = rows.idea(conn, api.settings.account, created_at=now - timedelta(minutes=5))
        stale = rows.idea(conn, api.settings.account, created_at=now - timedelta(hours=2))
        done = rows.idea(conn, api.settings.account, status="rejected")
    code, out, _ = run("ideas", "--status", "needs_approval", "--status", "rejected",
                    "--limit", "500")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert re.search(r"needs_approval  expires in (9|10)m$", lines[fresh])
    assert re.search(r"needs_approval  expired 10[45]m ago$", lines[stale])
    assert lines[done].endswith("rejected")  # decided: no clock


@pytest.mark.parametrize(("argv", "quiet"), [
    (("ideas",), True),           # a person reads the result, not the client's log
    (("ideas", "--verbose"), False),
    (("-v", "ideas"), False),
    (("config",), False),         # not a console command: logs as configured
])
def test_console_commands_log_warnings_only_unless_verbose(
        run: Any, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...],
        quiet: bool) -> None:
    calls: list[bool] = []

    def configure(service: str, settings: Settings, stream: Any = None,
                  quiet: bool = False) -> None:
        calls.append(quiet)

    monkeypatch.setattr("topics.logs.configure_logging", configure)
    assert run(*argv)[0] == 0
    assert calls == [quiet]


def test_status_shows_ai_kill_switch_and_open_ideas(run: Any, api: Api) -> None:
    with api.conn() as conn:
        rows.risk_config(conn, api.settings.account, ai_trading_enabled=False,
                         last_halt_reason="max_drawdown")
    code, out, _ = run("status", "--metrics", "http://127.0.0.1:9/metrics")
    assert code == 0
    assert "AI trading     OFF" in out
    assert "halt reason    max_drawdown" in out
    assert "kill switch    off" in out
    assert "open ideas" in out
    assert "metrics http://127.0.0.1:9/metrics: not reachable" in out
    code, out, _ = run("status", "--json", "--metrics", "http://127.0.0.1:9/metrics")
    assert json.loads(out)["ai_trading_enabled"] is False


def test_user_add_reads_the_password_from_stdin(run: Any, stack: Settings) -> None:
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    code, out, _ = run("user", "add", email, stdin="a long enough password\n")
    assert code == 0
    assert email in out
    with psycopg.connect(stack.database_dsn(), autocommit=True) as conn:
        user = queries.user_by_email(conn, email)
    assert user
    assert user["password_hash"].startswith("$argon2id$")
    assert verify_password(user["password_hash"], "a long enough password")
    assert run("user", "add", email, stdin="another password!\n")[0] == 1
    assert run("user", "add", f"x{email}", stdin="short\n")[0] == 1
    assert run("user", "add", email, "--update", stdin="a changed password\n")[0] == 0


def test_client_dedupes_replies_times_out_and_sends_broker_commands(
        stack: Settings, api_catalog: Catalog, gate: GateDouble) -> None:
    with ControlClient(stack, api_catalog) as client:
        # the double sends every reply twice: the second must not disturb the next command
        first = client.request("kill_switch", "test", timeout=5, reason="a")
        second = client.request("resume", "test", timeout=5)
        assert first.accepted
        assert second.accepted
        assert first.command_id != second.command_id
        silent = str(uuid.uuid4())
        gate.ideas[silent] = "silent"
        with pytest.raises(CommandTimeout) as info:
            client.approve(silent, "test", timeout=0.5)
        assert info.value.stage == "reply"
        assert not client._replies
        assert not client._orders
        consumer = BusConsumer(stack, api_catalog, ["broker.commands.v1"],
                               group_id=f"t-{uuid.uuid4().hex}")
        try:
            command_id = client.notify("refresh_account", "test")
            got: list[dict[str, Any]] = []
            for _ in range(100):
                got += [m.value for m in consumer.poll(10, 0.2)]
                if got:
                    break
        finally:
            consumer.close()
        assert [c["command_id"] for c in got] == [command_id]
        assert got[0]["kind"] == "refresh_account"
        assert got[0]["signature"]
