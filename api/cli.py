"""The `ai-trader` command line.

Each sub-command is a small function taking the parsed arguments and the
settings; it prints a clear result and returns the exit code (0 ok, 1 refused or
failed, 2 bad usage). Validation happens before anything is published.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from topics.settings import Settings, get_settings

Handler = Callable[[argparse.Namespace, Settings], int]
log = logging.getLogger("ai_trader.cli")


class CliError(Exception):
    """A failure with a message for the user; no traceback is printed."""


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, default=str, indent=2))
    else:
        print(text)


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Create the catalog's topics and migrate the database (idempotent)."""
    from sinks.migrate import migrate
    from topics.bus import ensure_topics, wait_for_bus
    from topics.catalog import Catalog

    wait_for_bus(settings, timeout=args.timeout)
    topics = ensure_topics(settings, Catalog(settings.topic_prefix))
    db = migrate(settings)
    data = {
        "topics_created": topics.created,
        "topics_existing": len(topics.existing),
        "migrations_applied": db.applied,
        "timescaledb": db.timescale,
    }
    _emit(
        args,
        data,
        f"topics: {len(topics.created)} created, {len(topics.existing)} already there\n"
        f"database: {len(db.applied)} migrations applied, "
        f"timescaledb {'on' if db.timescale else 'not available (plain PostgreSQL)'}",
    )
    return 0


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    """List the topic catalog, or create the topics (`ensure`)."""
    from topics.catalog import Catalog

    catalog = Catalog(settings.topic_prefix)
    if args.action == "ensure":
        from topics.bus import ensure_topics

        report = ensure_topics(settings, catalog)
        _emit(args, report.__dict__, f"{len(report.created)} created, "
                                     f"{len(report.existing)} already there")
        return 0
    rows = [
        {
            "topic": catalog.name(spec.name),
            "key": spec.key,
            "value": spec.value_schema,
            "partitions": spec.partitions,
            "policy": "compact" if spec.compacted else "delete",
            "retention_days": spec.retention_ms / 86_400_000 if spec.retention_ms > 0 else None,
            "dlq": catalog.dlq(spec.name),
        }
        for spec in catalog
    ]
    lines = [
        f"{r['topic']:<28} key={r['key']:<12} {r['partitions']}p {r['policy']:<8} {r['value']}"
        for r in rows
    ]
    _emit(args, rows, "\n".join(lines))
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the database migrations."""
    from sinks.migrate import migrate

    report = migrate(settings)
    _emit(args, report.__dict__, f"{len(report.applied)} migrations applied "
                                 f"(timescaledb {'on' if report.timescale else 'off'})")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings with every secret masked."""
    data = settings.redacted()
    _emit(args, data, "\n".join(f"{k} = {v}" for k, v in sorted(data.items())))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run every process of the stack until Ctrl-C."""
    from api.supervisor import AlreadyRunning, Supervisor, services

    # Only the processes whose sub-command exists yet; the UI runs under streamlit.
    svcs = [s for s in services(settings, with_ui=not args.no_ui)
            if s.name == "ui" or s.name in all_commands()]
    try:
        return Supervisor(settings, svcs).run()
    except AlreadyRunning as exc:
        raise CliError(str(exc)) from exc


COMMANDS: dict[str, tuple[Handler, str]] = {
    "setup": (cmd_setup, "create topics and migrate the database"),
    "topics": (cmd_topics, "list or create the catalog's topics"),
    "db": (cmd_db, "database migrations"),
    "config": (cmd_config, "show the effective settings (secrets masked)"),
    "run": (cmd_run, "run the whole stack until Ctrl-C"),
}


#: Modules that add sub-commands: each has SUBCOMMANDS = {name: (handler, help, configure)},
#: where configure(parser) declares the sub-command's arguments.
EXTENSIONS: tuple[str, ...] = ("connectors.cli", "streams.cli", "streams.explainer.cli",
                               "api.cli_control", "sinks.cli", "streams.audit_cli")

Configure = Callable[[argparse.ArgumentParser], None]
VERBOSE_HELP = ("log at LOG_LEVEL (status, ideas, approve, reject, kill, resume, risk, "
                "strategy and user log warnings only by default)")


def _configure_builtin(name: str, p: argparse.ArgumentParser) -> None:
    if name == "setup":
        p.add_argument("--timeout", type=float, default=60.0)
    if name == "topics":
        p.add_argument("action", choices=["list", "ensure"], nargs="?", default="list")
    if name == "db":
        p.add_argument("action", choices=["migrate"])
    if name == "run":
        p.add_argument("--no-ui", action="store_true")


def all_commands() -> dict[str, tuple[Handler, str, Configure | None]]:
    """The built-in sub-commands and those of every extension module."""
    out: dict[str, tuple[Handler, str, Configure | None]] = {
        name: (handler, help_text, None) for name, (handler, help_text) in COMMANDS.items()
    }
    for module in EXTENSIONS:
        out.update(importlib.import_module(module).SUBCOMMANDS)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="ai-trader", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text, configure) in all_commands().items():
        p = sub.add_parser(name, help=help_text)
        # SUPPRESS: without it the sub-command's default (False) would overwrite a
        # `ai-trader --json CMD` given before the sub-command.
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable output")
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help=VERBOSE_HELP)
        _configure_builtin(name, p)
        if configure is not None:
            configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ai-trader` console script."""
    from api.cli_control import CONSOLE
    from topics.logs import configure_logging

    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(f"cli.{args.command}", settings,
                      quiet=args.command in CONSOLE and not args.verbose)
    handler = all_commands()[args.command][0]
    try:
        return handler(args, settings)
    except CliError as exc:
        print(f"ai-trader {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: a message, not a traceback
        log.exception("command failed")
        print(f"ai-trader {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
