"""Settings of the API process that the shared `topics.settings.Settings` does not carry.

Read from the environment (and `.env` / `.env.local`) like the shared settings. They
belong in `topics/settings.py`; they live here until the lead moves them (one place
knows a fact: nothing else reads these variables).
"""

from __future__ import annotations

import ipaddress

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Cookie, token, rate-limit and timeout settings of the REST API and the CLI."""

    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"), env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True,
    )

    token_ttl_minutes: int = Field(720, alias="AI_TRADER_TOKEN_TTL_MINUTES", ge=1, le=43_200)
    cookie_secure: bool = Field(True, alias="AI_TRADER_COOKIE_SECURE")
    command_timeout_seconds: float = Field(10.0, alias="AI_TRADER_COMMAND_TIMEOUT_SECONDS",
                                           gt=0, le=300)
    order_timeout_seconds: float = Field(30.0, alias="AI_TRADER_ORDER_TIMEOUT_SECONDS",
                                         gt=0, le=600)
    login_window_minutes: int = Field(15, alias="AI_TRADER_LOGIN_WINDOW_MINUTES", ge=1)
    login_max_failures_account: int = Field(5, alias="AI_TRADER_LOGIN_MAX_FAILURES_ACCOUNT",
                                            ge=1)
    login_max_failures_address: int = Field(20, alias="AI_TRADER_LOGIN_MAX_FAILURES_ADDRESS",
                                            ge=1)
    openai_test_timeout_seconds: float = Field(5.0, alias="AI_TRADER_OPENAI_TEST_TIMEOUT_SECONDS",
                                               gt=0, le=60)
    db_pool_size: int = Field(8, alias="AI_TRADER_API_DB_POOL", ge=1, le=100)
    metrics_urls: str = Field("", alias="AI_TRADER_METRICS_URLS",
                              description="comma-separated Prometheus endpoints for `status`")

    def check_cookie(self, host: str) -> None:
        """Refuse a non-Secure cookie unless the API listens on loopback only (plain-http dev)."""
        if self.cookie_secure:
            return
        if host == "localhost":
            return
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
        raise ValueError(f"AI_TRADER_COOKIE_SECURE=false is allowed only on a loopback "
                         f"address, not {host!r}")
