"""Structured logs: one JSON object per line, secrets redacted before anything is written.

Every process calls `configure_logging(service)`. Ids that let a reader follow an
idea end to end (idea_id, snapshot_id, command_id, order_id, decision_id) are
passed as `extra={...}` and become top-level keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from topics.settings import Settings

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SECRET_KEY = re.compile(r"(?i)password|passwd|secret|token|api[_-]?key|authorization|cookie")
_PATTERNS = [
    re.compile(r"(sk-[A-Za-z0-9_\-]{8,})"),  # OpenAI-style keys
    re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)=([^\s&;,]+)"),
    re.compile(r"(?i)(\"(?:password|secret|token|api_key|auth_token)\"\s*:\s*)\"[^\"]*\""),
    re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/\s]+:)([^@\s]+)(@)"),  # DSN passwords
]


class Redactor:
    """Removes known secret values and secret-looking patterns from text."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = sorted({s for s in (secrets or []) if len(s) >= 4}, key=len, reverse=True)

    def known(self, text: str) -> str:
        """Replace only the exact secret values (safe on already-encoded JSON)."""
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def __call__(self, text: str) -> str:
        text = self.known(text)
        text = _PATTERNS[0].sub("[REDACTED]", text)
        text = _PATTERNS[1].sub(r"\1=[REDACTED]", text)
        text = _PATTERNS[2].sub(r'\1"[REDACTED]"', text)
        return _PATTERNS[3].sub(r"\1[REDACTED]\3", text)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, as plain strings, so logs can scrub them."""
    values: list[str] = []
    for name in ("kafka_sasl_password", "jwt_secret", "command_hmac_key", "openai_api_key",
                 "mt5_password"):
        secret = getattr(settings, name)
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, service, logger, message, extras."""

    def __init__(self, service: str, redact: Redactor) -> None:
        super().__init__()
        self.service = service
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if _SECRET_KEY.search(key):
                payload[key] = "[REDACTED]"
            else:
                payload[key] = self.redact(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = self.redact(self.formatException(record.exc_info))
        # a last pass for known secret values hidden in non-string extras
        return self.redact.known(json.dumps(payload, default=str, ensure_ascii=False))


def configure_logging(service: str, settings: Settings, stream: Any = None,
                      quiet: bool = False) -> None:
    """Route every logger to one JSON handler on stderr (or `stream`), at the settings'
    LOG_LEVEL; `quiet`: warnings at the least (a console command's output is its result)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service, Redactor(secret_values(settings))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    if quiet:
        root.setLevel(max(logging.WARNING, root.level))
    for noisy in ("aiokafka", "kafka", "faust", "mode", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
