"""Settings from the environment, and logs that never carry a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from topics.logs import Redactor, configure_logging
from topics.settings import Settings

SECRETS = {
    "JWT_SECRET": "jwt-very-secret-value",
    "OPENAI_API_KEY": "sk-test-abcdefghijklmnop",
    "MT5_PASSWORD": "mt5-pass-123456",
    "KAFKA_SASL_PASSWORD": "sasl-pass-987654",
    "COMMAND_HMAC_KEY": "hmac-key-5555",
}


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://trader:dbpass-4444@db:5432/ai")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "trader")
    return Settings()


def test_secrets_never_appear_in_repr_or_redacted_dump(secret_env: Settings) -> None:
    text = repr(secret_env) + str(secret_env) + json.dumps(secret_env.redacted())
    for value in [*SECRETS.values(), "dbpass-4444"]:
        assert value not in text


def test_sasl_settings_reach_both_kafka_clients(secret_env: Settings) -> None:
    confluent = secret_env.confluent_config()
    assert confluent["security.protocol"] == "SASL_PLAINTEXT"
    assert confluent["sasl.mechanism"] == "SCRAM-SHA-256"
    assert confluent["sasl.password"] == SECRETS["KAFKA_SASL_PASSWORD"]
    aio = secret_env.aiokafka_config()
    assert aio["sasl_mechanism"] == "SCRAM-SHA-256"
    assert aio["sasl_plain_password"] == SECRETS["KAFKA_SASL_PASSWORD"]


def test_sqlalchemy_style_url_is_normalised_for_psycopg(secret_env: Settings) -> None:
    assert secret_env.database_dsn() == "postgresql://trader:dbpass-4444@db:5432/ai"


def test_blueprint_postgres_url_name_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("POSTGRES_URL", "postgresql://u@h:1/x")
    assert Settings().database_dsn() == "postgresql://u@h:1/x"


def test_empty_bootstrap_servers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "  ")
    with pytest.raises(ValueError, match="KAFKA_BOOTSTRAP_SERVERS is empty"):
        Settings()


def test_logs_scrub_known_secrets_and_secret_patterns(secret_env: Settings) -> None:
    stream = io.StringIO()
    configure_logging("test", secret_env, stream)
    log = logging.getLogger("leaky")
    log.info("key %s and pass %s", SECRETS["OPENAI_API_KEY"], SECRETS["MT5_PASSWORD"])
    log.info("dsn %s", secret_env.database_dsn())
    log.warning("login failed", extra={"password": "hunter2-xyz", "idea_id": "i-1"})
    log.info('body {"password": "p@ss-777", "api_key": "k-888"} token=abc.def.ghi')
    out = stream.getvalue()
    for leaked in [*SECRETS.values(), "dbpass-4444", "hunter2-xyz", "p@ss-777", "k-888",
                   "abc.def.ghi"]:
        assert leaked not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[2]["idea_id"] == "i-1"  # ids that follow an idea stay readable
    assert all(line["service"] == "test" for line in lines)
    logging.getLogger().handlers.clear()


def test_quiet_logs_warnings_at_the_least(secret_env: Settings) -> None:
    stream = io.StringIO()
    info = secret_env.model_copy(update={"log_level": "INFO"})
    error = secret_env.model_copy(update={"log_level": "ERROR"})
    client = logging.getLogger("client")
    root = logging.getLogger()
    kept = root.level
    try:
        configure_logging("test", info, stream, quiet=True)
        client.info("published approve_idea")
        client.warning("reply late")
        configure_logging("test", error, stream, quiet=True)  # quieter still: kept
        client.warning("reply late again")
        client.error("bus unreachable")
        configure_logging("test", info, stream)  # the settings' INFO
        client.info("published reject_idea")
    finally:
        root.handlers.clear()
        root.setLevel(kept)
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["reply late", "bus unreachable", "published reject_idea"]


def test_redactor_leaves_ordinary_text_alone() -> None:
    text = "idea 9f0b approved at 2385.20 by ops@example.com"
    assert Redactor(["secret-1"])(text) == text
