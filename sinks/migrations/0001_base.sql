-- Base schema: the tables of blueprint §5, with the ids the streaming pipeline uses.
-- Strategy and idea ids come from the pipeline (deterministic uuid5 / slugs), so they are
-- written, not generated here. Every time-series table has its event time in its key so
-- that it can become a TimescaleDB hypertable.

CREATE TABLE strategies (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    version              INT NOT NULL,
    is_active            BOOLEAN NOT NULL DEFAULT TRUE,
    allowed_symbols      TEXT[] NOT NULL,
    session_windows      JSONB NOT NULL,
    entry_conditions     JSONB NOT NULL,
    exit_rules           JSONB NOT NULL,
    forbidden_conditions JSONB NOT NULL,
    risk_caps            JSONB NOT NULL,
    rr_expectation       NUMERIC(5,2) NOT NULL,
    definition           JSONB NOT NULL,
    definition_hash      TEXT NOT NULL,
    updated_by           TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every version a strategy ever had: decisions reference a version by its hash.
CREATE TABLE strategy_versions (
    strategy_id     TEXT NOT NULL,
    version         INT NOT NULL,
    definition      JSONB NOT NULL,
    definition_hash TEXT NOT NULL,
    updated_by      TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (strategy_id, version)
);
CREATE INDEX strategy_versions_hash ON strategy_versions (definition_hash);

CREATE TABLE risk_config (
    account                       TEXT PRIMARY KEY,
    ai_trading_enabled            BOOLEAN NOT NULL DEFAULT FALSE,
    min_confidence_threshold      NUMERIC(5,2) NOT NULL DEFAULT 90.0,
    max_lot_size                  NUMERIC(10,2) NOT NULL,
    max_concurrent_trades         INT NOT NULL,
    daily_profit_target           NUMERIC(12,2) NOT NULL,
    stop_after_target             BOOLEAN NOT NULL DEFAULT TRUE,
    max_drawdown_amount           NUMERIC(12,2) NOT NULL,
    halt_on_drawdown              BOOLEAN NOT NULL DEFAULT TRUE,
    allow_off_watchlist_autotrade BOOLEAN NOT NULL DEFAULT FALSE,
    last_halt_reason              TEXT,
    config                        JSONB NOT NULL,
    config_hash                   TEXT NOT NULL,
    version                       BIGINT NOT NULL,
    updated_by                    TEXT,
    updated_at                    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE snapshot_market (
    symbol      TEXT NOT NULL,
    timeframe   TEXT NOT NULL,
    open_time   TIMESTAMPTZ NOT NULL,
    open        NUMERIC(18,6) NOT NULL,
    high        NUMERIC(18,6) NOT NULL,
    low         NUMERIC(18,6) NOT NULL,
    close       NUMERIC(18,6) NOT NULL,
    volume      BIGINT NOT NULL,
    spread      NUMERIC(18,6) NOT NULL DEFAULT 0,
    source      TEXT NOT NULL,
    captured_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, timeframe, open_time)
);
CREATE INDEX snapshot_market_captured ON snapshot_market (captured_at DESC);

CREATE TABLE snapshot_indicators (
    symbol         TEXT NOT NULL,
    timeframe      TEXT NOT NULL,
    open_time      TIMESTAMPTZ NOT NULL,
    close          NUMERIC(18,6) NOT NULL,
    rsi_14         NUMERIC(8,4),
    sma_50         NUMERIC(18,6),
    sma_200        NUMERIC(18,6),
    macd           JSONB,
    atr            NUMERIC(18,6),
    pct_move_today NUMERIC(10,4),
    spread         NUMERIC(18,6),
    values         JSONB NOT NULL,
    captured_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, timeframe, open_time)
);
CREATE INDEX snapshot_indicators_captured ON snapshot_indicators (captured_at DESC);

CREATE TABLE snapshot_calendar (
    event_id       TEXT NOT NULL,
    event_time     TIMESTAMPTZ NOT NULL,
    currency       TEXT NOT NULL,
    impact_level   TEXT NOT NULL,
    title          TEXT NOT NULL,
    previous_value TEXT,
    forecast_value TEXT,
    actual_value   TEXT,
    previous_num   DOUBLE PRECISION,
    forecast_num   DOUBLE PRECISION,
    actual_num     DOUBLE PRECISION,
    all_day        BOOLEAN NOT NULL DEFAULT FALSE,
    source         TEXT NOT NULL,
    captured_at    TIMESTAMPTZ NOT NULL,
    -- an updated actual is a new row; the same release captured twice is not
    PRIMARY KEY (event_id, event_time, captured_at)
);
CREATE INDEX snapshot_calendar_currency ON snapshot_calendar (currency, event_time);
CREATE INDEX snapshot_calendar_captured ON snapshot_calendar (captured_at DESC);

CREATE TABLE snapshot_news (
    item_id      TEXT NOT NULL,
    headline     TEXT NOT NULL,
    source       TEXT NOT NULL,
    url          TEXT,
    summary      TEXT,
    symbols      TEXT[] NOT NULL DEFAULT '{}',
    currencies   TEXT[] NOT NULL DEFAULT '{}',
    published_at TIMESTAMPTZ NOT NULL,
    captured_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (item_id, published_at)
);
CREATE INDEX snapshot_news_published ON snapshot_news (published_at DESC);
CREATE INDEX snapshot_news_captured ON snapshot_news (captured_at DESC);

CREATE TABLE snapshot_account (
    account           TEXT NOT NULL,
    broker            TEXT NOT NULL,
    balance           NUMERIC(18,2) NOT NULL,
    equity            NUMERIC(18,2) NOT NULL,
    margin_used       NUMERIC(18,2) NOT NULL,
    margin_free       NUMERIC(18,2) NOT NULL,
    open_pl           NUMERIC(18,2) NOT NULL,
    realized_pl_today NUMERIC(18,2) NOT NULL,
    open_positions    INT NOT NULL,
    positions         JSONB NOT NULL,
    captured_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account, captured_at)
);
CREATE INDEX snapshot_account_captured ON snapshot_account (captured_at DESC);

CREATE TABLE snapshot_bundles (
    snapshot_id      TEXT PRIMARY KEY,
    account          TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    timeframe        TEXT NOT NULL,
    strategy_id      TEXT NOT NULL,
    strategy_version INT NOT NULL,
    strategy_hash    TEXT NOT NULL,
    captured_at      TIMESTAMPTZ NOT NULL,
    bundle           JSONB NOT NULL,    -- the decoded record, for queries and the UI
    raw              BYTEA NOT NULL     -- the exact Avro bytes, for replay --verify
);
CREATE INDEX snapshot_bundles_captured ON snapshot_bundles (captured_at DESC);

CREATE TYPE trade_idea_status AS ENUM (
    'waiting', 'needs_approval', 'auto_executed', 'rejected', 'halted_by_risk',
    'expired', 'executed', 'execution_failed'
);

CREATE TABLE trade_ideas (
    id               TEXT PRIMARY KEY,
    account          TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    timeframe        TEXT NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('buy', 'sell')),
    entry_price      NUMERIC(18,6),
    entry_range      NUMERIC[],
    stop_loss        NUMERIC(18,6) NOT NULL,
    take_profit      NUMERIC[] NOT NULL,
    lot_size         NUMERIC(10,2) NOT NULL,
    expected_hold    TEXT,
    rationale        TEXT NOT NULL,
    rationale_bullets TEXT[] NOT NULL DEFAULT '{}',
    confidence_score NUMERIC(5,2) NOT NULL,
    confidence       JSONB NOT NULL,
    status           trade_idea_status NOT NULL,
    status_reason    TEXT,
    strategy_id      TEXT NOT NULL,
    strategy_version INT NOT NULL,
    snapshot_ref     TEXT NOT NULL,
    expires_at       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX trade_ideas_status ON trade_ideas (status);
CREATE INDEX trade_ideas_symbol ON trade_ideas (symbol, created_at DESC);

CREATE TYPE decision_action AS ENUM (
    'ai_proposed', 'ai_auto_executed', 'human_approved', 'human_rejected',
    'risk_rejected', 'ai_halted', 'ai_resumed'
);

CREATE TABLE decision_history (
    id                TEXT NOT NULL,
    account           TEXT NOT NULL,
    occurred_at       TIMESTAMPTZ NOT NULL,
    symbol            TEXT,
    action            decision_action NOT NULL,
    outcome           TEXT,
    rationale         TEXT NOT NULL,
    confidence_score  NUMERIC(5,2),
    confidence        JSONB,
    risk_check_result TEXT,
    checks            JSONB NOT NULL DEFAULT '[]',
    strategy_id       TEXT,
    strategy_hash     TEXT,
    trade_idea_id     TEXT,
    snapshot_ref      TEXT,
    command_id        TEXT,
    human_override    BOOLEAN NOT NULL DEFAULT FALSE,
    issuer            TEXT,
    inputs            JSONB NOT NULL DEFAULT '[]',
    risk_config_hash  TEXT,
    gate_state        JSONB NOT NULL,
    code_version      TEXT NOT NULL,
    prev_hash         TEXT,
    hash              TEXT NOT NULL,
    source_topic      TEXT,
    source_partition  INT,
    source_offset     BIGINT,
    PRIMARY KEY (id, occurred_at)
);
CREATE INDEX decision_history_occurred ON decision_history (occurred_at DESC);
CREATE INDEX decision_history_symbol ON decision_history (symbol, occurred_at DESC);
CREATE INDEX decision_history_action ON decision_history (action, occurred_at DESC);
CREATE INDEX decision_history_symbol_action ON decision_history (symbol, action, occurred_at DESC);
CREATE INDEX decision_history_idea ON decision_history (trade_idea_id);

-- Audit is append-only in the database itself (blueprint §7.4): no UPDATE, DELETE or
-- TRUNCATE, whoever asks. A correction is a new row.
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'decision_history is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER decision_history_no_update BEFORE UPDATE OR DELETE ON decision_history
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER decision_history_no_truncate BEFORE TRUNCATE ON decision_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();

CREATE TABLE order_requests (
    request_id     TEXT PRIMARY KEY,
    idea_id        TEXT NOT NULL,
    decision_id    TEXT NOT NULL,
    account        TEXT NOT NULL,
    symbol         TEXT NOT NULL,
    direction      TEXT NOT NULL,
    order_type     TEXT NOT NULL,
    lot_size       NUMERIC(10,2) NOT NULL,
    price          NUMERIC(18,6),
    stop_loss      NUMERIC(18,6) NOT NULL,
    take_profit    NUMERIC[] NOT NULL,
    strategy_id    TEXT,
    human_override BOOLEAN NOT NULL,
    requested_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX order_requests_requested ON order_requests (requested_at DESC);

CREATE TABLE order_results (
    request_id      TEXT NOT NULL,
    idea_id         TEXT NOT NULL,
    account         TEXT NOT NULL,
    status          TEXT NOT NULL,
    broker          TEXT NOT NULL,
    broker_order_id BIGINT,
    broker_deal_id  BIGINT,
    position_ticket BIGINT,
    filled_price    NUMERIC(18,6),
    filled_volume   NUMERIC(10,2),
    retcode         INT,
    error_code      TEXT,
    message         TEXT NOT NULL,
    executed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (request_id, status, executed_at)
);
CREATE INDEX order_results_idea ON order_results (idea_id);

CREATE TABLE control_commands (
    command_id   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    account      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    issued_at    TIMESTAMPTZ NOT NULL,
    idea_id      TEXT,
    strategy_id  TEXT,
    lot_size     NUMERIC(10,2),
    reason       TEXT,
    payload      JSONB
);
CREATE INDEX control_commands_issued ON control_commands (issued_at DESC);

CREATE TABLE command_replies (
    command_id TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    reason     TEXT,
    result     JSONB,
    replied_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE explanations (
    explanation_id    TEXT PRIMARY KEY,
    subject_kind      TEXT NOT NULL,
    subject_id        TEXT NOT NULL,
    account           TEXT NOT NULL,
    status            TEXT NOT NULL,
    text              TEXT NOT NULL,
    model             TEXT,
    error             TEXT,
    prompt_tokens     INT NOT NULL,
    completion_tokens INT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX explanations_subject ON explanations (subject_kind, subject_id);

CREATE TABLE feed_health (
    feed               TEXT PRIMARY KEY,
    status             TEXT NOT NULL,
    last_success       TIMESTAMPTZ,
    last_error         TEXT,
    last_error_at      TIMESTAMPTZ,
    items_total        BIGINT NOT NULL,
    dead_letters_total BIGINT NOT NULL,
    reported_at        TIMESTAMPTZ NOT NULL
);

-- Records no consumer could use: the original bytes and the reason, queryable by ops.
CREATE TABLE dead_letters (
    dlq_topic     TEXT NOT NULL,
    dlq_partition INT NOT NULL,
    dlq_offset    BIGINT NOT NULL,
    source_topic  TEXT,
    source_partition INT,
    source_offset BIGINT,
    error_class   TEXT,
    error_message TEXT,
    stage         TEXT,
    consumer      TEXT,
    key           BYTEA,
    value         BYTEA,
    headers       JSONB NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'owner',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
