"""The explainer as a process: isolated from the gate, started by `ai-trader run`, its CLI."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.cli import CliError, all_commands, build_parser
from api.supervisor import services
from streams.explainer.budget import DailyBudget
from streams.explainer.service import budget_path, utc_now
from tests.connectors.bus import read
from tests.explainer import factories as f
from tests.fakes.openai_server import FakeOpenAI, Reply
from topics.bus import BusProducer
from topics.catalog import Catalog
from topics.settings import REPO_ROOT, Settings

STAGES = ("streams", "connectors", "topics", "sinks")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_on_the_execution_path_imports_the_explainer() -> None:
    offenders = []
    for stage in STAGES:
        for path in (REPO_ROOT / stage).rglob("*.py"):
            if "explainer" in path.relative_to(REPO_ROOT).parts:
                continue
            if any(n == "streams.explainer" or n.startswith("streams.explainer.")
                   for n in _imports(path)):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []


def test_loading_the_decision_core_and_gate_loads_no_explainer_module() -> None:
    core = [f"streams.core.{p.stem}" for p in (REPO_ROOT / "streams" / "core").glob("*.py")]
    gate = [f"streams.{p.stem}" for p in (REPO_ROOT / "streams").glob("*gate*.py")]
    code = ("import importlib, sys\n"
            f"for m in {core + gate}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if 'explainer' in m or m == 'openai'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_the_explainer_is_a_subcommand_and_a_service_of_the_stack(tmp_path: Path) -> None:
    assert "explainer" in all_commands()
    settings = Settings(AI_TRADER_STATE_DIR=tmp_path)  # type: ignore[call-arg]
    [svc] = [s for s in services(settings, with_ui=False) if s.name == "explainer"]
    assert svc.argv[-1] == "explainer"


def _settings(tmp_path: Path, **env: object) -> Settings:
    return Settings(AI_TRADER_STATE_DIR=tmp_path, LLM_DAILY_CALL_BUDGET=7,  # type: ignore[call-arg]
                    **env)


def test_status_prints_todays_budget_use(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path, OPENAI_API_KEY=None)
    DailyBudget(budget_path(settings), 7, 1000, utc_now).reserve(10)
    args = build_parser().parse_args(["explainer", "--status", "--json"])
    assert all_commands()["explainer"][0](args, settings) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget"]["calls"] == 1
    assert data["budget"]["call_limit"] == 7
    assert data["api_key_configured"] is False


def test_check_says_ai_online_or_refuses_a_bad_key(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    handler = all_commands()["explainer"][0]
    args = build_parser().parse_args(["explainer", "--check"])
    with FakeOpenAI() as server:
        good = _settings(tmp_path, OPENAI_API_KEY=server.api_key, OPENAI_BASE_URL=server.url)
        bad = _settings(tmp_path, OPENAI_API_KEY="sk-bad-000000000000", OPENAI_BASE_URL=server.url)
        assert handler(args, good) == 0
        assert capsys.readouterr().out.strip() == "AI online"
        with pytest.raises(CliError, match="Invalid OpenAI API key"):
            handler(args, bad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_process_explains_serves_metrics_and_stops_on_sigterm(
        bus: Settings, catalog: Catalog, tmp_path: Path) -> None:
    port = _free_port()
    with FakeOpenAI(default=Reply(lambda r: f.text_for(r.prompt))) as server:
        env = {**os.environ, "AI_TRADER_TOPIC_PREFIX": catalog.prefix,
               "AI_TRADER_STATE_DIR": str(tmp_path), "OPENAI_API_KEY": server.api_key,
               "OPENAI_BASE_URL": server.url, "EXPLAINER_METRICS_PORT": str(port),
               "KAFKA_BOOTSTRAP_SERVERS": bus.kafka_bootstrap_servers}
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "explainer"], cwd=REPO_ROOT,
                                env=env, stderr=subprocess.PIPE)
        try:
            decision = f.decision(occurred_at=datetime.now(UTC))  # the process reads the clock
            producer = BusProducer(bus, catalog)
            producer.send("decisions.log.v1", "paper-1", decision)
            producer.flush()
            records = read(bus, catalog, "explanations.v1", 1, timeout=60)
            metrics = ""
            deadline = time.monotonic() + 20
            while "budget_calls_used 1.0" not in metrics and time.monotonic() < deadline:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:  # noqa: S310
                    metrics = resp.read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        stderr = proc.stderr.read().decode() if proc.stderr else ""

    assert code == 0, stderr[-2000:]
    assert records[0].value["subject_id"] == decision["decision_id"]
    assert records[0].value["status"] == "ok"
    assert "ai_trader_explainer_budget_calls_used 1.0" in metrics
    assert 'ai_trader_explainer_explanations_total{status="ok",subject_kind="decision"} 1.0' \
        in metrics
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    published = [ln for ln in lines if ln["message"].startswith("explanation ok")]
    assert published
    assert published[0]["llm_budget"]["calls"] == 1
    assert server.api_key not in stderr
