"""The run supervisor's lock: one stack per state directory, stale owners cleaned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.supervisor import AlreadyRunning, PidLock, Service, Supervisor, pid_alive
from topics.settings import Settings


def test_second_run_is_refused_while_first_is_alive(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "run.pid").write_text(str(holder.pid))
        with pytest.raises(AlreadyRunning, match=f"already running \\(pid {holder.pid}\\)"):
            PidLock(tmp_path / "run.pid").acquire()
    finally:
        holder.kill()
        holder.wait()


def test_stale_pid_file_from_a_crash_is_cleaned(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run.pid").write_text(str(dead.pid))
    lock = PidLock(tmp_path / "run.pid")
    lock.acquire()
    assert (tmp_path / "run.pid").read_text() == str(os.getpid())
    lock.release()
    assert not (tmp_path / "run.pid").exists()


def test_garbage_pid_file_is_treated_as_stale(tmp_path: Path) -> None:
    (tmp_path / "run.pid").write_text("not a pid")
    assert PidLock(tmp_path / "run.pid").owner() is None


def test_stop_all_terminates_children_and_their_groups(tmp_path: Path) -> None:
    settings = Settings(AI_TRADER_STATE_DIR=tmp_path)  # type: ignore[call-arg]
    # a child that ignores SIGTERM, so the grace-then-SIGKILL path runs too
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    svcs = [Service("sleepy", [sys.executable, "-c", "import time; time.sleep(60)"]),
            Service("stubborn", [sys.executable, "-c", stubborn])]
    sup = Supervisor(settings, svcs)
    import api.supervisor as mod
    mod.GRACE_SECONDS = 1.0
    for svc in svcs:
        sup._start(svc)
    pids = [svc.process.pid for svc in svcs if svc.process]
    sup.stop_all()
    assert not any(pid_alive(pid) for pid in pids)


def test_json_flag_works_before_and_after_the_sub_command() -> None:
    from api.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--json", "config"]).json is True
    assert parser.parse_args(["config", "--json"]).json is True
    assert parser.parse_args(["config"]).json is False
