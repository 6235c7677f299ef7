"""The one settings object: every environment variable the project reads is declared here.

It lives in `topics/` because this is the first stage every process imports (the
bus and its clients); no stage has to import a later one to read its settings.

Secrets are `SecretStr`: their `repr`/`str` print `**********`, so logging a
settings object or an exception that holds one never leaks them.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]

LOCAL_KAFKA = "127.0.0.1:19092"
LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:15432/ai_trader"


class Settings(BaseSettings):
    """Typed configuration from the environment and an optional `.env` file."""

    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["dev", "test", "staging", "prod"] = Field("dev", alias="AI_TRADER_ENV")
    state_dir: Path = Field(REPO_ROOT / ".state", alias="AI_TRADER_STATE_DIR")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    code_version: str = Field("dev", alias="AI_TRADER_CODE_VERSION")

    # --- bus -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(LOCAL_KAFKA, alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: str | None = Field(None, alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(None, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = Field(None, alias="KAFKA_SASL_PASSWORD")
    kafka_ssl_cafile: str | None = Field(None, alias="KAFKA_SSL_CAFILE")
    kafka_ssl_certfile: str | None = Field(None, alias="KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: str | None = Field(None, alias="KAFKA_SSL_KEYFILE")
    topic_prefix: str = Field("", alias="AI_TRADER_TOPIC_PREFIX")
    topic_replication_factor: int = Field(1, alias="AI_TRADER_TOPIC_REPLICATION", ge=1)
    # Latency: the client defaults (5 ms linger, 500 ms fetch wait) add hundreds of ms per hop.
    producer_linger_ms: int = Field(1, alias="KAFKA_PRODUCER_LINGER_MS", ge=0)
    #: The streams worker's outputs that no decision waits for (indicator snapshots,
    #: snapshot bundles) and its tables' changelog records: batched longer, for the
    #: broker's and the worker's CPU.
    bulk_linger_ms: int = Field(10, alias="KAFKA_BULK_LINGER_MS", ge=0)
    producer_compression: Literal["none", "lz4", "zstd", "gzip", "snappy"] = Field(
        "lz4", alias="KAFKA_PRODUCER_COMPRESSION")
    consumer_fetch_wait_ms: int = Field(10, alias="KAFKA_CONSUMER_FETCH_WAIT_MS", ge=0)
    #: The streams worker's fetch wait when no partition is left out of the fetch (its
    #: context consumer always; its agents' consumer when idle): a record arriving ends
    #: such a fetch at once, so this bounds only how often an idle worker asks
    #: (streams/fetching.py, "The idle wait").
    idle_fetch_wait_ms: int = Field(500, alias="KAFKA_IDLE_FETCH_WAIT_MS", ge=1)

    # --- database --------------------------------------------------------------------------
    database_url: SecretStr = Field(
        SecretStr(LOCAL_DATABASE),
        validation_alias=AliasChoices("DATABASE_URL", "POSTGRES_URL"),
    )
    timescale_compress_after_days: int = Field(7, alias="TIMESCALE_COMPRESS_AFTER_DAYS", ge=1)
    timescale_retention_days: int = Field(365, alias="TIMESCALE_RETENTION_DAYS", ge=1)

    # --- secrets and integrations ---------------------------------------------------------
    jwt_secret: SecretStr | None = Field(None, alias="JWT_SECRET")
    command_hmac_key: SecretStr | None = Field(None, alias="COMMAND_HMAC_KEY")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_model: str = Field("gpt-4o-mini", alias="OPENAI_MODEL")
    mt5_login: int | None = Field(None, alias="MT5_LOGIN")
    mt5_password: SecretStr | None = Field(None, alias="MT5_PASSWORD")
    mt5_server: str | None = Field(None, alias="MT5_SERVER")
    mt5_path: str | None = Field(None, alias="MT5_PATH")
    broker: Literal["paper", "mt5"] = Field("paper", alias="AI_TRADER_BROKER")
    account: str = Field("paper-1", alias="AI_TRADER_ACCOUNT")

    # --- explainer: LLM explanations (streams/explainer, issue 9) ---------------------------
    openai_timeout_seconds: float = Field(20.0, alias="OPENAI_TIMEOUT_SECONDS", gt=0)
    openai_max_retries: int = Field(2, alias="OPENAI_MAX_RETRIES", ge=0, le=10)
    llm_daily_call_budget: int = Field(500, alias="LLM_DAILY_CALL_BUDGET", ge=0)
    llm_daily_token_budget: int = Field(300_000, alias="LLM_DAILY_TOKEN_BUDGET", ge=0)
    llm_max_output_tokens: int = Field(200, alias="LLM_MAX_OUTPUT_TOKENS", ge=16, le=4096)
    explainer_metrics_port: int = Field(9109, alias="EXPLAINER_METRICS_PORT", ge=0, le=65535)

    # --- intervals (blueprint §10.1) -------------------------------------------------------
    snapshot_interval_seconds: float = Field(60.0, alias="SNAPSHOT_INTERVAL_SECONDS", gt=0)
    account_snapshot_interval_seconds: float = Field(
        30.0, alias="ACCOUNT_SNAPSHOT_INTERVAL_SECONDS", gt=0
    )

    # --- connectors: market feed -----------------------------------------------------------
    market_feed: Literal["synthetic", "replay", "mt5", "none"] = Field(
        "synthetic", alias="MARKET_FEED")
    market_symbols: Annotated[list[str], NoDecode] = Field(
        ["XAUUSD", "EURUSD", "US30"], alias="MARKET_SYMBOLS")
    market_timeframes: Annotated[list[str], NoDecode] = Field(["M1"], alias="MARKET_TIMEFRAMES")
    market_replay_path: Path | None = Field(None, alias="MARKET_REPLAY_PATH")
    market_replay_format: Literal["auto", "csv", "parquet", "mt5"] = Field(
        "auto", alias="MARKET_REPLAY_FORMAT")
    market_replay_symbol: str | None = Field(None, alias="MARKET_REPLAY_SYMBOL")
    market_replay_timeframe: str = Field("M1", alias="MARKET_REPLAY_TIMEFRAME")
    # 0 = as fast as possible, 1 = real time, N = N times real time
    market_replay_speed: float = Field(0.0, alias="MARKET_REPLAY_SPEED", ge=0)
    market_file_timezone: str = Field("UTC", alias="MARKET_FILE_TIMEZONE")
    synthetic_seed: int = Field(42, alias="SYNTHETIC_SEED")
    #: the demo market's pace: 1 on the wall clock, N times faster (ahead of the clock,
    #: where the gate cannot execute its ideas: README, Connectors)
    synthetic_speed: float = Field(1.0, alias="SYNTHETIC_SPEED", gt=0)
    synthetic_warmup_bars: int = Field(300, alias="SYNTHETIC_WARMUP_BARS", ge=0)
    mt5_market_backfill_bars: int = Field(300, alias="MT5_MARKET_BACKFILL_BARS", ge=1)
    market_poll_seconds: float = Field(5.0, alias="MARKET_POLL_SECONDS", gt=0)

    # --- connectors: calendar and news -----------------------------------------------------
    calendar_url: str | None = Field(None, alias="CALENDAR_URL")
    calendar_format: Literal["auto", "json", "xml"] = Field("auto", alias="CALENDAR_FORMAT")
    calendar_xml_timezone: str | None = Field(None, alias="CALENDAR_XML_TIMEZONE")
    calendar_csv_path: Path | None = Field(None, alias="CALENDAR_CSV_PATH")
    calendar_csv_timezone: str = Field("UTC", alias="CALENDAR_CSV_TIMEZONE")
    calendar_interval_seconds: float = Field(120.0, alias="CALENDAR_INTERVAL_SECONDS", gt=0)
    news_urls: Annotated[list[str], NoDecode] = Field([], alias="NEWS_URLS")
    news_interval_seconds: float = Field(120.0, alias="NEWS_INTERVAL_SECONDS", gt=0)
    news_aliases_path: Path | None = Field(None, alias="NEWS_ALIASES_PATH")
    feed_backoff_max_seconds: float = Field(300.0, alias="FEED_BACKOFF_MAX_SECONDS", gt=0)

    # --- connectors: brokers ---------------------------------------------------------------
    mt5_server_timezone: str = Field("UTC", alias="MT5_SERVER_TIMEZONE")
    mt5_magic: int = Field(240_501, alias="MT5_MAGIC", ge=0)
    mt5_deviation_points: int = Field(20, alias="MT5_DEVIATION_POINTS", ge=0)
    mt5_bridge_host: str | None = Field(None, alias="MT5_BRIDGE_HOST")
    mt5_bridge_port: int = Field(18812, alias="MT5_BRIDGE_PORT")
    paper_initial_balance: Decimal = Field(Decimal("10000.00"), alias="PAPER_INITIAL_BALANCE",
                                           gt=0)
    paper_slippage_points: int = Field(0, alias="PAPER_SLIPPAGE_POINTS", ge=0)
    order_max_attempts: int = Field(3, alias="ORDER_MAX_ATTEMPTS", ge=1, le=10)

    @field_validator("market_symbols", "market_timeframes", "news_urls", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    # --- ports of the local processes ------------------------------------------------------
    api_host: str = Field("127.0.0.1", alias="AI_TRADER_API_HOST")
    api_port: int = Field(8000, alias="AI_TRADER_API_PORT")
    ui_port: int = Field(8501, alias="AI_TRADER_UI_PORT")
    metrics_port: int = Field(9108, alias="AI_TRADER_METRICS_PORT")
    # records waiting on an agent's topics and none processed for this long: the worker
    # stops itself so that its supervisor restarts it (streams/watchdog.py)
    worker_stall_seconds: float = Field(60.0, alias="AI_TRADER_WORKER_STALL_SECONDS", gt=0)
    # how long the worker's event loop keeps the GIL while another of its threads (the
    # consumer's fetcher, the delivery reports) waits for it: sys.setswitchinterval
    worker_switch_interval_ms: float = Field(20.0, alias="AI_TRADER_WORKER_SWITCH_INTERVAL_MS",
                                             gt=0, le=1000)
    # a worker that failed and has not finished stopping after this long exits outright
    # (a stop can hang, e.g. flushing records to a topic that is gone)
    worker_crash_exit_seconds: float = Field(30.0, alias="AI_TRADER_WORKER_CRASH_EXIT_SECONDS",
                                             gt=0)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS is empty")
        return value.strip()

    # --- client configurations -------------------------------------------------------------
    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every confluent-kafka client (admin, producer)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            conf["ssl.ca.location"] = self.kafka_ssl_cafile
        if self.kafka_ssl_certfile:
            conf["ssl.certificate.location"] = self.kafka_ssl_certfile
        if self.kafka_ssl_keyfile:
            conf["ssl.key.location"] = self.kafka_ssl_keyfile
        return conf

    def aiokafka_config(self) -> dict[str, Any]:
        """aiokafka keyword arguments for the same cluster and security settings."""
        conf: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            conf["ssl_context"] = create_ssl_context(
                cafile=self.kafka_ssl_cafile,
                certfile=self.kafka_ssl_certfile,
                keyfile=self.kafka_ssl_keyfile,
            )
        if self.kafka_sasl_mechanism:
            conf["sasl_mechanism"] = self.kafka_sasl_mechanism
            conf["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password:
                conf["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return conf

    def database_dsn(self) -> str:
        """The DSN for psycopg (SQLAlchemy-style `postgresql+driver://` prefixes are accepted)."""
        url = self.database_url.get_secret_value()
        scheme, sep, rest = url.partition("://")
        if sep and "+" in scheme:
            url = scheme.split("+", 1)[0] + "://" + rest
        return url

    def redacted(self) -> dict[str, Any]:
        """Settings safe to print: secrets masked, passwords removed from URLs."""
        data = self.model_dump(mode="json")
        for key, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                data[key] = "**********"
        return data


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
