"""Sub-commands of the sinks: `ai-trader sinks [run|lag]` and `ai-trader audit verify`."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from dataclasses import asdict
from typing import Any

from topics.settings import Settings
from topics.signals import stop_on_signals

log = logging.getLogger(__name__)

#: The worker serves AI_TRADER_METRICS_PORT (9108), the explainer 9109: the sinks take 9110.
DEFAULT_METRICS_PORT = 9110


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, default=str, indent=2) if getattr(args, "json", False) else text)


def _group(args: argparse.Namespace, settings: Settings) -> str:
    return args.group or f"{settings.topic_prefix}ai-trader-sinks"


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import start_http_server

    from sinks.metrics import SinkMetrics
    from sinks.service import SinkConfig, run_sinks

    metrics = SinkMetrics()
    port = args.metrics_port
    if port:
        try:
            start_http_server(port, addr=args.metrics_host, registry=metrics.registry)
            log.info("metrics on http://%s:%s/metrics", args.metrics_host, port)
        except OSError as exc:  # the sink matters more than its metrics
            log.warning("metrics port %s not available: %s", port, exc)
    config = SinkConfig(group_id=_group(args, settings), max_batch=args.batch)
    stop = threading.Event()
    with stop_on_signals(stop):
        return run_sinks(settings, stop, config, metrics)


def _lag(args: argparse.Namespace, settings: Settings) -> int:
    from confluent_kafka import Consumer

    from sinks.lag import group_lag
    from topics.bus import admin_client, consumer_config
    from topics.catalog import Catalog

    group = _group(args, settings)
    consumer = Consumer(consumer_config(settings, group))  # never subscribes: reads only
    try:
        lags = group_lag(consumer, admin_client(settings), Catalog(settings.topic_prefix))
    finally:
        consumer.close()
    shown = [lag for lag in lags if args.all or lag.high_watermark > 0]
    total = sum(lag.lag for lag in lags)
    lines = [f"{'topic':<34} {'lag':>10} {'committed':>12} {'end':>12}"]
    lines += [f"{lag.topic:<34} {lag.lag:>10} {lag.committed:>12} {lag.high_watermark:>12}"
              for lag in shown]
    lines.append(f"{'total':<34} {total:>10}   (group {group})")
    _emit(args, {"group": group, "total": total, "topics": [asdict(x) for x in shown]},
          "\n".join(lines))
    return 0


def cmd_sinks(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sink service (`run`, the default) or print its lag per topic (`lag`)."""
    return _lag(args, settings) if args.action == "lag" else _run(args, settings)


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the decision hash chains; exit 1 on the first break of any account."""
    from sinks.audit import describe, missing_from_database, verify_database, verify_topic
    from topics.catalog import Catalog

    database = verify_database(settings, args.account)
    lines = describe(database)
    data: dict[str, Any] = {"database": _chain_data(database)}
    ok = database.ok
    if args.from_topics:
        topic = verify_topic(settings, Catalog(settings.topic_prefix), args.account)
        lines += describe(topic)
        missing = missing_from_database(database, topic)
        lines += [f"account {name}: {n} decisions in the topic are not in the database"
                  for name, n in sorted(missing.items())]
        data["topic"] = _chain_data(topic)
        data["missing_from_database"] = missing
        ok = ok and topic.ok
    data["ok"] = ok
    _emit(args, data, "\n".join(lines))
    return 0 if ok else 1


def _chain_data(chains: Any) -> list[dict[str, Any]]:
    return [{"account": r.account, "verified": r.verified, "head": r.head,
             "redelivered": r.redelivered,
             "first_break": None if r.first_break is None else {
                 "decision_id": r.first_break.decision_id, "problem": r.first_break.problem}}
            for r in chains.reports]


def _sinks_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["run", "lag"], nargs="?", default="run",
                   help="run the service (default) or print the lag per topic")
    p.add_argument("--group", help="consumer group (default: <topic prefix>ai-trader-sinks)")
    p.add_argument("--batch", type=int, default=10_000, help="records per transaction at most")
    p.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT,
                   help=f"Prometheus port (default {DEFAULT_METRICS_PORT}; 0 = off)")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--all", action="store_true", help="lag: also list empty topics")


def _audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["verify"])
    p.add_argument("--account", help="only this account")
    p.add_argument("--from-topics", action="store_true",
                   help="also walk decisions.log.v1 and compare it with the database")


SUBCOMMANDS = {
    "sinks": (cmd_sinks, "write every topic into the database (or: sinks lag)", _sinks_args),
    "audit": (cmd_audit, "verify the decision hash chains (audit verify)", _audit_args),
}
