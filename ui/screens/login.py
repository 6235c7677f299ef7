"""Login: email and password checked by the API; the session keeps the token it sets."""

from __future__ import annotations

import streamlit as st

from ui import state
from ui.api_client import ApiError


def render() -> None:
    """The login form (or, once logged in, on to the dashboard)."""
    if state.logged_in():
        st.switch_page("screens/dashboard.py")
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title(":material/smart_toy: ai-trader")
        st.caption("Log in to the ops view.")
        flash = st.session_state.pop(state.FLASH, None)
        if flash:
            st.info(flash)
        with st.form("login", border=True):
            email = st.text_input("Email", key="login_email", autocomplete="username")
            password = st.text_input("Password", type="password", key="login_password",
                                     autocomplete="current-password")
            submitted = st.form_submit_button("Log in", type="primary",
                                              icon=":material/login:")
        if submitted:
            _login(email.strip(), password)


def _login(email: str, password: str) -> None:
    if not email or not password:
        st.error("Enter your email and password.")
        return
    try:
        done = state.client().login(email, password)
    except ApiError as err:
        if err.status == 401:
            st.error("Wrong email or password.")
        elif err.status == 429:
            wait = err.details.get("retry_after_seconds")
            st.error("Too many failed logins: try again "
                     + (f"in {wait} seconds." if wait else "later."))
        else:
            state.show_error(err, "log in")
        return
    state.remember_login(done.token, done.user)
    state.changed()
    st.rerun()


if __name__ == "__main__":
    render()
