"""ai-trader's ops view: `streamlit run ui/app.py` (`make run` starts it).

Every screen reads through the REST API and changes things only through it, so the
same login, validation and audit apply as for any other client. Not logged in, the
only page is the login form; logged in, the header with the "AI Trading: ON/OFF"
badge and the kill switch state sits on top of every page and refreshes itself.
"""

from __future__ import annotations

import streamlit as st

from ui import state
from ui.api_client import ApiError
from ui.header import render_header

LOGIN = "screens/login.py"

#: section -> (page file, title, icon, url path); the first page is the default.
SECTIONS: dict[str, list[tuple[str, str, str, str]]] = {
    "Overview": [
        ("screens/dashboard.py", "Dashboard", ":material/dashboard:", "dashboard"),
        ("screens/analysis.py", "Analysis & Performance", ":material/bar_chart:", "analysis"),
        ("screens/chart.py", "Price chart", ":material/candlestick_chart:", "chart"),
    ],
    "AI Trading": [
        ("screens/ideas.py", "AI Trading", ":material/smart_toy:", "ai-trading"),
        ("screens/strategies.py", "Strategies", ":material/rule:", "strategies"),
        ("screens/history.py", "Decision history", ":material/history:", "history"),
    ],
    "Data": [
        ("screens/data.py", "Third Party & Data", ":material/rss_feed:", "data"),
    ],
    "Settings": [
        ("screens/settings.py", "Settings", ":material/settings:", "settings"),
    ],
}


def _pages() -> dict[str, list[st.Page]]:
    pages: dict[str, list[st.Page]] = {}
    first = True
    for section, entries in SECTIONS.items():
        pages[section] = []
        for path, title, icon, url in entries:
            pages[section].append(st.Page(path, title=title, icon=icon, url_path=url,
                                          default=first))
            first = False
    # the login page stays reachable (hidden) so that a rerun after logging in finds it
    pages["Overview"].append(st.Page(LOGIN, title="Log in", icon=":material/login:",
                                     url_path="login", visibility="hidden"))
    return pages


def _sidebar() -> None:
    with st.sidebar:
        st.caption(f"Logged in as `{state.user_email()}`")
        if st.button("Log out", icon=":material/logout:", key="logout"):
            try:
                state.client().logout()
            except ApiError:
                pass  # the token is dropped here anyway
            state.forget_login("You are logged out.")
            st.rerun()


def main() -> None:
    """One run of the app: the login page, or the header, the navigation and a page."""
    st.set_page_config(page_title="ai-trader", page_icon=":material/smart_toy:",
                       layout="wide", initial_sidebar_state="expanded")
    state.setup_logging()
    if not state.logged_in():
        st.navigation([st.Page(LOGIN, title="Log in", icon=":material/login:",
                               url_path="login")], position="hidden").run()
        return
    page = st.navigation(_pages(), position="sidebar", expanded=True)
    render_header()
    _sidebar()
    try:
        page.run()
    except ApiError as err:
        state.show_error(err)
    except Exception as exc:  # noqa: BLE001 - a readable message instead of a traceback
        state.unexpected(exc, page.title)


main()
