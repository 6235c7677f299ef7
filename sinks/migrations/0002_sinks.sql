-- What the sinks (sinks/service.py) need on top of the base schema: the fields the
-- streaming records carry that 0001 has no column for, the status history of ideas,
-- the sink's lag, the daily P/L view, and the indexes of blueprint §5 and §10.2.

-- The gate may run without a daily target (RiskConfig.daily_profit_target is optional).
ALTER TABLE risk_config ALTER COLUMN daily_profit_target DROP NOT NULL;

-- Candle v2: a forming bar is re-sent until it closes; a closed bar is never replaced by a
-- forming one (the sink's upsert guard).
ALTER TABLE snapshot_market ADD COLUMN closed BOOLEAN NOT NULL DEFAULT TRUE;
-- blueprint §5.1.3 / §5.1.4
CREATE INDEX snapshot_market_symbol_captured
    ON snapshot_market (symbol, timeframe, captured_at DESC);
CREATE INDEX snapshot_indicators_symbol_captured
    ON snapshot_indicators (symbol, timeframe, captured_at DESC);

ALTER TABLE snapshot_account ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE snapshot_account ADD COLUMN reconciled BOOLEAN NOT NULL DEFAULT TRUE;

-- Ideas: `status` keeps the blueprint's enum; `pipeline_status` is the exact status the
-- gate published (ideas.status.v1), e.g. rejected_by_human vs rejected_by_risk.
ALTER TYPE trade_idea_status ADD VALUE IF NOT EXISTS 'approved' AFTER 'needs_approval';
ALTER TABLE trade_ideas ADD COLUMN pipeline_status TEXT;
ALTER TABLE trade_ideas ADD COLUMN decision_id TEXT;
ALTER TABLE trade_ideas ADD COLUMN strategy_hash TEXT;
CREATE INDEX trade_ideas_account_status ON trade_ideas (account, status, created_at DESC);

-- Every status change of every idea (ideas.status.v1 is compacted: the topic keeps only
-- the latest per idea, this table keeps them all). trade_ideas.status is derived from
-- the latest row here, so the order in which topics are consumed does not matter.
CREATE TABLE idea_status_history (
    idea_id          TEXT NOT NULL,
    account          TEXT NOT NULL,
    pipeline_status  TEXT NOT NULL,
    status           TEXT NOT NULL,   -- the blueprint trade_idea_status it maps to
    reason           TEXT,
    decision_id      TEXT,
    changed_at       TIMESTAMPTZ NOT NULL,
    source_partition INT NOT NULL,
    source_offset    BIGINT NOT NULL,
    PRIMARY KEY (idea_id, pipeline_status, changed_at)
);
CREATE INDEX idea_status_history_changed ON idea_status_history (changed_at DESC);

-- The exact Avro bytes of each decision event (replay and re-verification from the record
-- as published). The hash chain is verified from the columns, which are what readers see.
ALTER TABLE decision_history ADD COLUMN raw BYTEA;
CREATE INDEX decision_history_account ON decision_history (account, occurred_at);

CREATE INDEX order_results_executed ON order_results (executed_at DESC);
CREATE INDEX order_requests_idea ON order_requests (idea_id);
CREATE INDEX command_replies_replied ON command_replies (replied_at DESC);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_source ON dead_letters (source_topic, received_at DESC);

-- Records each sink group still has to write, per topic, refreshed by the sink every few
-- seconds (also as Prometheus gauges and `ai-trader sinks lag`), so the UI can show it.
CREATE TABLE sink_lag (
    consumer_group TEXT NOT NULL,
    topic          TEXT NOT NULL,
    lag            BIGINT NOT NULL,
    committed      BIGINT NOT NULL,
    high_watermark BIGINT NOT NULL,
    measured_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer_group, topic)
);

-- Daily P/L per account from the account snapshots. On TimescaleDB the timescale track
-- replaces this view by a continuous aggregate of the same name and columns, so the same
-- queries run on both (date_bin here, time_bucket there: both align days on UTC midnight).
CREATE VIEW account_daily_pl AS
SELECT date_bin('1 day', captured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day,
       account,
       (array_agg(equity ORDER BY captured_at))[1]                   AS open_equity,
       (array_agg(equity ORDER BY captured_at DESC))[1]              AS close_equity,
       (array_agg(equity ORDER BY captured_at DESC))[1]
         - (array_agg(equity ORDER BY captured_at))[1]               AS equity_change,
       (array_agg(balance ORDER BY captured_at DESC))[1]             AS close_balance,
       (array_agg(realized_pl_today ORDER BY captured_at DESC))[1]   AS realized_pl,
       max(equity)                                                   AS max_equity,
       min(equity)                                                   AS min_equity,
       count(*)                                                      AS samples
FROM snapshot_account
GROUP BY 1, 2;
