"""The project's processes (`ai-trader worker | sinks | broker | api`) as subprocesses.

Each runs exactly as in production, from its own working directory (so state such as
faust's data directory stays out of the repository), on a test's topic prefix and
database, with a known command key. The tests and the soak talk to them only through
the bus, the database and HTTP, and may stop them politely or kill them with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from topics.catalog import Catalog
from topics.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def service_env(settings: Settings, catalog: Catalog, account: str, key: bytes,
                state_dir: Path, database_url: str | None = None,
                **extra: str) -> dict[str, str]:
    """Environment of one deployment: prefix, account, key, state directory, database."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "AI_TRADER_TOPIC_PREFIX": catalog.prefix,
        "AI_TRADER_ACCOUNT": account,
        "AI_TRADER_METRICS_PORT": "0",
        "AI_TRADER_STATE_DIR": str(state_dir),
        "COMMAND_HMAC_KEY": key.decode(),
        "AI_TRADER_ENV": "test",
        "PYTHONPATH": str(REPO),
        **extra,
    }
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


class Service:
    """One `ai-trader <args>` subprocess, restartable, its output appended to one log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.peak_rss = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            out.write(f"\n==== start {self.starts + 1} of {self.name} ====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "api.cli", *self.args], cwd=self.workdir, env=self.env,
                stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL, no goodbye: nothing flushed, nothing committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
            self.kills += 1
        self.proc = None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def rss(self) -> int:
        """Resident memory of the process now, in bytes (0 when not running)."""
        if not self.alive() or self.proc is None:
            return 0
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                value = int(line.split()[1]) * 1024
                self.peak_rss = max(self.peak_rss, value)
                return value
        return 0

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_for(what: str, check: object, timeout: float = 60.0, every: float = 0.25) -> None:
    """Poll `check()` until true; fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
