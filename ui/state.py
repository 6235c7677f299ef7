"""The Streamlit side of the session: the logged-in client, cached reads, errors, live panels.

The token lives in `st.session_state` (server side, per browser tab); reads are cached
for a couple of seconds keyed by token, path and parameters, so the header and a page
asking for the same thing cost one request; every change clears the cache so the next
render shows the new state.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

import streamlit as st

from topics.logs import JsonFormatter, Redactor, secret_values
from topics.settings import Settings
from ui import fmt
from ui.api_client import ApiClient, ApiError
from ui.config import UiSettings

log = logging.getLogger("ai_trader.ui")

LOGIN_KEY = "auth_token"
USER = "user"
FLASH = "flash"
CACHE_SECONDS = 2.0


def settings() -> UiSettings:
    """The UI settings (read per run: cheap, and tests point the UI elsewhere)."""
    return UiSettings()


def setup_logging() -> None:
    """The UI's own log lines as JSON with secrets redacted, like every other process.

    Only the `ai_trader.ui` logger: the root logger belongs to Streamlit (and to pytest
    under AppTest)."""
    if any(isinstance(h.formatter, JsonFormatter) for h in log.handlers):
        return
    shared = Settings()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("ui", Redactor(secret_values(shared))))
    log.addHandler(handler)
    log.setLevel(shared.log_level.upper())
    log.propagate = False


def client() -> ApiClient:
    """The API client of this session (logged in when a token is held)."""
    cfg = settings()
    return ApiClient(cfg.base_url(), st.session_state.get(LOGIN_KEY),
                     read_timeout=cfg.read_timeout_seconds,
                     command_timeout=cfg.command_timeout_seconds)


def logged_in() -> bool:
    """A token is held (the API still decides whether it is valid)."""
    return bool(st.session_state.get(LOGIN_KEY))


def user_email() -> str:
    """Who is logged in."""
    user = st.session_state.get(USER) or {}
    return str(user.get("email", ""))


def remember_login(token: str, user: Mapping[str, Any]) -> None:
    """Keep the session's token (never shown, never logged)."""
    st.session_state[LOGIN_KEY] = token
    st.session_state[USER] = dict(user)


def forget_login(message: str | None = None) -> None:
    """Drop the token (after a logout or when the API refuses it)."""
    st.session_state.pop(LOGIN_KEY, None)
    st.session_state.pop(USER, None)
    if message:
        st.session_state[FLASH] = message


def session_ended(err: ApiError) -> NoReturn:
    """The API refused the token: back to the login page, saying why."""
    forget_login(fmt.error_text(err))
    st.rerun()


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=1000)
def _cached_get(base_url: str, token: str | None, path: str,
                params: tuple[tuple[str, Any], ...], read_timeout: float) -> Any:
    return ApiClient(base_url, token, read_timeout=read_timeout).get(path, dict(params))


def read(path: str, **params: Any) -> Any:
    """GET `path` (cached briefly); raises `ApiError`."""
    c = client()
    items = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                         for k, v in params.items() if v is not None))
    return _cached_get(c.base_url, c.token, path, items, c.read_timeout)


def read_or_none(path: str, missing: str = "NOT_FOUND", **params: Any) -> Any:
    """`read`, with None for a 404 whose code is `missing` (e.g. no snapshot yet)."""
    try:
        return read(path, **params)
    except ApiError as err:
        if err.status == 404 and err.code == missing:
            return None
        raise


def changed() -> None:
    """Something was changed through the API: forget every cached read."""
    _cached_get.clear()


def show_error(err: ApiError, doing: str | None = None) -> None:
    """An API error in words; a refused token logs the session out."""
    if err.status == 401 and logged_in():
        session_ended(err)
    st.error(fmt.error_text(err, doing), icon=":material/error:")
    other = [f"{where}: {message}" if where else message for where, message in err.field_errors]
    if other:
        st.markdown("\n".join(f"- {fmt.escape(line)}" for line in other))


@contextmanager
def panel(doing: str) -> Iterator[None]:
    """Run a panel; an API error ends the panel with a readable message, not the page."""
    try:
        yield
    except ApiError as err:
        show_error(err, doing)


def unexpected(exc: Exception, where: str) -> None:
    """Anything else: a short message on screen, the trace in the UI's log only."""
    log.error("unexpected error in %s", where, exc_info=exc)
    st.error(f"Something went wrong in {where} ({type(exc).__name__}). The details are in "
             "the UI's log; the rest of the page still works.", icon=":material/error:")


def live(key: str, render: Callable[[], None]) -> None:
    """Render `render` as a fragment that refreshes itself every few seconds.

    Only the fragment reruns, so forms elsewhere on the page keep what was typed.
    """
    def run() -> None:
        try:
            render()
        except ApiError as err:
            show_error(err)
        except Exception as exc:  # noqa: BLE001 - shown readably instead of a traceback
            unexpected(exc, key)

    st.fragment(run, run_every=settings().refresh_seconds, key=key)()


def local_zone() -> str:
    """The viewer's time zone: the browser's, else AI_TRADER_UI_TIMEZONE, else UTC."""
    return st.context.timezone or settings().timezone or "UTC"
