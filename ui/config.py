"""Settings of the Streamlit UI that the shared `topics.settings.Settings` does not carry.

Read from the environment (and `.env` / `.env.local`) like the shared settings; they
belong in `topics/settings.py` and live here until the lead moves them (nothing else
reads these variables). The API's address defaults to where `ai-trader api` listens.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from topics.settings import Settings


class UiSettings(BaseSettings):
    """Where the API is, how often live panels refresh, how long to wait for answers."""

    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"), env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True,
    )

    api_url: str | None = Field(None, alias="AI_TRADER_UI_API_URL",
                                description="base URL of the REST API (default: "
                                            "http://AI_TRADER_API_HOST:AI_TRADER_API_PORT)")
    refresh_seconds: float = Field(5.0, alias="AI_TRADER_UI_REFRESH_SECONDS", ge=1, le=3600)
    read_timeout_seconds: float = Field(10.0, alias="AI_TRADER_UI_READ_TIMEOUT_SECONDS",
                                        gt=0, le=120)
    command_timeout_seconds: float = Field(
        60.0, alias="AI_TRADER_UI_COMMAND_TIMEOUT_SECONDS", gt=0, le=900,
        description="wait for a change (an approval waits for the gate and the broker)")
    timezone: str | None = Field(None, alias="AI_TRADER_UI_TIMEZONE",
                                 description="local time zone when the browser does not "
                                             "tell (default: the browser's, else UTC)")

    def base_url(self, shared: Settings | None = None) -> str:
        """The API's base URL, without a trailing slash."""
        if self.api_url:
            return self.api_url.rstrip("/")
        settings = shared or Settings()
        host = settings.api_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a listen-all address: reach it locally
            host = "127.0.0.1"
        return f"http://{host}:{settings.api_port}"
