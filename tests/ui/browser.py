"""A real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium)
on the UI served by `streamlit run`, started exactly as `make run`'s supervisor does.

The browser is installed by `infra/browser.sh install` (`make infra-install`); when it
is missing, the test fails with the reason instead of being skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from api.supervisor import services
from topics.settings import Settings

REPO = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60

#: how to find an element: (selenium `By` strategy, selector)
Locator = tuple[str, str]


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver) from the project's install script, or fail saying why."""
    done = subprocess.run(["bash", str(REPO / "infra" / "browser.sh"), "path"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"no browser for the UI tests: {done.stderr.strip()} "
                    "(run `make infra-install` or `bash infra/browser.sh install`)", False)
    chromium, driver = done.stdout.split()
    return chromium, driver


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def streamlit_ui(settings: Settings, env: dict[str, str], log: Path) -> Iterator[str]:
    """`streamlit run ui/app.py` as the supervisor starts it, on a free port; its URL."""
    port = free_port()
    (svc,) = [s for s in services(settings.model_copy(update={"ui_port": port}))
              if s.name == "ui"]
    with log.open("wb") as out:
        proc = subprocess.Popen(svc.argv, cwd=REPO, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}: {log.read_text()}", False)
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer in {WAIT_SECONDS}s: {log.read_text()}",
                            False)
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def chromium(timezone: str = "UTC") -> Iterator[webdriver.Chrome]:
    """A headless Chromium with the system driver (never a downloaded one), in `timezone`."""
    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1500,1400", "--lang=en-US"):
        options.add_argument(arg)
    try:
        service = Service(executable_path=driver_path, env={**os.environ, "TZ": timezone})
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as exc:
        pytest.fail(f"chromium did not start: {exc.msg}", False)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """What a person does in the browser: read, type, click, wait, take a screenshot."""

    def __init__(self, driver: webdriver.Chrome, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def text(self) -> str:
        """Every visible text of the page."""
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def wait(self, what: str, check: Callable[[], bool]) -> None:
        """Until `check()` holds; the failure names what was awaited and what is shown."""
        try:
            WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.2).until(
                lambda _d: check())
        except TimeoutException:
            self.shot(f"failed-{what.replace(' ', '-')[:40]}")
            raise AssertionError(f"waited {WAIT_SECONDS}s for {what}; the page shows:\n"
                                 f"{self.text()[:3000]}") from None

    def see(self, *texts: str) -> None:
        """Until every text is on the page."""
        self.wait(" and ".join(texts), lambda: all(t in self.text() for t in texts))

    def shot(self, name: str) -> Path:
        """A full-window PNG under the screenshots folder."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def act(self, what: str, locator: Locator, action: Callable[[WebElement], object]) -> None:
        """Find the first visible match and act on it; a live refresh that re-renders the
        element in between (stale, covered) just means: find it again."""
        def attempt() -> bool:
            try:
                found = [e for e in self.driver.find_elements(*locator) if e.is_displayed()]
                if not found:
                    return False
                action(found[0])
                return True
            except (StaleElementReferenceException, ElementClickInterceptedException,
                    ElementNotInteractableException):
                return False
        self.wait(what, attempt)

    def click(self, locator: Locator) -> None:
        """Click what `locator` finds."""
        self.act(f"click on {locator[1]}", locator, lambda e: e.click())

    def type_text(self, locator: Locator, text: str, commit: bool = True) -> None:
        """Replace an input's text; Enter commits it (in a form, Enter submits the form)."""
        def typing(element: WebElement) -> None:
            element.click()
            element.send_keys(Keys.CONTROL + "a")  # one call: the modifier stays down in it
            element.send_keys(Keys.BACKSPACE)
            element.send_keys(text)
            if commit:
                element.send_keys(Keys.ENTER)
        self.act(f"typing into {locator[1]}", locator, typing)

    def value(self, locator: Locator) -> str:
        """The current value of an input."""
        got: list[str] = []
        self.act(f"reading {locator[1]}", locator,
                 lambda e: got.append(str(e.get_attribute("value"))))
        return got[0]

    def navigate(self, title: str) -> None:
        """Click a page in the sidebar (client side: the session and its login stay)."""
        self.click((By.XPATH, f'//a[@data-testid="stSidebarNavLink"]'
                              f'[.//*[normalize-space(text())="{title}"]]'))


def keyed(key: str, css: str = "") -> Locator:
    """The widget with this Streamlit key (its container has class `st-key-<key>`)."""
    return By.CSS_SELECTOR, f".st-key-{key} {css}".strip()


def labelled(label: str) -> Locator:
    """The input whose accessible label is `label`."""
    return By.CSS_SELECTOR, f'input[aria-label="{label}"]'


def button(label: str) -> Locator:
    """The button with this text."""
    return By.XPATH, f'//button[normalize-space(.)="{label}" or .//p[normalize-space(.)="{label}"]]'


def tab(label: str) -> Locator:
    """The tab with this label."""
    return By.XPATH, f'//*[@role="tab"][contains(normalize-space(.), "{label}")]'
