"""Sub-commands of the connector processes: `ai-trader feeds` and `ai-trader broker`."""

from __future__ import annotations

import argparse
import os

from topics.settings import Settings

#: The demo feed's timeframes unless MARKET_TIMEFRAMES says otherwise: the shipped
#: strategies trade M5, M15 and H1, so an M1-only demo would never propose anything.
DEMO_TIMEFRAMES = ["M1", "M5", "M15", "H1"]


def cmd_feeds(args: argparse.Namespace, settings: Settings) -> int:
    """Run the market, calendar, news feeds until stopped."""
    from connectors.service import run_feeds

    if args.demo and "MARKET_TIMEFRAMES" not in os.environ:
        settings = settings.model_copy(update={"market_timeframes": DEMO_TIMEFRAMES})
    return run_feeds(settings, demo=args.demo)


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the broker service: account snapshots and order execution."""
    from connectors.service import run_broker

    return run_broker(settings)


def _feeds_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true",
                   help="synthetic market plus demo calendar and news (no network)")


SUBCOMMANDS = {
    "feeds": (cmd_feeds, "run the market, calendar and news feeds", _feeds_args),
    "broker": (cmd_broker, "run the broker service (account, orders)", None),
}
