-- Applied only when CREATE EXTENSION timescaledb succeeded. Placeholders in braces come
-- from the settings (TIMESCALE_COMPRESS_AFTER_DAYS, TIMESCALE_RETENTION_DAYS).
SELECT create_hypertable('snapshot_market', 'open_time', if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('snapshot_indicators', 'open_time', if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('snapshot_account', 'captured_at', if_not_exists => TRUE, migrate_data => TRUE);

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
SELECT add_compression_policy('snapshot_market', INTERVAL '{compress_after_days} days', if_not_exists => TRUE);
SELECT add_compression_policy('snapshot_indicators', INTERVAL '{compress_after_days} days', if_not_exists => TRUE);
SELECT add_retention_policy('snapshot_market', INTERVAL '{retention_days} days', if_not_exists => TRUE);
SELECT add_retention_policy('snapshot_indicators', INTERVAL '{retention_days} days', if_not_exists => TRUE);
SELECT add_retention_policy('snapshot_account', INTERVAL '{retention_days} days', if_not_exists => TRUE);
