"""The explainer on the real bus against the local OpenAI-compatible server.

Inputs are produced on the test's own catalog topics as the gate publishes them; the
explanations are read back from `explanations.v1`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.explainer.agent import FALLBACK_MARK, fallback_text
from streams.explainer.facts import explanation_id
from streams.explainer.service import DECISIONS, IDEAS, INPUTS, OUTPUT
from tests.connectors.bus import read_dlq
from tests.explainer import factories as f
from tests.explainer.harness import harness
from tests.fakes.openai_server import (
    MODEL_SNAPSHOT,
    FakeOpenAI,
    Malformed,
    RateLimited,
    Reply,
    Slow,
)
from topics.bus import consumer_config
from topics.catalog import Catalog
from topics.settings import Settings

WRONG_KEY = "sk-proj-WRONGkey-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=Reply(lambda request: f.text_for(request.prompt))) as fake:
        yield fake


def _by_kind(records: list[Any]) -> dict[str, dict[str, Any]]:
    return {r.value["subject_kind"]: r.value for r in records}


def _one(h: Any, record: dict[str, Any], topic: str = DECISIONS) -> dict[str, Any]:
    key = record["idea_id"] if topic == IDEAS else record["account"]
    h.publish(topic, key, record)
    assert h.run(until=1) == 1
    [out] = h.explanations(1)
    return dict(out.value)


def _high_watermarks(settings: Settings, catalog: Catalog) -> dict[str, int]:
    consumer = Consumer(consumer_config(settings, f"{catalog.prefix}marks"))
    try:
        marks: dict[str, int] = {}
        for spec in catalog:
            for name in (catalog.name(spec.name), catalog.dlq(spec.name)):
                parts = consumer.list_topics(name, timeout=10).topics[name].partitions
                marks[name] = sum(consumer.get_watermark_offsets(TopicPartition(name, p),
                                                                 timeout=10)[1] for p in parts)
        return marks
    finally:
        consumer.close()


def test_idea_and_decision_get_the_models_text_linked_to_them(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    idea = f.trade_idea()
    decision = f.decision(idea)
    with harness(bus, catalog, server, tmp_path) as h:
        h.publish("snapshots.bundles.v1", "paper-1", f.bundle(idea))
        while not h.loop._bundles:  # the bundle is read before the idea is published
            h.loop.step(timeout=0.3)
        h.publish(IDEAS, idea["idea_id"], f.idea_status(idea), f.later_status(idea))
        h.publish(DECISIONS, "paper-1", decision)
        assert h.run(until=2) == 2
        h.settle(1.0)
        records = h.explanations(2)
        marks = _high_watermarks(h.settings, catalog)

    assert len(records) == 2
    assert {r.key for r in records} == {"paper-1"}
    by_kind = _by_kind(records)
    about_idea, about_decision = by_kind["idea"], by_kind["decision"]
    assert about_idea["subject_id"] == idea["idea_id"]
    assert about_idea["explanation_id"] == explanation_id("idea", idea["idea_id"])
    assert (about_idea["status"], about_idea["error"], about_idea["text"]) == (
        "ok", None, f.IDEA_TEXT)
    assert about_idea["model"] == MODEL_SNAPSHOT
    assert about_idea["created_at"] == f.NOW
    assert about_idea["prompt_tokens"] > 0
    assert about_idea["completion_tokens"] > 0
    assert about_decision["subject_id"] == decision["decision_id"]
    assert (about_decision["status"], about_decision["text"]) == ("ok", f.DECISION_TEXT)
    # the idea's prompt had the bundle's market context; the decision's had its checks.
    # The two topics are consumed together, so the requests may come in either order.
    prompts = [r.prompt for r in server.chat_requests()]
    [decision_prompt] = [p for p in prompts if f.text_for(p) == f.DECISION_TEXT]
    [idea_prompt] = [p for p in prompts if f.text_for(p) == f.IDEA_TEXT]
    assert '"rsi_14": 38.2' in idea_prompt
    assert "FOMC Rate Decision" in idea_prompt
    assert '"name": "watchlist"' in decision_prompt
    # nothing but explanations was written: no status, decision, order or command
    written = {name for name, count in marks.items() if count}
    assert written == {catalog.name(t) for t in (*INPUTS, OUTPUT)}


def test_a_bad_key_falls_back_at_once_and_the_key_never_reaches_the_logs(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "streams"):
        caplog.set_level(logging.DEBUG, logger=name)
    decision = f.decision()
    with harness(bus, catalog, server, tmp_path, key=WRONG_KEY) as h:
        out = _one(h, decision)
        auth_errors = h.metric("ai_trader_explainer_llm_requests_total", outcome="auth_error")

    assert (out["status"], out["error"]) == ("fallback", "OPENAI_UNAVAILABLE")
    assert out["text"] == fallback_text(decision["rationale"], "OPENAI_UNAVAILABLE")
    assert out["text"].startswith(FALLBACK_MARK)
    assert len(server.chat_requests()) == 1
    assert auth_errors == 1
    assert server.chat_requests()[0].headers["authorization"] == f"Bearer {WRONG_KEY}"
    logged = [caplog.text] + [repr(vars(r)) for r in caplog.records]
    assert any("auth_error" in text for text in logged)  # the failure itself is logged
    assert not any(WRONG_KEY in text for text in logged)
    assert WRONG_KEY not in repr(out)


def test_rate_limit_is_retried_after_retry_after_then_succeeds(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    server.queue(RateLimited(retry_after=1))
    with harness(bus, catalog, server, tmp_path) as h:
        out = _one(h, f.decision())
        calls = h.loop.explainer.client.budget.usage().calls

    assert (out["status"], out["text"]) == ("ok", f.DECISION_TEXT)
    assert h.waits == [1.0]
    assert len(server.chat_requests()) == 2
    assert calls == 2


def test_rate_limit_that_outlasts_the_retries_falls_back(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    server.queue(*[RateLimited(retry_after=1)] * 3)
    with harness(bus, catalog, server, tmp_path, openai_max_retries=2) as h:
        out = _one(h, f.decision())
        fallbacks = h.metric("ai_trader_explainer_fallbacks_total", error="OPENAI_UNAVAILABLE")

    assert (out["status"], out["error"]) == ("fallback", "OPENAI_UNAVAILABLE")
    assert h.waits == [1.0, 1.0]
    assert len(server.chat_requests()) == 3
    assert fallbacks == 1


def test_a_slow_server_times_out_and_falls_back(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    server.queue(Slow(10))
    with harness(bus, catalog, server, tmp_path, openai_timeout_seconds=0.5,
                 openai_max_retries=0) as h:
        out = _one(h, f.decision())
        timeouts = h.metric("ai_trader_explainer_llm_requests_total", outcome="timeout")

    assert (out["status"], out["error"]) == ("fallback", "OPENAI_UNAVAILABLE")
    assert timeouts == 1


def test_malformed_json_falls_back_without_retry(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    server.queue(Malformed())
    with harness(bus, catalog, server, tmp_path) as h:
        out = _one(h, f.decision())

    assert (out["status"], out["error"]) == ("fallback", "OPENAI_UNAVAILABLE")
    assert len(server.chat_requests()) == 1


def test_a_text_citing_a_number_not_in_the_facts_is_discarded(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    idea = f.trade_idea()
    server.queue(Reply(f.INVENTED_TEXT))
    with harness(bus, catalog, server, tmp_path) as h:
        out = _one(h, f.idea_status(idea), topic=IDEAS)
        discarded = h.metric("ai_trader_explainer_fallbacks_total", error="number_not_in_facts")

    assert (out["status"], out["error"]) == ("fallback", "number_not_in_facts")
    assert out["text"] == fallback_text(idea["rationale"], "number_not_in_facts")
    assert "72" not in out["text"]
    assert out["model"] == MODEL_SNAPSHOT
    assert out["completion_tokens"] > 0
    assert discarded == 1


def test_the_daily_call_budget_is_enforced_and_visible(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    first, second = f.decision(), f.decision()
    with harness(bus, catalog, server, tmp_path, llm_daily_call_budget=1) as h:
        h.publish(DECISIONS, "paper-1", first, second)
        assert h.run(until=2) == 2
        records = {r.value["subject_id"]: r.value for r in h.explanations(2)}
        used = h.metric("ai_trader_explainer_budget_calls_used")
        limit = h.metric("ai_trader_explainer_budget_calls_limit")
        exhausted = h.metric("ai_trader_explainer_fallbacks_total", error="budget_exhausted")

    assert records[first["decision_id"]]["status"] == "ok"
    assert (records[second["decision_id"]]["status"],
            records[second["decision_id"]]["error"]) == ("fallback", "budget_exhausted")
    assert len(server.chat_requests()) == 1
    assert (used, limit, exhausted) == (1, 1, 1)
    assert '"calls": 1' in (tmp_path / "explainer" / "llm-budget.json").read_text()


def test_the_token_budget_refuses_a_call_that_would_pass_it(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    with harness(bus, catalog, server, tmp_path, llm_daily_token_budget=100) as h:
        out = _one(h, f.decision())

    assert (out["status"], out["error"]) == ("fallback", "budget_exhausted")
    assert server.chat_requests() == []


def test_without_a_key_the_fallback_stands_and_no_http_call_is_made(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    idea = f.trade_idea()
    with harness(bus, catalog, server, tmp_path, key=None) as h:
        out = _one(h, f.idea_status(idea), topic=IDEAS)

    assert (out["status"], out["error"], out["model"]) == ("fallback", "OPENAI_UNAVAILABLE", None)
    assert out["text"] == f"{FALLBACK_MARK} (OPENAI_UNAVAILABLE): {idea['rationale']}"
    assert server.requests == []


def test_a_redelivered_decision_is_explained_once(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    decision = f.decision()
    with harness(bus, catalog, server, tmp_path) as h:
        h.publish(DECISIONS, "paper-1", decision, decision)
        h.run(until=1)
        h.settle(1.5)
        records = h.explanations(1, settle=1.0)
        duplicates = h.metric("ai_trader_explainer_skipped_total", reason="duplicate")

    assert len(records) == 1
    assert duplicates == 1
    assert len(server.chat_requests()) == 1


def test_old_records_are_not_explained(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    old = f.decision(occurred_at=f.NOW - timedelta(days=2))
    fresh = f.decision()
    with harness(bus, catalog, server, tmp_path) as h:
        h.publish(DECISIONS, "paper-1", old, fresh)
        h.run(until=1)
        h.settle(1.0)
        records = h.explanations(1, settle=1.0)
        stale = h.metric("ai_trader_explainer_skipped_total", reason="stale")

    assert [r.value["subject_id"] for r in records] == [fresh["decision_id"]]
    assert stale == 1


def test_a_corrupt_record_is_dead_lettered_and_the_next_one_explained(
        bus: Settings, catalog: Catalog, server: FakeOpenAI, tmp_path: Path) -> None:
    decision = f.decision()
    with harness(bus, catalog, server, tmp_path) as h:
        h.producer.send_raw(catalog.name(DECISIONS), b"paper-1", b"\xc3\x01garbage")
        h.publish(DECISIONS, "paper-1", decision)
        assert h.run(until=1) == 1
        records = h.explanations(1)
    dead = read_dlq(bus, catalog, DECISIONS, 1)

    assert [r.value["subject_id"] for r in records] == [decision["decision_id"]]
    assert len(dead) == 1
    assert dead[0].value() == b"\xc3\x01garbage"
