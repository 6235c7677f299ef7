"""Prometheus metrics of a sink service (each service has its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    """Lag per topic, records consumed, rows written, batch latency, database health."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lag = Gauge("sink_lag_records",
                         "Records on the bus not yet written to the database", ["topic"],
                         registry=r)
        self.consumed = Counter("sink_records_consumed", "Records consumed", ["topic"],
                                registry=r)
        self.rows = Counter("sink_rows_written",
                            "Rows inserted or updated (re-deliveries write nothing)", ["table"],
                            registry=r)
        self.batch_seconds = Histogram(
            "sink_batch_seconds", "Time to write and commit one batch (database + offsets)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.batch_records = Histogram(
            "sink_batch_records", "Records per committed batch",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000), registry=r)
        self.db_errors = Counter("sink_db_errors",
                                 "Failed write attempts (the batch is retried with backoff)",
                                 registry=r)
        self.db_up = Gauge("sink_database_up", "1 when the last write attempt succeeded",
                           registry=r)
        self.dead_letters = Counter("sink_dead_letters",
                                    "Records the sink sent to a dead-letter topic",
                                    ["topic", "stage"], registry=r)
