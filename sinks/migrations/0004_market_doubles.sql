-- Market observations as the doubles the feeds sent and the AI computed on.
--
-- Candles arrive as Avro doubles and indicators are computed in doubles; NUMERIC(18,6)
-- (and NUMERIC(8,4) for the RSI) rounded them, so the database did not hold what the AI
-- saw: an RSI of 39.99996 stored as 40.0000, a price with 8 decimals cut to 6. Double
-- precision keeps every value bit for bit, compresses better in TimescaleDB (Gorilla
-- instead of the generic numeric path) and costs the sink about 2 us less per row.
-- Money (balances, P/L, lots, risk limits) stays NUMERIC.
DO $$
DECLARE
    compressed BIGINT := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE 'SELECT count(*) FROM timescaledb_information.hypertables'
                ' WHERE hypertable_name IN (''snapshot_market'', ''snapshot_indicators'')'
                ' AND compression_enabled' INTO compressed;
    END IF;
    IF compressed > 0 THEN
        RAISE EXCEPTION 'snapshot_market/snapshot_indicators have TimescaleDB compression '
            'enabled: decompress their chunks and ALTER TABLE ... SET '
            '(timescaledb.compress = false) before migration 0004, then start again';
    END IF;
END $$;

ALTER TABLE snapshot_market
    ALTER COLUMN open   TYPE DOUBLE PRECISION,
    ALTER COLUMN high   TYPE DOUBLE PRECISION,
    ALTER COLUMN low    TYPE DOUBLE PRECISION,
    ALTER COLUMN close  TYPE DOUBLE PRECISION,
    ALTER COLUMN spread TYPE DOUBLE PRECISION;

ALTER TABLE snapshot_indicators
    ALTER COLUMN close          TYPE DOUBLE PRECISION,
    ALTER COLUMN rsi_14         TYPE DOUBLE PRECISION,
    ALTER COLUMN sma_50         TYPE DOUBLE PRECISION,
    ALTER COLUMN sma_200        TYPE DOUBLE PRECISION,
    ALTER COLUMN atr            TYPE DOUBLE PRECISION,
    ALTER COLUMN pct_move_today TYPE DOUBLE PRECISION,
    ALTER COLUMN spread         TYPE DOUBLE PRECISION;
