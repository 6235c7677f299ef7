"""The model client against the local OpenAI-compatible server: retries, waits, breaker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from streams.explainer.budget import DailyBudget
from streams.explainer.client import (
    BudgetExhausted,
    ClientConfig,
    LlmClient,
    LlmUnavailable,
    check_connection,
)
from streams.explainer.metrics import ExplainerMetrics
from streams.explainer.prompt import Prompt
from tests.explainer.factories import NOW
from tests.fakes.openai_server import (
    DEFAULT_MODEL,
    MODEL_SNAPSHOT,
    FakeOpenAI,
    Malformed,
    RateLimited,
    Reply,
    ServerError,
    Unauthorized,
)
from topics.settings import Settings

PROMPT = Prompt([{"role": "system", "content": "Explain."},
                 {"role": "user", "content": "FACTS:\n{\"x\": 1}"}], '{"x": 1}')


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _client(server: FakeOpenAI, tmp_path: Path, clock: Clock | None = None,
            waits: list[float] | None = None, calls: int = 100, **config: Any) -> LlmClient:
    values: dict[str, Any] = {"model": DEFAULT_MODEL, "base_url": server.url, "timeout": 5.0,
                                 "max_retries": 2, "max_output_tokens": 64}
    values.update(config)
    clock = clock or Clock()
    budget = DailyBudget(tmp_path / "budget.json", calls, 100_000, clock)
    sink = waits if waits is not None else []
    return LlmClient(ClientConfig(**values), server.api_key, budget, ExplainerMetrics(), clock,
                     sleep=sink.append)


def test_success_returns_text_model_and_usage(server: FakeOpenAI, tmp_path: Path) -> None:
    server.queue(Reply("Entry at 1."))
    completion = _client(server, tmp_path).complete(PROMPT)
    assert completion.text == "Entry at 1."
    assert completion.model == MODEL_SNAPSHOT
    assert completion.prompt_tokens > 0
    assert completion.completion_tokens > 0
    sent = server.chat_requests()[0]
    assert sent.body is not None
    assert sent.body["model"] == DEFAULT_MODEL
    assert sent.body["max_tokens"] == 64
    assert sent.body["messages"] == PROMPT.messages
    assert sent.headers["authorization"] == f"Bearer {server.api_key}"


def test_retry_after_ms_is_preferred_and_backoff_is_used_without_header(
        server: FakeOpenAI, tmp_path: Path) -> None:
    waits: list[float] = []
    server.queue(RateLimited(retry_after=3, retry_after_ms=250), ServerError(503), Reply("ok"))
    client = _client(server, tmp_path, waits=waits, backoff_base=0.5)
    assert client.complete(PROMPT).text == "ok"
    assert waits[0] == 0.25
    assert 0.5 <= waits[1] <= 1.0  # second attempt: 0.5 s x 2, jitter factor in [0.5, 1]
    assert len(server.chat_requests()) == 3


def test_retry_after_as_an_http_date_is_relative_to_the_clock(
        server: FakeOpenAI, tmp_path: Path) -> None:
    waits: list[float] = []
    clock = Clock()
    server.queue(RateLimited(retry_after=format_datetime(clock.now + timedelta(seconds=4),
                                                         usegmt=True)), Reply("ok"))
    assert _client(server, tmp_path, clock, waits).complete(PROMPT).text == "ok"
    assert waits == [4.0]


def test_a_retry_after_longer_than_the_cap_is_not_waited_for(
        server: FakeOpenAI, tmp_path: Path) -> None:
    waits: list[float] = []
    server.queue(RateLimited(retry_after=120))
    with pytest.raises(LlmUnavailable) as err:
        _client(server, tmp_path, waits=waits, retry_after_cap=30.0).complete(PROMPT)
    assert err.value.outcome == "rate_limited"
    assert waits == []
    assert len(server.chat_requests()) == 1


@pytest.mark.parametrize(("behaviour", "outcome"), [
    (RateLimited(code="insufficient_quota"), "quota_exceeded"),
    (Unauthorized(), "auth_error"),
    (Malformed(), "bad_response"),
    (Reply(""), "bad_response"),
])
def test_failures_that_waiting_cannot_fix_are_not_retried(
        server: FakeOpenAI, tmp_path: Path, behaviour: object, outcome: str) -> None:
    server.queue(behaviour)  # type: ignore[arg-type]
    with pytest.raises(LlmUnavailable) as err:
        _client(server, tmp_path).complete(PROMPT)
    assert err.value.outcome == outcome
    assert len(server.chat_requests()) == 1


def test_an_open_circuit_falls_back_without_calling_until_the_cooldown_ends(
        server: FakeOpenAI, tmp_path: Path) -> None:
    clock = Clock()
    client = _client(server, tmp_path, clock, max_retries=0, cooldown_seconds=30.0)
    server.queue(ServerError(500))
    with pytest.raises(LlmUnavailable):
        client.complete(PROMPT)
    with pytest.raises(LlmUnavailable) as err:
        client.complete(PROMPT)
    assert err.value.outcome == "circuit_open"
    assert len(server.chat_requests()) == 1
    clock.now += timedelta(seconds=31)
    server.queue(Reply("back"))
    assert client.complete(PROMPT).text == "back"


def test_every_attempt_counts_against_the_budget_and_stops_at_its_end(
        server: FakeOpenAI, tmp_path: Path) -> None:
    server.queue(ServerError(500), ServerError(500), Reply("never"))
    client = _client(server, tmp_path, calls=2)
    with pytest.raises(BudgetExhausted):
        client.complete(PROMPT)
    assert len(server.chat_requests()) == 2
    assert client.budget.usage().calls == 2


def test_check_connection_reports_online_or_invalid_key(server: FakeOpenAI) -> None:
    def settings(key: str | None) -> Settings:
        return Settings(OPENAI_API_KEY=key, OPENAI_BASE_URL=server.url)  # type: ignore[call-arg]

    good = check_connection(settings(server.api_key))
    bad = check_connection(settings("sk-wrong-0000000000000000"))
    missing = check_connection(settings(None))
    assert (good.ok, good.message, good.models) == (True, "AI online", (DEFAULT_MODEL,))
    assert (bad.ok, bad.message) == (False, "Invalid OpenAI API key")
    assert (missing.ok, missing.message) == (False, "No OpenAI API key configured")
    assert [r.path for r in server.requests] == ["/v1/models"] * 2
