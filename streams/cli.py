"""`ai-trader worker`: the Faust streams worker (indicators, strategies, gate)."""

from __future__ import annotations

import argparse

from topics.settings import Settings


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the streams worker until stopped."""
    from streams.app import run_worker

    return run_worker(settings)


SUBCOMMANDS = {
    "worker": (cmd_worker, "run the streams worker (indicators, strategies, gate)", None),
}
