"""The model behind the explanations: the official `openai` client, with our own retry loop.

The SDK's retries are off (`max_retries=0`) so that every HTTP attempt passes the daily
budget first and is counted, and so the waits are ours to bound:

- retried (at most `OPENAI_MAX_RETRIES` times): 429 `rate_limit_exceeded`, 408, 409,
  5xx, timeouts and connection errors. The wait is the server's `retry-after-ms` /
  `retry-after` (seconds or an HTTP date) when given, else exponential backoff with
  jitter. A server asking for more than `retry_after_cap` seconds is not waited for:
  the explanation falls back at once (the gate never waits, and neither does the
  queue of explanations behind this one).
- not retried: 401/403 (bad key), other 4xx, 429 `insufficient_quota` (waiting does not
  add credit), and a 200 whose body is not a chat completion (malformed JSON, no text).

After a subject ends without text for one of these reasons, a circuit opens for
`cooldown_seconds` (doubling on repeated failures, 5 minutes after an auth error):
while it is open the explainer falls back without calling, so an outage costs one
timeout, not one per record.

The API key lives in the SDK client only; it is never logged (errors are logged by
class, status and OpenAI's error code, never with the response body or headers).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from streams.explainer.budget import Clock, DailyBudget
from streams.explainer.metrics import ExplainerMetrics
from streams.explainer.prompt import Prompt
from topics.settings import Settings

log = logging.getLogger(__name__)

#: Waits between retries; returning True (as `threading.Event.wait` does when the event is
#: set) means "stop now".
Sleep = Callable[[float], object]
MAX_COOLDOWN = 300.0


class LlmUnavailable(Exception):
    """The model gave no usable text (`outcome` says why: timeout, rate_limited, ...)."""

    def __init__(self, outcome: str, attempts: int) -> None:
        super().__init__(f"{outcome} after {attempts} attempt(s)")
        self.outcome = outcome
        self.attempts = attempts


class BudgetExhausted(Exception):
    """Today's call or token budget does not allow another call."""


class Interrupted(Exception):
    """The process is stopping: a retry wait was cut short (the record is not explained)."""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How the client talks to the model (from settings; tests shorten the waits)."""

    model: str
    base_url: str | None
    timeout: float
    max_retries: int
    max_output_tokens: int
    retry_after_cap: float = 30.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    cooldown_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ClientConfig:
        """The configuration the settings describe."""
        values: dict[str, Any] = {
            "model": settings.openai_model,
            "base_url": settings.openai_base_url,
            "timeout": settings.openai_timeout_seconds,
            "max_retries": settings.openai_max_retries,
            "max_output_tokens": settings.llm_max_output_tokens,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Completion:
    """The model's answer and what it cost."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class _Failure:
    outcome: str
    retryable: bool
    wait: float | None = None  # the server's Retry-After, when it sent one
    billed: bool = False  # the server may have done (and charged) the work


def openai_client(api_key: str, config: ClientConfig) -> openai.OpenAI:
    """The SDK client: our timeout, no SDK retries."""
    return openai.OpenAI(
        api_key=api_key,
        base_url=config.base_url or None,
        max_retries=0,
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0)),
    )


class LlmClient:
    """Chat completions with budget, bounded retries and a circuit breaker."""

    def __init__(
        self,
        config: ClientConfig,
        api_key: str | None,
        budget: DailyBudget,
        metrics: ExplainerMetrics,
        clock: Clock,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.budget = budget
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._client = openai_client(api_key, config) if api_key else None
        self._failures = 0
        self._open_until: datetime | None = None

    @property
    def configured(self) -> bool:
        """An API key is set."""
        return self._client is not None

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            self._client.close()

    # --------------------------------------------------------------------------- circuit

    def circuit_open(self) -> bool:
        """True while a recent failure says not to call."""
        return self._open_until is not None and self.clock() < self._open_until

    def _trip(self, outcome: str) -> None:
        self._failures += 1
        if outcome == "auth_error":
            seconds = MAX_COOLDOWN
        else:
            seconds = min(MAX_COOLDOWN, self.config.cooldown_seconds * 2 ** (self._failures - 1))
        self._open_until = self.clock() + timedelta(seconds=seconds)
        log.warning("llm unavailable (%s): falling back without calls for %.0fs",
                    outcome, seconds, extra={"outcome": outcome, "cooldown_s": seconds})

    # ------------------------------------------------------------------------------ call

    def complete(self, prompt: Prompt) -> Completion:
        """The model's text for `prompt`; raises `LlmUnavailable` or `BudgetExhausted`."""
        if self._client is None:
            raise LlmUnavailable("no_api_key", 0)
        if self.circuit_open():
            raise LlmUnavailable("circuit_open", 0)
        estimate = prompt.chars // 3 + self.config.max_output_tokens
        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            usage = self.budget.reserve(estimate)
            if usage is None:
                self.metrics.budget(self.budget.usage())
                raise BudgetExhausted(f"daily LLM budget used: {self.budget.usage().to_dict()}")
            self.metrics.budget(usage)
            result = self._attempt(self._client, prompt, estimate, attempt)
            if isinstance(result, Completion):
                self._failures, self._open_until = 0, None
                return result
            if not result.retryable or attempt == attempts:
                self._trip(result.outcome)
                raise LlmUnavailable(result.outcome, attempt)
            wait = self._wait(result, attempt)
            if wait is None:
                self._trip(result.outcome)
                raise LlmUnavailable(result.outcome, attempt)
            log.info("llm %s: retry %d/%d in %.2fs", result.outcome, attempt,
                     self.config.max_retries, wait, extra={"outcome": result.outcome})
            if self.sleep(wait) is True:
                raise Interrupted()
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, failure: _Failure, attempt: int) -> float | None:
        if failure.wait is not None:
            if failure.wait > self.config.retry_after_cap:
                log.warning("llm asks to wait %.0fs (cap %.0fs): not waiting",
                            failure.wait, self.config.retry_after_cap)
                return None
            return max(0.0, failure.wait)
        backoff = min(self.config.backoff_cap, self.config.backoff_base * 2 ** (attempt - 1))
        return backoff * self.rng.uniform(0.5, 1.0)

    def _attempt(self, client: openai.OpenAI, prompt: Prompt, estimate: int,
                 attempt: int) -> Completion | _Failure:
        started = time.monotonic()
        try:
            response = client.chat.completions.create(
                model=self.config.model,
                messages=cast(list[ChatCompletionMessageParam], prompt.messages),
                max_tokens=self.config.max_output_tokens,
            )
        except Exception as exc:  # noqa: BLE001 - classified below; anything else re-raised
            failure = self._classify(exc)
            self.metrics.llm_requests.labels(failure.outcome).inc()
            self._spend(estimate if failure.billed else 0, 0)
            log.warning("llm attempt %d failed: %s", attempt, failure.outcome,
                        extra={"outcome": failure.outcome, "error_class": type(exc).__name__,
                               "status": getattr(exc, "status_code", None),
                               "error_code": getattr(exc, "code", None)})
            return failure
        elapsed = time.monotonic() - started
        return self._completion(response, estimate, attempt, elapsed)

    def _completion(self, response: Any, estimate: int, attempt: int,
                    elapsed: float) -> Completion | _Failure:
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            prompt_tokens, completion_tokens = estimate - self.config.max_output_tokens, (
                self.config.max_output_tokens)
        self._spend(prompt_tokens, completion_tokens)
        try:
            choice = response.choices[0]
            text = choice.message.content
        except (AttributeError, IndexError, TypeError):
            text, choice = None, None
        if not isinstance(text, str) or not text.strip():
            self.metrics.llm_requests.labels("bad_response").inc()
            log.warning("llm attempt %d: no text in the response", attempt)
            return _Failure("bad_response", retryable=False)
        self.metrics.llm_requests.labels("ok").inc()
        self.metrics.latency.observe(elapsed)
        model = getattr(response, "model", None)
        return Completion(text=text, model=model if isinstance(model, str) else self.config.model,
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          finish_reason=getattr(choice, "finish_reason", None), attempts=attempt)

    def _spend(self, prompt_tokens: int, completion_tokens: int) -> None:
        usage = self.budget.spend(prompt_tokens, completion_tokens)
        self.metrics.tokens.labels("prompt").inc(max(0, prompt_tokens))
        self.metrics.tokens.labels("completion").inc(max(0, completion_tokens))
        self.metrics.budget(usage)

    def _classify(self, exc: Exception) -> _Failure:
        if isinstance(exc, openai.APITimeoutError):
            return _Failure("timeout", retryable=True, billed=True)
        if isinstance(exc, openai.APIConnectionError):
            return _Failure("connection_error", retryable=True)
        if isinstance(exc, openai.APIStatusError):
            return self._status_failure(exc)
        if isinstance(exc, ValueError | openai.APIResponseValidationError):
            return _Failure("bad_response", retryable=False, billed=True)
        if isinstance(exc, openai.OpenAIError):
            return _Failure("client_error", retryable=False)
        raise exc

    def _status_failure(self, exc: openai.APIStatusError) -> _Failure:
        status = exc.status_code
        if status == 429:
            if exc.code == "insufficient_quota":
                return _Failure("quota_exceeded", retryable=False)
            return _Failure("rate_limited", retryable=True, wait=self._retry_after(exc.response))
        if status in (401, 403):
            return _Failure("auth_error", retryable=False)
        if status >= 500 or status in (408, 409):
            return _Failure("server_error", retryable=True, wait=self._retry_after(exc.response))
        return _Failure("client_error", retryable=False)

    def _retry_after(self, response: httpx.Response) -> float | None:
        headers = response.headers
        try:
            return float(headers["retry-after-ms"]) / 1000
        except (KeyError, ValueError):
            pass
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            pass
        try:
            at = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (at - self.clock()).total_seconds())


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """Result of `check_connection` (blueprint §6.7: never a raw 404)."""

    ok: bool
    message: str
    models: tuple[str, ...] = ()


def check_connection(settings: Settings) -> ConnectionCheck:
    """Is the key valid and the server reachable? One `GET /models` call, outside the budget."""
    key = settings.openai_api_key
    if key is None or not key.get_secret_value().strip():
        return ConnectionCheck(False, "No OpenAI API key configured")
    client = openai_client(key.get_secret_value(), ClientConfig.from_settings(settings))
    try:
        models = tuple(m.id for m in client.models.list().data)
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        return ConnectionCheck(False, "Invalid OpenAI API key")
    except openai.APIStatusError as exc:
        return ConnectionCheck(False, f"AI unavailable: HTTP {exc.status_code}")
    except (openai.APIError, ValueError) as exc:
        return ConnectionCheck(False, f"AI unreachable: {type(exc).__name__}")
    finally:
        client.close()
    if settings.openai_model not in models:
        return ConnectionCheck(True, f"AI online (model {settings.openai_model} not listed)",
                               models)
    return ConnectionCheck(True, "AI online", models)
