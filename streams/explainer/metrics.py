"""Prometheus metrics of the explainer, in their own registry (one per explainer).

Served by `ai-trader explainer` on `EXPLAINER_METRICS_PORT` (`/metrics`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.explainer.budget import BudgetUsage


class ExplainerMetrics:
    """Counters for explanations, fallbacks, HTTP attempts, tokens; gauges for the budget."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.explanations = Counter(
            "ai_trader_explainer_explanations", "Explanations published, by subject and status",
            ["subject_kind", "status"], registry=r)
        self.fallbacks = Counter(
            "ai_trader_explainer_fallbacks",
            "Explanations where the deterministic rationale stands, by error "
            "(OPENAI_UNAVAILABLE, number_not_in_facts, budget_exhausted)", ["error"], registry=r)
        self.llm_requests = Counter(
            "ai_trader_explainer_llm_requests", "HTTP attempts to the model, by outcome",
            ["outcome"], registry=r)
        self.tokens = Counter(
            "ai_trader_explainer_llm_tokens", "Tokens counted against the budget",
            ["kind"], registry=r)
        self.skipped = Counter(
            "ai_trader_explainer_skipped", "Input records not explained, by reason",
            ["reason"], registry=r)
        self.latency = Histogram(
            "ai_trader_explainer_llm_latency_seconds", "Duration of successful model calls",
            buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32), registry=r)
        self.calls_used = Gauge("ai_trader_explainer_budget_calls_used",
                                "LLM calls used today (UTC)", registry=r)
        self.calls_limit = Gauge("ai_trader_explainer_budget_calls_limit",
                                 "LLM calls allowed per day", registry=r)
        self.tokens_used = Gauge("ai_trader_explainer_budget_tokens_used",
                                 "LLM tokens used today (UTC)", registry=r)
        self.tokens_limit = Gauge("ai_trader_explainer_budget_tokens_limit",
                                  "LLM tokens allowed per day", registry=r)

    def budget(self, usage: BudgetUsage) -> None:
        """Publish the budget's current use."""
        self.calls_used.set(usage.calls)
        self.calls_limit.set(usage.call_limit)
        self.tokens_used.set(usage.tokens)
        self.tokens_limit.set(usage.token_limit)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when never set), for tests and `--status`."""
        return self.registry.get_sample_value(name, labels) or 0.0
