"""From a subject to an `ai_trader.llm.Explanation` record: ask, check, or fall back.

The record is always produced. Status `ok` carries the model's text, which passed the
number guard; status `fallback` carries the deterministic rationale, marked
"LLM unavailable, fallback rationale", with the reason in `error`:

- `OPENAI_UNAVAILABLE`: no key, timeout, rate limit, server error, bad key, malformed
  response, or the circuit is open after such a failure (blueprint §9.5);
- `budget_exhausted`: today's call or token budget is used;
- `number_not_in_facts`: the model wrote a number it was not given; its text is
  discarded and counted in `ai_trader_explainer_fallbacks_total{error="number_not_in_facts"}`.

Nothing here can change a number, a status or a command: the only output is this
text record, on its own topic.
"""

from __future__ import annotations

import logging
from typing import Any

from streams.explainer.budget import Clock
from streams.explainer.client import BudgetExhausted, Completion, LlmClient, LlmUnavailable
from streams.explainer.facts import Subject
from streams.explainer.guard import check_numbers, index_facts
from streams.explainer.metrics import ExplainerMetrics
from streams.explainer.prompt import build_prompt, clean_text, trim_cut_sentence

log = logging.getLogger(__name__)

OPENAI_UNAVAILABLE = "OPENAI_UNAVAILABLE"
NUMBER_NOT_IN_FACTS = "number_not_in_facts"
BUDGET_EXHAUSTED = "budget_exhausted"
FALLBACK_MARK = "LLM unavailable, fallback rationale"


def fallback_text(rationale: str, error: str) -> str:
    """The deterministic rationale, marked as the fallback (§9.5), with the reason code."""
    return f"{FALLBACK_MARK} ({error}): {rationale}"


class Explainer:
    """Builds the prompt, calls the model through `LlmClient`, guards and records the text."""

    def __init__(self, client: LlmClient, metrics: ExplainerMetrics, clock: Clock) -> None:
        self.client = client
        self.metrics = metrics
        self.clock = clock

    def explain(self, subject: Subject) -> dict[str, Any]:
        """The Explanation record for `subject` (never raises for a model failure)."""
        prompt = build_prompt(subject)
        try:
            completion = self.client.complete(prompt)
        except BudgetExhausted:
            return self._fallback(subject, BUDGET_EXHAUSTED, "budget_exhausted")
        except LlmUnavailable as exc:
            return self._fallback(subject, OPENAI_UNAVAILABLE, exc.outcome)
        text = completion.text
        if completion.finish_reason == "length":
            text = trim_cut_sentence(text)
        text = clean_text(text, subject.kind)
        if not text:
            return self._fallback(subject, OPENAI_UNAVAILABLE, "empty_text", completion)
        verdict = check_numbers(text, index_facts(prompt.facts_text))
        if not verdict.ok:
            return self._fallback(subject, NUMBER_NOT_IN_FACTS, "number_not_in_facts",
                                  completion, unsupported=verdict.unsupported)
        return self._record(subject, "ok", text, None, completion)

    def _fallback(self, subject: Subject, error: str, reason: str,
                  completion: Completion | None = None,
                  unsupported: tuple[str, ...] = ()) -> dict[str, Any]:
        self.metrics.fallbacks.labels(error).inc()
        extra: dict[str, Any] = {"reason": reason}
        if unsupported:
            # what the model invented (its own words, never a secret), for the operator
            extra["unsupported"] = list(unsupported[:10])
        return self._record(subject, "fallback", fallback_text(subject.rationale, error), error,
                            completion, extra)

    def _record(self, subject: Subject, status: str, text: str, error: str | None,
                completion: Completion | None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        self.metrics.explanations.labels(subject.kind, status).inc()
        record = {
            "explanation_id": subject.explanation_id,
            "subject_kind": subject.kind,
            "subject_id": subject.subject_id,
            "account": subject.account,
            "status": status,
            "text": text,
            "model": None if completion is None else completion.model,
            "error": error,
            "prompt_tokens": 0 if completion is None else completion.prompt_tokens,
            "completion_tokens": 0 if completion is None else completion.completion_tokens,
            "created_at": self.clock(),
        }
        usage = self.client.budget.usage()
        log.info(
            "explanation %s for %s %s (calls %d/%d, tokens %d/%d today)",
            status if error is None else f"{status} {error}", subject.kind, subject.subject_id,
            usage.calls, usage.call_limit, usage.tokens, usage.token_limit,
            extra={
                f"{subject.kind}_id": subject.subject_id,
                "explanation_id": subject.explanation_id,
                "status": status,
                "error": error,
                # one nested object: top-level keys named like "token" are redacted by the
                # log formatter, and budget figures are not secrets
                "llm_budget": usage.to_dict(),
                **(extra or {}),
            },
        )
        return record
