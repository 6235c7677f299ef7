-- Daily P/L per account as a continuous aggregate, replacing the plain view of
-- base/0002_sinks.sql with the same name and columns (real-time: rows not materialized
-- yet are aggregated on the fly, so it answers like the view does).
DROP VIEW IF EXISTS account_daily_pl;
CREATE MATERIALIZED VIEW account_daily_pl
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 day', captured_at)                         AS day,
       account,
       first(equity, captured_at)                                AS open_equity,
       last(equity, captured_at)                                 AS close_equity,
       last(equity, captured_at) - first(equity, captured_at)    AS equity_change,
       last(balance, captured_at)                                AS close_balance,
       last(realized_pl_today, captured_at)                      AS realized_pl,
       max(equity)                                               AS max_equity,
       min(equity)                                               AS min_equity,
       count(*)                                                  AS samples
FROM snapshot_account
GROUP BY 1, 2
WITH NO DATA;

SELECT add_continuous_aggregate_policy('account_daily_pl',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour',
    if_not_exists => TRUE);
