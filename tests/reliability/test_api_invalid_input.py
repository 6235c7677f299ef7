"""Invalid strategies and risk configurations through the API and the CLI.

Hypothesis corrupts a valid body one field at a time — wrong types, out-of-range and
over-precise numbers, NaN / Infinity, SQL and HTML in strings, NUL characters, unknown
and missing fields — plus oversized and deeply nested bodies. Every answer must be the
error envelope naming what is wrong (the field, or the JSON path in a strategy), and
nothing may reach the bus (gate.inbox.v1's end offsets do not move) or the database.
The app, its database and the gate's test double are tests/api's fixtures.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg import sql
from starlette.testclient import TestClient

from api import cli
from streams.core.strategy import StrategyError, parse_strategy
from tests.api import rows
from tests.api.conftest import Api
from topics.bus import admin_client
from topics.catalog import Catalog
from topics.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
SQL = "'; DROP TABLE risk_config; --"
HTML = "<script>alert(1)</script>"
HOSTILE_VALUES: tuple[Any, ...] = (
    None, "", SQL, HTML, "x\x00y", "1" * 5000, -1, 0, 1e308, -1e308, 1.005, 123.456,
    True, [], {}, [1, 2], {"$gt": 0}, "NaN", "Infinity", 2**63,
)
RAW_CONSTANTS = ("NaN", "Infinity", "-Infinity")
RISK_BODY: dict[str, Any] = {
    "ai_trading_enabled": False, "min_confidence_threshold": 92.5, "max_lot_size": 0.5,
    "max_concurrent_trades": 2, "daily_profit_target": 2000.0, "stop_after_target": True,
    "max_drawdown_amount": 800.0, "halt_on_drawdown": True,
    "allow_off_watchlist_autotrade": False,
}
RISK_OPTIONAL = ("watchlist", "weekly_profit_target", "approval_ttl_minutes",
                 "calendar_max_age_minutes", "account_max_age_minutes", "trading_day_start",
                 "trading_day_tz")


def inbox_size(settings: Settings, catalog: Catalog) -> int:
    """Records ever written to gate.inbox.v1 (the sum of its partitions' end offsets)."""
    from confluent_kafka import Consumer, TopicPartition

    from topics.bus import consumer_config

    name = catalog.name("gate.inbox.v1")
    consumer = Consumer(consumer_config(settings, f"{catalog.prefix}size"))
    try:
        parts = admin_client(settings).list_topics(name, timeout=10).topics[name].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                   for p in parts)
    finally:
        consumer.close()


def table_counts(settings: Settings) -> dict[str, int]:
    """Rows of the tables a command or a strategy could end up in."""
    counts = {}
    with psycopg.connect(settings.database_dsn(), autocommit=True) as conn:
        for table in ("risk_config", "strategies", "control_commands", "trade_ideas"):
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


@pytest.fixture
def quiet_bus(api: Api, api_catalog: Catalog) -> Iterator[Callable[[], None]]:
    """Asserts at the end that nothing was published or stored during the test."""
    inbox, tables = inbox_size(api.settings, api_catalog), table_counts(api.settings)

    def check() -> None:
        assert inbox_size(api.settings, api_catalog) == inbox, "something was published"
        assert table_counts(api.settings) == tables, "something was stored"
    yield check
    check()


def _envelope(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "INVALID_INPUT"
    return dict(body["error"])


# ---------------------------------------------------------------- risk settings

risk_corruptions = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(sorted(RISK_BODY) + list(RISK_OPTIONAL)),
              st.sampled_from(HOSTILE_VALUES)),
    st.tuples(st.just("drop"), st.sampled_from(sorted(RISK_BODY)), st.none()),
    st.tuples(st.just("extra"), st.sampled_from(["surprise", "last_halt_reason", "kill_switch",
                                                 "version", SQL, HTML]),
              st.sampled_from(HOSTILE_VALUES)),
    st.tuples(st.just("raw"), st.sampled_from(sorted(RISK_BODY)), st.sampled_from(RAW_CONSTANTS)),
)


def _risk_request(kind: str, field: str, value: Any) -> tuple[bytes, bool]:
    """(body, must_fail): a corrupted body, and whether it is certainly invalid."""
    body = dict(RISK_BODY)
    if kind == "drop":
        del body[field]
    elif kind == "raw":
        return json.dumps(body).replace(json.dumps(body[field]), value, 1).encode(), True
    else:
        body[field] = value
    return json.dumps(body).encode(), True


def _valid_anyway(field: str, value: Any) -> bool:
    """Hostile-looking values some fields do accept (e.g. 0 concurrent trades, a null
    profit target, any boolean for a flag)."""
    ok = {
        "max_concurrent_trades": lambda v: isinstance(v, int) and not isinstance(v, bool)
        and 0 <= v <= 1000,
        "daily_profit_target": lambda v: v is None,
        "weekly_profit_target": lambda v: v is None,
        "watchlist": lambda v: v is None or v == [],
        "approval_ttl_minutes": lambda v: v is None,
        "calendar_max_age_minutes": lambda v: v is None,
        "account_max_age_minutes": lambda v: v is None,
        "trading_day_start": lambda v: v is None,
        "trading_day_tz": lambda v: v is None,
    }
    flags = {k for k, v in RISK_BODY.items() if isinstance(v, bool)}
    if field in flags:
        return isinstance(value, bool)
    return bool(ok.get(field, lambda v: False)(value))


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(corruption=risk_corruptions)
def test_invalid_risk_settings_get_a_precise_400_and_reach_nothing(
        authed: TestClient, quiet_bus: Callable[[], None],
        corruption: tuple[str, str, Any]) -> None:
    kind, field, value = corruption
    if kind == "set" and _valid_anyway(field, value):
        event("a legal value after all")
        return  # a legal value: not this test's business
    event(f"refused: {kind}")
    body, _ = _risk_request(kind, field, value)
    response = authed.put("/v1/settings/risk", content=body,
                          headers={"content-type": "application/json"})
    error = _envelope(response)
    if kind != "raw":  # NaN / Infinity: the body is not JSON at all
        named = [e.get("loc", []) for e in error["details"].get("errors", [])]
        assert any(field in loc for loc in named), (field, value, error)
    quiet_bus()


# ---------------------------------------------------------------- strategies


def _definition() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((STRATEGIES / "gold_pullback_buy.json").read_text())
    return loaded


def _paths(node: Any, path: str = "$") -> list[str]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, f"{path}[{i}]")
    return out


PATHS = [p for p in _paths(_definition()) if p != "$"]


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path[2:].replace("]", "").split("."):
        name, *indexes = chunk.split("[")
        parts.append(name)
        parts += [int(i) for i in indexes]
    return parts


def _corrupt(definition: dict[str, Any], path: str, action: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(definition)
    *parents, last = _split(path)
    node: Any = out
    for part in parents:
        node = node[part]
    if action == "drop" and isinstance(node, dict):
        del node[last]
    elif action == "extra" and isinstance(node, dict):
        node[str(last)] = {"oops": node[last]}
        node["unknown_" + str(last)] = value
    else:
        node[last] = value
    return out


def _near(error_path: str, corrupted: str) -> bool:
    """Does an error path point at the corrupted spot (itself, an ancestor, a sibling)?"""
    parent = corrupted.rsplit(".", 1)[0].split("[")[0] if "." in corrupted[2:] else "$"
    return corrupted.startswith(error_path) or error_path.startswith(parent)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["set", "set", "drop", "extra"]),
       value=st.sampled_from(HOSTILE_VALUES), method=st.sampled_from(["post", "put"]))
def test_invalid_strategies_get_their_json_path_and_reach_nothing(
        authed: TestClient, quiet_bus: Callable[[], None], path: str, action: str,
        value: Any, method: str) -> None:
    broken = _corrupt(_definition(), path, action, value)
    try:
        parse_strategy(broken)
    except (StrategyError, ValueError, TypeError, KeyError):
        pass
    else:
        event("still a valid strategy")
        return  # a hostile name is still a name: not refused
    event(f"refused: {action}")
    url = "/v1/strategies" if method == "post" else f"/v1/strategies/{_definition()['id']}"
    response = getattr(authed, method)(url, json=broken)
    error = _envelope(response)
    found = [e["path"] for e in error["details"]["errors"]]
    assert found
    assert any(_near(p, path) for p in found), (path, action, value, found)
    quiet_bus()


# ---------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize("body", [
    pytest.param(b"{" * 100_000, id="deeply nested"),
    pytest.param(b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", id="nested arrays"),
    pytest.param(b"\xff\xfe not utf-8", id="not utf-8"),
    pytest.param(b"", id="empty"),
    pytest.param(b"null", id="null"),
    pytest.param(b"[]", id="array"),
    pytest.param(json.dumps({**_definition(), "name": "n" * 5_000_000}).encode(),
                 id="5 MB name"),
])
def test_hostile_strategy_bodies_are_refused_and_reach_nothing(
        authed: TestClient, quiet_bus: Callable[[], None], body: bytes) -> None:
    for method, url in (("post", "/v1/strategies"),
                        ("put", f"/v1/strategies/{_definition()['id']}")):
        response = getattr(authed, method)(url, content=body,
                                           headers={"content-type": "application/json"})
        assert response.status_code in (400, 413), (response.status_code, response.text[:200])
        assert response.json()["error"]["code"] == "INVALID_INPUT"


def test_hostile_risk_bodies_are_refused_and_reach_nothing(
        authed: TestClient, quiet_bus: Callable[[], None]) -> None:
    for body in (b"{" * 100_000, b"\xff", b"", b"[]", b'"x"',
                 json.dumps({**RISK_BODY, "watchlist": ["XAUUSD"] * 100_000}).encode(),
                 json.dumps({**RISK_BODY, "trading_day_tz": "Mars/Olympus"}).encode(),
                 json.dumps({**RISK_BODY, "trading_day_start": "25:00"}).encode()):
        response = authed.put("/v1/settings/risk", content=body,
                              headers={"content-type": "application/json"})
        assert response.status_code in (400, 413), (body[:40], response.text[:200])
        assert response.json()["error"]["code"] == "INVALID_INPUT"


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def run(stack: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`ai-trader ARGS` in-process on the test stack: (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "get_settings", lambda: stack)
    monkeypatch.setattr("topics.logs.configure_logging", lambda *a, **k: None)

    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return _run


CLI_RISK = [
    ("max_lot_size=0", "max_lot_size"), ("max_lot_size=-1", "max_lot_size"),
    ("max_lot_size=0.001", "max_lot_size"), ("max_lot_size=NaN", "max_lot_size"),
    ("max_lot_size=\"1\"", "max_lot_size"), ("min_confidence_threshold=101",
                                             "min_confidence_threshold"),
    ("halt_on_drawdown=yes", "halt_on_drawdown"), ("halt_on_drawdown=1", "halt_on_drawdown"),
    ("max_concurrent_trades=2.5", "max_concurrent_trades"),
    ("max_drawdown_amount=1e400", "max_drawdown_amount"),
    (f"watchlist=[\"{SQL}\"]", "watchlist"), ("trading_day_tz=\"Mars/Olympus\"",
                                              "trading_day_tz"),
    ("trading_day_start=\"25:00\"", "trading_day_start"), ("surprise=1", "surprise"),
    ("last_halt_reason=null", "last_halt_reason"), ("nonsense", "nonsense"),
]


@pytest.fixture
def risk_row(api: Api) -> None:
    """The gate's current risk config in the database (the CLI merges into it)."""
    with api.conn() as conn:
        rows.risk_config(conn, api.settings.account)


@pytest.mark.parametrize(("assignment", "field"), CLI_RISK)
def test_cli_risk_set_refuses_invalid_values_naming_the_field(
        api: Api, risk_row: None, run: Callable[..., tuple[int, str, str]],
        quiet_bus: Callable[[], None], assignment: str, field: str) -> None:
    before = inbox_size(api.settings, Catalog(api.settings.topic_prefix))
    code, _, err = run("risk", "set", assignment)
    assert code == 1, err
    assert field in err, err
    assert "Traceback" not in err
    assert inbox_size(api.settings, Catalog(api.settings.topic_prefix)) == before


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(PATHS), value=st.sampled_from(HOSTILE_VALUES))
def test_cli_strategy_apply_refuses_invalid_files_with_the_json_path(
        run: Callable[..., tuple[int, str, str]], quiet_bus: Callable[[], None],
        tmp_path_factory: pytest.TempPathFactory, path: str, value: Any) -> None:
    broken = _corrupt(_definition(), path, "set", value)
    try:
        parse_strategy(broken)
    except (StrategyError, ValueError, TypeError, KeyError):
        pass
    else:
        return
    file = tmp_path_factory.mktemp("strategy") / "broken.json"
    file.write_text(json.dumps(broken))
    code, _, err = run("strategy", "apply", str(file))
    assert code == 1, err
    assert "$." in err, err
    assert "Traceback" not in err, err
    assert any(_near(p, path) for p in err.split() if p.startswith("$")), (path, err)
