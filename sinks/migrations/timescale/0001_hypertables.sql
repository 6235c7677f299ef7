-- Applied only when CREATE EXTENSION timescaledb succeeded (after every base migration).
-- Hypertables for the time-series tables: each one's primary key holds its time column.
-- Compression and retention policies follow the settings (TIMESCALE_COMPRESS_AFTER_DAYS,
-- TIMESCALE_RETENTION_DAYS) and are kept in step on every start by sinks/timescale.py,
-- so changing a setting never edits an applied migration.
-- decision_history stays a plain table: it is kept forever and is append-only.
SELECT create_hypertable('snapshot_market', 'open_time',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('snapshot_indicators', 'open_time',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('snapshot_account', 'captured_at',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('snapshot_calendar', 'captured_at',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('snapshot_news', 'published_at',
                         if_not_exists => TRUE, migrate_data => TRUE);

ALTER TABLE snapshot_market SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'symbol, timeframe',
    timescaledb.compress_orderby = 'open_time DESC'
);
ALTER TABLE snapshot_indicators SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'symbol, timeframe',
    timescaledb.compress_orderby = 'open_time DESC'
);
ALTER TABLE snapshot_account SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'account',
    timescaledb.compress_orderby = 'captured_at DESC'
);
