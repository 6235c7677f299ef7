"""`ai-trader explainer`: run the explainer, show today's LLM budget, or test the key."""

from __future__ import annotations

import argparse
import json

from topics.settings import Settings


def cmd_explainer(args: argparse.Namespace, settings: Settings) -> int:
    """Run the explainer process; `--status` prints the budget, `--check` tests the key."""
    if args.status:
        return _status(args, settings)
    if args.check:
        return _check(args, settings)
    from streams.explainer.service import run_explainer

    return run_explainer(settings)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from streams.explainer.budget import DailyBudget
    from streams.explainer.service import budget_path, utc_now

    usage = DailyBudget(budget_path(settings), settings.llm_daily_call_budget,
                        settings.llm_daily_token_budget, utc_now).usage()
    data = {
        "model": settings.openai_model,
        "base_url": settings.openai_base_url or "https://api.openai.com/v1",
        "api_key_configured": settings.openai_api_key is not None,
        "budget": usage.to_dict(),
        "budget_file": str(budget_path(settings)),
    }
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"model      {data['model']} at {data['base_url']} "
              f"(key {'set' if data['api_key_configured'] else 'NOT set: fallback only'})")
        print(f"budget     {usage.day} UTC: calls {usage.calls}/{usage.call_limit}, "
              f"tokens {usage.tokens}/{usage.token_limit} "
              f"(prompt {usage.prompt_tokens}, completion {usage.completion_tokens})"
              + (" - EXHAUSTED" if usage.exhausted else ""))
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from api.cli import CliError
    from streams.explainer.client import check_connection

    result = check_connection(settings)
    if args.json:
        print(json.dumps({"status": "ok" if result.ok else "error", "message": result.message,
                          "models": list(result.models)}, indent=2))
    elif result.ok:
        print(result.message)
    if not result.ok:
        raise CliError(result.message)
    return 0


def _configure(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--status", action="store_true",
                       help="print today's LLM call/token use and exit")
    group.add_argument("--check", action="store_true",
                       help="test the OpenAI key and server (GET /models) and exit")


SUBCOMMANDS = {
    "explainer": (cmd_explainer, "LLM explanations of ideas and decisions (off the "
                                 "execution path)", _configure),
}
