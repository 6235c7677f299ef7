"""`ai-trader run`: start every process of the stack, keep them up, stop them together.

One supervisor per state directory: its PID file makes a second `make run`
say that one is already running. A child that dies is restarted with backoff
(and the restart is logged); Ctrl-C or SIGTERM stops every child, SIGKILL after
a grace period, so `make stop` leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from topics.settings import Settings

log = logging.getLogger(__name__)

GRACE_SECONDS = 15.0


class AlreadyRunning(RuntimeError):
    """Another supervisor owns this state directory."""


@dataclass
class Service:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0
    next_start: float = 0.0


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie we own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class PidLock:
    """A PID file that detects a live owner and cleans a stale one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def owner(self) -> int | None:
        """The live owner's pid, or None (a stale file is removed)."""
        try:
            pid = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid):
            return pid
        log.warning("removing stale pid file %s (pid %s is gone)", self.path, pid)
        self.path.unlink(missing_ok=True)
        return None

    def acquire(self) -> None:
        """Take the lock or raise `AlreadyRunning`."""
        owner = self.owner()
        if owner is not None and owner != os.getpid():
            raise AlreadyRunning(f"ai-trader is already running (pid {owner})")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(str(os.getpid()))

    def release(self) -> None:
        """Remove the file if it is ours."""
        if self.owner() == os.getpid():
            self.path.unlink(missing_ok=True)


def services(settings: Settings, with_ui: bool = True) -> list[Service]:
    """The processes `make run` starts, in start order."""
    exe = [sys.executable, "-m", "api.cli"]
    out = [
        Service("feeds", [*exe, "feeds", "--demo"]),
        Service("worker", [*exe, "worker"]),
        Service("broker", [*exe, "broker"]),
        Service("sinks", [*exe, "sinks"]),
        Service("explainer", [*exe, "explainer"]),
        Service("api", [*exe, "api"], url=f"http://{settings.api_host}:{settings.api_port}"),
    ]
    ui_app = Path(__file__).resolve().parents[1] / "ui" / "app.py"
    if with_ui and ui_app.exists():
        out.append(
            Service(
                "ui",
                [sys.executable, "-m", "streamlit", "run", str(ui_app),
                 "--server.port", str(settings.ui_port), "--server.headless", "true"],
                url=f"http://127.0.0.1:{settings.ui_port}",
            )
        )
    return out


class Supervisor:
    """Starts services, restarts the ones that die, stops them all on a signal."""

    def __init__(self, settings: Settings, svcs: list[Service]) -> None:
        self.settings = settings
        self.services = svcs
        self.lock = PidLock(settings.state_dir / "run.pid")
        self.logs = settings.state_dir / "logs"
        self._stopping = False

    def _start(self, svc: Service) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = open(self.logs / f"{svc.name}.log", "ab")  # noqa: SIM115 - owned by the child
        svc.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            svc.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        log.info("started %s (pid %s)", svc.name, svc.process.pid)

    def _check(self, svc: Service, now: float) -> None:
        if svc.process is None or svc.process.poll() is None:
            return
        code = svc.process.returncode
        svc.process = None
        svc.restarts += 1
        delay = min(30.0, 2.0 ** min(svc.restarts, 5))
        svc.next_start = now + delay
        log.error("%s exited with %s; restart %d in %.0fs (see %s/%s.log)",
                  svc.name, code, svc.restarts, delay, self.logs, svc.name)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def run(self) -> int:
        """Block until a signal arrives; returns the exit code."""
        self.lock.acquire()
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            for svc in self.services:
                self._start(svc)
            self._announce()
            while not self._stopping:
                now = time.monotonic()
                for svc in self.services:
                    self._check(svc, now)
                    if svc.process is None and now >= svc.next_start and not self._stopping:
                        self._start(svc)
                time.sleep(0.5)
        finally:
            self.stop_all()
            self.lock.release()
        return 0

    def _announce(self) -> None:
        print("ai-trader is running. Ctrl-C (or `make stop`) stops everything.", flush=True)
        print(f"  bus       {self.settings.kafka_bootstrap_servers}", flush=True)
        for svc in self.services:
            where = svc.url or f"log: {self.logs / (svc.name + '.log')}"
            print(f"  {svc.name:<9} {where}", flush=True)

    def stop_all(self) -> None:
        """SIGTERM every child's process group, then SIGKILL what remains after the grace."""
        running = [
            (s.name, s.process) for s in self.services if s.process and s.process.poll() is None
        ]
        for _, proc in running:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + GRACE_SECONDS
        for name, proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs: killing", name, GRACE_SECONDS)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
