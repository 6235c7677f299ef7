"""`make soak` / `python -m tests.soak`: run the soak scenarios and print the summary table.

    python -m tests.soak                         # every scenario, about 10 minutes
    python -m tests.soak --minutes 30 --kills 40  # longer, more kills
    python -m tests.soak --only kill9,db --kafka-restart private

`--minutes` is the budget of the timed parts (the replays); each scenario gets its
share (kill -9 40 %, Kafka 12 %, database 15 %, MT5 10 %, load 18 %, replay-twice a
fixed number of bars), setup and accounting come on top (about 20-40 s per scenario).
Exit status 0 when nothing was lost or duplicated and every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable

from tests.soak.scenarios import (
    Row,
    db_outage,
    kafka_restart,
    kill9,
    load,
    mt5_faults,
    replay_twice,
    scenario_names,
)
from topics.bus import wait_for_bus
from topics.settings import Settings

SHARES = {"kill9": 0.40, "kafka": 0.12, "db": 0.15, "mt5": 0.10, "load": 0.18}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0,
                   help="budget of the timed replays, shared between the scenarios (5)")
    p.add_argument("--only", default=",".join(scenario_names()),
                   help=f"comma-separated scenarios ({','.join(scenario_names())})")
    p.add_argument("--kills", type=int, default=None,
                   help="kill -9 injections in the kill9 scenario (default: 1 per 12 s)")
    p.add_argument("--rate", type=float, default=3.0,
                   help="replay rounds per second (one M1 bar for each of 3 symbols) (3)")
    p.add_argument("--kafka-restart", choices=("stack", "private", "off"), default="stack",
                   help="stop/start the stack's broker (default, `make soak` only: it stops "
                        "the shared broker), a private second broker, or skip")
    p.add_argument("--kafka-outage", type=float, default=20.0, help="seconds down (20)")
    p.add_argument("--db-outage", type=float, default=60.0,
                   help="seconds the database refuses connections (60: the issue's minute)")
    p.add_argument("--load-symbols", type=int, default=50, help="symbols under load (50)")
    p.add_argument("--load-timeframes", default="M1,M5,M15",
                   help="timeframes under load (M1,M5,M15)")
    p.add_argument("--replay-bars", type=int, default=120,
                   help="rounds of bars in each of the two identical replays (120)")
    p.add_argument("--seed", type=int, default=20260301, help="random seed of the injections")
    p.add_argument("--keep", action="store_true",
                   help="keep topics, databases and logs of every scenario")
    return p.parse_args(argv)


def _plan(args: argparse.Namespace, settings: Settings) -> list[tuple[str, Callable[[], Row]]]:
    budget = args.minutes * 60
    secs = {name: max(30.0, budget * share) for name, share in SHARES.items()}
    kills = args.kills if args.kills is not None else max(4, int(secs["kill9"] / 12))
    tfs = tuple(t.strip() for t in args.load_timeframes.split(",") if t.strip())
    plan: dict[str, Callable[[], Row]] = {
        "kill9": lambda: kill9(settings, secs["kill9"], kills, args.rate, args.seed, args.keep),
        "kafka": lambda: kafka_restart(settings, secs["kafka"], args.kafka_outage, args.rate,
                                       args.kafka_restart, args.keep),
        "db": lambda: db_outage(settings, secs["db"], args.db_outage, args.rate, args.keep),
        "mt5": lambda: mt5_faults(settings, secs["mt5"], args.rate, args.seed, args.keep),
        "replay": lambda: replay_twice(settings, args.replay_bars, args.keep),
        "load": lambda: load(settings, secs["load"], args.load_symbols, tfs, args.keep),
    }
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in plan]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}")
    if args.kafka_restart == "off":
        wanted = [s for s in wanted if s != "kafka"]
    return [(name, plan[name]) for name in wanted]


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB" if value else "-"


def table(rows: list[Row]) -> str:
    """The summary table (scenario, injections, duration, processed, lost, duplicated,
    max lag, peak memory, verdict)."""
    head = ("scenario", "injections", "duration", "records processed", "lost", "duplicated",
            "max lag", "peak memory", "ok")
    body = [(r.scenario, r.injections, f"{r.seconds:.0f} s", f"{r.processed} bars",
             str(r.lost), str(r.duplicated), f"{r.max_lag} rec", _mib(r.peak_memory),
             "yes" if r.ok else "NO") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
           "|" + line + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            for row in body]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    settings = Settings()
    wait_for_bus(settings, 60)
    rows: list[Row] = []
    started = time.monotonic()
    for name, run in _plan(args, settings):
        print(f"== {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            row = run()
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the rest
            traceback.print_exc()
            row = Row(name, "-", time.monotonic() - t0, 0, 0, 0, 0, 0, False,
                      [f"PROBLEM: the scenario failed: {type(exc).__name__}: {exc}"])
        rows.append(row)
        print(f"   {row.scenario}: {'ok' if row.ok else 'NOT OK'} in {row.seconds:.0f} s")
        for line in row.details:
            print(f"   - {line}")
    print(f"\nsoak summary ({(time.monotonic() - started) / 60:.1f} min)\n")
    print(table(rows))
    return 0 if rows and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
