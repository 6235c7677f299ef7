"""Server-side render time of every UI screen, against the real API on seeded data.

    .venv/bin/python tests/bench/bench_ui.py [--runs 20]

Creates a throwaway database (migrated like production) and uuid-prefixed topics,
seeds every screen's data (tests/ui/seed.py), serves the API with uvicorn on a free
port, then renders each screen with Streamlit's AppTest (the script run a browser
session triggers: every API call the page makes, over real HTTP). Cold = the UI's
read cache cleared before each run; warm = within the cache's 2 s lifetime (what the
header and a page asking for the same thing, or a quick rerun, cost). Prints p50 / p99
per screen. The database and topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from api.app import create_app  # noqa: E402
from api.auth import hash_password  # noqa: E402
from api.config import ApiSettings  # noqa: E402
from sinks import queries  # noqa: E402
from sinks.migrate import migrate  # noqa: E402
from tests.api.server import serving  # noqa: E402
from tests.ui.seed import seed  # noqa: E402
from topics.bus import admin_client, ensure_topics  # noqa: E402
from topics.catalog import Catalog  # noqa: E402
from topics.settings import Settings  # noqa: E402
from ui import state  # noqa: E402
from ui.api_client import ApiClient  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PASSWORD = "bench password 1234"
SCREENS = ["dashboard", "ideas", "strategies", "history", "analysis", "data", "chart",
           "settings"]


def _render(token: str, screen: str, cold: bool) -> float:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[state.LOGIN_KEY] = token
    at.run()
    at.switch_page(f"screens/{screen}.py")
    if cold:
        state.changed()
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"{screen}: {at.exception}")
    return elapsed * 1000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    base = Settings()  # type: ignore[call-arg]
    name = f"bench_ui_{uuid.uuid4().hex[:8]}"
    admin_dsn = base.database_dsn().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    catalog = Catalog(prefix=f"b{uuid.uuid4().hex[:12]}.")
    settings = base.model_copy(update={
        "database_url": base.database_url.__class__(base.database_dsn().rsplit("/", 1)[0]
                                                    + "/" + name),
        "topic_prefix": catalog.prefix, "account": "bench"})
    try:
        migrate(settings)
        ensure_topics(settings, catalog)
        email = "bench@example.com"
        with psycopg.connect(settings.database_dsn(), autocommit=True) as conn:
            queries.insert_user(conn, str(uuid.uuid4()), email, hash_password(PASSWORD))
            seed(conn, settings.account)
        app = create_app(settings, ApiSettings(), catalog=catalog, migrate_db=False)
        with serving(app) as url:
            os.environ["AI_TRADER_UI_API_URL"] = url
            token = ApiClient(url).login(email, PASSWORD).token
            print(f"cores={os.cpu_count()} runs={args.runs} api={url}")
            print(f"{'screen':<12} {'cold p50':>9} {'cold p99':>9} {'warm p50':>9} "
                  f"{'warm p99':>9}  (ms, server-side render incl. API calls)")
            for screen in SCREENS:
                cold = [_render(token, screen, True) for _ in range(args.runs)]
                warm = [_render(token, screen, False) for _ in range(args.runs)]
                print(f"{screen:<12} {statistics.median(cold):9.1f} {_pct(cold, .99):9.1f} "
                      f"{statistics.median(warm):9.1f} {_pct(warm, .99):9.1f}")
    finally:
        admin = admin_client(settings)
        for fut in admin.delete_topics(list(catalog.physical_topics()),
                                       operation_timeout=30).values():
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning
                print(f"topic cleanup: {exc}", file=sys.stderr)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
