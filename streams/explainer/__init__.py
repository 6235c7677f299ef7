"""LLM explanations of ideas and decisions, never on the execution path (issue 9).

A separate consumer process (`ai-trader explainer`) turns each idea and each decision
into an `explanations.v1` record: the model's text when it passes the number guard,
else the deterministic rationale marked as the fallback. Nothing in the decision core
or the gate imports this package.

- `facts`: the structured facts of a subject, from the records on the bus
- `prompt`: the chat messages, and the clean-up of the answer
- `guard`: every number in the answer must be one of the facts
- `budget`: calls and tokens per UTC day, shared through a file
- `client`: the `openai` client with bounded retries, Retry-After, a circuit breaker
- `agent`: subject -> Explanation record (ok or fallback)
- `service`: the consumer loop and `run_explainer`
- `cli`: `ai-trader explainer [--status | --check]`
"""
