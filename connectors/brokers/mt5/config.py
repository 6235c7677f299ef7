"""Configuration of the MT5 adapter. Credentials live only here and only as `SecretStr`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from pydantic import SecretStr

DEFAULT_MAGIC = 240_501


@dataclass(frozen=True)
class Mt5Config:
    """How to reach the terminal and how to mark our orders.

    `server_timezone`: MT5 reports times as the trade server's wall clock written
    as if it were UTC; this is the zone to read them in (brokers commonly run on
    EET, `Europe/Athens` style). It must be configured, never guessed.
    """

    account: str
    login: int | None = None
    password: SecretStr | None = field(default=None, repr=False)
    server: str | None = None
    path: str | None = None
    magic: int = DEFAULT_MAGIC
    deviation_points: int = 20
    server_timezone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    lookup_days: int = 7
    connect_attempts: int = 5
    timeout_ms: int = 10_000

    def initialize_kwargs(self, with_credentials: bool) -> dict[str, object]:
        """Arguments of `initialize()`; the password is read only here, never logged."""
        kwargs: dict[str, object] = {"timeout": self.timeout_ms}
        if self.path:
            kwargs["path"] = self.path
        if with_credentials and self.login is not None:
            kwargs["login"] = self.login
            if self.password is not None:
                kwargs["password"] = self.password.get_secret_value()
            if self.server:
                kwargs["server"] = self.server
        return kwargs
