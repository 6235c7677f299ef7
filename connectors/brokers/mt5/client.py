"""A session with the MT5 terminal that notices drops and reconnects with backoff.

Every MT5 function returns None on failure and leaves the reason in
`last_error()`. A None whose reason is a lost link to the terminal (the IPC
codes `RES_E_INTERNAL_FAIL_*`, or `terminal_info()` itself None) marks the
session down and raises `BrokerUnavailable`; the next call reconnects first.
Credentials are passed to `initialize()` and nowhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from connectors.brokers.base import BrokerUnavailable, OutcomeUnknown
from connectors.brokers.mt5.config import Mt5Config
from connectors.core.backoff import Backoff

log = logging.getLogger(__name__)

RES_S_OK = 1
RES_E_FAIL = -1
RES_E_AUTH_FAILED = -6
# RES_E_INTERNAL_FAIL, _SEND, _RECEIVE, _INIT, _CONNECT, _TIMEOUT: the terminal link is gone
LINK_ERRORS = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})


class Mt5Session:
    """Calls into an injected `MetaTrader5` module object (package, mt5linux or fake)."""

    def __init__(self, mt5: Any, config: Mt5Config, with_credentials: bool = True,
                 sleep: Callable[[float], None] = time.sleep,
                 backoff: Backoff | None = None) -> None:
        self.mt5 = mt5
        self.config = config
        self.with_credentials = with_credentials
        self.sleep = sleep
        self.backoff = backoff or Backoff(base=1.0, cap=30.0, seed=config.magic)
        self.connected = False
        self.reconnects = 0

    def last_error(self) -> tuple[int, str]:
        """The terminal's last error as (code, description)."""
        try:
            code, text = self.mt5.last_error()
        except Exception as exc:  # a dead bridge raises instead of answering
            return -10004, f"last_error unavailable: {exc}"
        return int(code), str(text)

    def _alive(self) -> bool:
        info = self.mt5.terminal_info()
        return info is not None and bool(getattr(info, "connected", True))

    def connect(self) -> None:
        """initialize() (with credentials when configured), retried with backoff."""
        for attempt in range(1, self.config.connect_attempts + 1):
            if self.mt5.initialize(**self.config.initialize_kwargs(self.with_credentials)) \
                    and self._alive():
                self.connected = True
                self.backoff.reset()
                log.info("mt5 terminal connected", extra={"attempt": attempt})
                return
            code, text = self.last_error()
            log.warning("mt5 initialize failed (%s %s), attempt %s", code, text, attempt)
            if code == RES_E_AUTH_FAILED:
                break  # wrong credentials do not get better by retrying
            if attempt < self.config.connect_attempts:
                self.sleep(self.backoff.next_delay())
        self.connected = False
        code, text = self.last_error()
        raise BrokerUnavailable(f"cannot connect to the MT5 terminal: {code} {text}")

    def ensure(self) -> None:
        """Reconnect if the session is known or found to be down."""
        if self.connected and self._alive():
            return
        if self.connected:
            log.warning("mt5 terminal dropped, reconnecting")
            self.reconnects += 1
        self.connected = False
        self.connect()

    def call(self, name: str, *args: Any, empty_ok: bool = False, **kwargs: Any) -> Any:
        """Call an MT5 function; None becomes `BrokerUnavailable` (link) or is returned."""
        self.ensure()
        try:
            result = getattr(self.mt5, name)(*args, **kwargs)
        except (ConnectionError, OSError, EOFError) as exc:  # the mt5linux bridge raises
            self.connected = False
            raise BrokerUnavailable(f"mt5 {name}: {exc}") from exc
        if result is not None:
            return result
        code, text = self.last_error()
        if code in LINK_ERRORS or not self._alive():
            self.connected = False
            raise BrokerUnavailable(f"mt5 {name}: link to the terminal lost ({code} {text})")
        if empty_ok and code == RES_S_OK:
            return ()
        return None

    def send(self, request: dict[str, Any]) -> Any:
        """order_send: a failure *after* the request left us is `OutcomeUnknown`, not
        `BrokerUnavailable` — the order may exist."""
        self.ensure()  # BrokerUnavailable here: nothing was sent
        try:
            result = self.mt5.order_send(request)
        except (ConnectionError, OSError, EOFError) as exc:
            self.connected = False
            raise OutcomeUnknown(f"order_send: {exc}") from exc
        if result is None:
            code, text = self.last_error()
            if code in LINK_ERRORS or not self._alive():
                self.connected = False
            raise OutcomeUnknown(f"order_send gave no answer ({code} {text})")
        return result

    def query(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """A list query (positions, orders, deals): None with an error means we do not know."""
        result = self.call(name, *args, empty_ok=True, **kwargs)
        if result is None:
            code, text = self.last_error()
            raise BrokerUnavailable(f"mt5 {name} failed: {code} {text}")
        return tuple(result)

    def shutdown(self) -> None:
        """Close the session."""
        try:
            self.mt5.shutdown()
        finally:
            self.connected = False
