"""The progress bar of long runs (stderr)."""

from __future__ import annotations

import io

from streams.backtest.progress import Progress


def test_progress_prints_lines_off_a_terminal_and_a_final_state() -> None:
    out = io.StringIO()
    bar = Progress(200, "backtest", "candles", stream=out, quiet_interval=0.0)
    bar.update(50)
    bar.advance(150)
    bar.close()

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("backtest [#######.....................]  25.0% 50/200 candles")
    assert "100.0% 200/200 candles" in lines[-1]
    assert "\r" not in out.getvalue()


def test_progress_without_a_total_counts_and_can_be_silenced() -> None:
    out = io.StringIO()
    bar = Progress(None, "reading", "records", stream=out, quiet_interval=0.0)
    bar.update(1234)
    assert out.getvalue().startswith("reading: 1,234 records")
    quiet = io.StringIO()
    silent = Progress(10, "x", stream=quiet, enabled=False)
    silent.update(5)
    silent.close()
    assert quiet.getvalue() == ""
