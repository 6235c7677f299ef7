"""A person in a real browser: log in, read the dashboard, watch it refresh by itself,
approve an idea and read the API's answer, then visit every screen.

Headless Chromium (Debian's packages) drives `streamlit run ui/app.py`, which talks to
the real API (uvicorn) on the real database and bus. A screenshot of every screen is
written under `.state/ui-screenshots/` (ignored by git) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.api import rows
from tests.api.conftest import PASSWORD
from tests.api.gate_double import MT5_ORDER_ID
from tests.ui.browser import Page, button, chromium, keyed, labelled, streamlit_ui, tab
from tests.ui.conftest import UiStack

SHOTS = Path(__file__).resolve().parents[2] / ".state" / "ui-screenshots"

#: sidebar title -> what the screen shows once its data is loaded
SCREENS = {
    "Analysis & Performance": ("Total P/L", "Win rate", "Closed trades"),
    "Price chart": ("Price chart", "Latest XAUUSD M15: close 2,385.20"),
    "Strategies": ("Gold Pullback Buy", "Forbidden conditions"),
    "Decision history": ("Newest first", "Snapshot replay"),
    "Third Party & Data": ("Economic Calendar", "high-impact release"),
    "Settings": ("Broker connection: ok", "Refresh account info now"),
}


@pytest.fixture(scope="module")
def browser_page(ui_stack: UiStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """The UI served by streamlit and a headless Chromium on it."""
    env = {"AI_TRADER_UI_API_URL": ui_stack.url, "AI_TRADER_UI_REFRESH_SECONDS": "2",
           "AI_TRADER_UI_TIMEZONE": "UTC"}
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with streamlit_ui(ui_stack.settings, env, log) as url, \
            chromium("Africa/Johannesburg") as driver:
        driver.get(url)
        yield Page(driver, SHOTS)


def log_in(page: Page, ui_stack: UiStack) -> None:
    """Fill the login form (when the session is not logged in yet)."""
    page.wait("the app", lambda: "Log in to the ops view." in page.text()
              or "Log out" in page.text())
    if "Log out" in page.text():
        return
    page.type_text(labelled("Email"), ui_stack.email, commit=False)  # Enter would submit
    page.type_text(labelled("Password"), PASSWORD, commit=False)
    page.click(button("Log in"))
    page.see("Log out")


def test_login_dashboard_live_refresh_and_approve(browser_page: Page, ui_stack: UiStack) -> None:
    page, seeded = browser_page, ui_stack.seeded
    page.see("Log in to the ops view.")
    page.shot("01-login")
    log_in(page, ui_stack)

    page.see("Dashboard", "Balance", "12,345.67", "AI Trading: ON", "Kill switch: off")
    page.see("+75.00 of 2,000.00 target", "Open positions", "Watched symbols")
    page.shot("02-dashboard")

    # the sinks write a newer account snapshot: the page shows it without a click
    with ui_stack.conn() as conn:
        rows.account_snapshot(conn, seeded.account, datetime.now(UTC), "13000.00",
                              [rows.position(8, "25.00")])
    page.see("13,000.00")

    page.navigate("AI Trading")
    page.see("AI Control Panel", "Needs approval")
    page.type_text(keyed(f"lot-{seeded.idea_fill}", "input"), "0.3")
    before = len(ui_stack.gate.commands)
    page.click(keyed(f"approve-{seeded.idea_fill}", "button"))
    page.see(f"Executed: MT5 order {MT5_ORDER_ID}")
    page.shot("03-ai-trading-approved")
    approvals = [c for c in ui_stack.gate.commands[before:] if c["kind"] == "approve_idea"]
    assert [(c["idea_id"], str(c["lot_size"])) for c in approvals] == \
        [(seeded.idea_fill, "0.30")]

    for number, (title, expected) in enumerate(SCREENS.items(), start=4):
        page.navigate(title)
        page.see(*expected)
        page.shot(f"{number:02d}-{title.lower().replace(' & ', '-').replace(' ', '-')}")
    assert "Traceback" not in page.text()


def test_every_tab_kill_switch_and_test_connection(browser_page: Page, ui_stack: UiStack) -> None:
    page = browser_page
    log_in(page, ui_stack)
    page.navigate("Third Party & Data")
    page.see("high-impact release")
    for number, name in enumerate(("Market News", "RSS Feeds", "Indicators", "Feed health"),
                                  start=10):
        page.click(tab(name))
        page.shot(f"{number}-data-{name.lower().replace(' ', '-')}")

    page.navigate("Settings")
    page.click(tab("API Integrations"))
    page.click(button("Test Connection"))
    page.see("OpenAI API key not configured")
    page.shot("14-settings-api-integrations")
    page.click(tab("Risk Management"))
    page.see("Save risk settings", "Stop new trades after hitting target?")
    page.shot("15-settings-risk-management")

    # half-typed input survives the live refresh of the header above it
    start = labelled("Trading day starts at (HH:MM)")
    page.type_text(start, "21:30", commit=False)
    before = len(ui_stack.gate.commands)
    with ui_stack.conn() as conn:
        conn.execute("UPDATE risk_config SET config = config || jsonb_build_object("
                     "'kill_switch', jsonb_build_object('active', true, 'by', 'ops', "
                     "'at', %s::text, 'reason', 'drill')) WHERE account = %s",
                     (datetime.now(UTC).isoformat(), ui_stack.seeded.account))
    page.see("Kill switch: ENGAGED", "drill")
    assert page.value(start) == "21:30"
    assert ui_stack.gate.commands[before:] == []  # nothing was submitted
    with ui_stack.conn() as conn:
        rows.risk_config(conn, ui_stack.seeded.account, weekly_profit_target="5000.00")
    page.see("Kill switch: off")

    page.navigate("Strategies")
    page.click(keyed(f"edit-{ui_stack.seeded.strategy['id']}", "label"))
    page.click(button("Validate"))
    page.see("Valid: the gate will accept this definition.")
    page.shot("16-strategies-json-editor")

    page.navigate("AI Trading")
    before = len(ui_stack.gate.commands)
    page.click(button("Engage kill switch…"))
    page.see("Engaging the kill switch stops every new trade")
    page.type_text(labelled("Reason (required, kept in the audit log)"), "browser test")
    page.click(button("Confirm: engage kill switch"))
    page.see("The gate applied it: AI trading OFF, kill switch engaged")
    page.shot("17-ai-trading-kill-switch")
    kills = [c for c in ui_stack.gate.commands[before:] if c["kind"] == "kill_switch"]
    assert [c["reason"] for c in kills] == ["browser test"]
