"""Every SQL statement the API, the UI and the CLI read (and the few they write) with.

Functions take an open psycopg connection (sync: the API runs them in its thread pool,
the Streamlit UI and the CLI call them directly) and return plain dicts (`dict_row`),
so callers never see SQL. The schema is `sinks/migrations/0001_base.sql` (written by
the sinks) plus `0003_api_auth.sql` (users' login attempts and revoked tokens).

Ordering of the decision history is `(occurred_at DESC, id DESC)`; pages continue with
a keyset `after=(occurred_at, id)` so a page costs the same at any depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Row = dict[str, Any]
Conn = psycopg.Connection[Any]


def _all(conn: Conn, query: LiteralString | sql.Composed, params: Any = None) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _one(conn: Conn, query: LiteralString | sql.Composed, params: Any = None) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def _select(columns: LiteralString, rest: LiteralString) -> sql.Composed:
    """`SELECT <columns> <rest>` from constant text (composed, never string-formatted)."""
    return sql.SQL(" ").join([sql.SQL("SELECT"), sql.SQL(columns), sql.SQL(rest)])


def ping(conn: Conn) -> bool:
    """The database answers."""
    return _one(conn, "SELECT 1 AS ok") is not None


# ------------------------------------------------------------------------------- users


def user_by_email(conn: Conn, email: str) -> Row | None:
    """id, email, password_hash, role of a user, by email (case-insensitive)."""
    return _one(conn, "SELECT id, email, password_hash, role FROM users WHERE lower(email) = "
                      "lower(%s)", (email,))


def principal(conn: Conn, user_id: str, jti: str) -> Row | None:
    """The user a token names, with `revoked` = the token was logged out; None = no user."""
    return _one(conn, "SELECT u.id, u.email, u.role, EXISTS (SELECT 1 FROM revoked_tokens r "
                      "WHERE r.jti = %s) AS revoked FROM users u WHERE u.id = %s",
                (jti, user_id))


def insert_user(conn: Conn, user_id: str, email: str, password_hash: str,
                role: str = "owner") -> None:
    """Create a user (raises `psycopg.errors.UniqueViolation` when the email exists)."""
    conn.execute("INSERT INTO users (id, email, password_hash, role) VALUES (%s, %s, %s, %s)",
                 (user_id, email, password_hash, role))


def set_password(conn: Conn, email: str, password_hash: str) -> bool:
    """Replace a user's password hash; False when there is no such user."""
    cur = conn.execute("UPDATE users SET password_hash = %s WHERE lower(email) = lower(%s)",
                       (password_hash, email))
    return cur.rowcount == 1


def list_users(conn: Conn) -> list[Row]:
    """Every user (no hashes)."""
    return _all(conn, "SELECT id, email, role, created_at FROM users ORDER BY created_at")


def record_login(conn: Conn, email: str, address: str, succeeded: bool) -> None:
    """Remember a login attempt (and forget those older than a day)."""
    conn.execute("INSERT INTO login_attempts (email, address, succeeded) VALUES (%s, %s, %s)",
                 (email.lower(), address, succeeded))
    if not succeeded:
        conn.execute("DELETE FROM login_attempts WHERE attempted_at < now() - interval '1 day'")


def login_failures(conn: Conn, email: str, address: str, since: datetime) -> Row:
    """Failed logins since `since`: `by_email` (after the account's last success) and
    `by_address`, with the oldest failure of each (for Retry-After)."""
    row = _one(conn, """
        WITH last_ok AS (
            SELECT max(attempted_at) AS at FROM login_attempts
            WHERE email = %(email)s AND succeeded AND attempted_at >= %(since)s)
        SELECT
          (SELECT count(*) FROM login_attempts, last_ok WHERE email = %(email)s AND NOT succeeded
             AND attempted_at >= %(since)s
             AND (last_ok.at IS NULL OR attempted_at > last_ok.at)) AS by_email,
          (SELECT min(attempted_at) FROM login_attempts, last_ok WHERE email = %(email)s
             AND NOT succeeded AND attempted_at >= %(since)s
             AND (last_ok.at IS NULL OR attempted_at > last_ok.at)) AS email_oldest,
          (SELECT count(*) FROM login_attempts WHERE address = %(address)s AND NOT succeeded
             AND attempted_at >= %(since)s) AS by_address,
          (SELECT min(attempted_at) FROM login_attempts WHERE address = %(address)s
             AND NOT succeeded AND attempted_at >= %(since)s) AS address_oldest
        """, {"email": email.lower(), "address": address, "since": since})
    assert row is not None  # noqa: S101 - an aggregate always returns a row
    return row


def revoke_token(conn: Conn, jti: str, user_id: str, expires_at: datetime) -> None:
    """Refuse a token from now on (logout); expired ones are purged."""
    conn.execute("INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES (%s, %s, %s) "
                 "ON CONFLICT (jti) DO NOTHING", (jti, user_id, expires_at))
    conn.execute("DELETE FROM revoked_tokens WHERE expires_at < now()")


# ------------------------------------------------------------------- risk, strategies


def risk_config(conn: Conn, account: str) -> Row | None:
    """The account's risk configuration as the gate last applied it."""
    return _one(conn, "SELECT account, config, config_hash, version, ai_trading_enabled, "
                      "last_halt_reason, updated_by, updated_at FROM risk_config "
                      "WHERE account = %s", (account,))


_STRATEGY_COLUMNS: LiteralString = (
    "id, name, version, is_active, definition, definition_hash, updated_by, created_at, "
    "updated_at")


def strategies(conn: Conn) -> list[Row]:
    """Every strategy, by name."""
    return _all(conn, _select(_STRATEGY_COLUMNS, "FROM strategies ORDER BY name, id"))


def strategy(conn: Conn, strategy_id: str) -> Row | None:
    """One strategy by id."""
    return _one(conn, _select(_STRATEGY_COLUMNS, "FROM strategies WHERE id = %s"),
                (strategy_id,))


# ------------------------------------------------------------------------------ ideas


_IDEA_COLUMNS: LiteralString = (
    "id, account, symbol, timeframe, direction, entry_price, entry_range, stop_loss, "
    "take_profit, lot_size, expected_hold, rationale, confidence_score, status::text AS status, "
    "status_reason, strategy_id, strategy_version, snapshot_ref, expires_at, created_at, "
    "updated_at")


def ideas(conn: Conn, statuses: Sequence[str], limit: int = 100,
          account: str | None = None) -> list[Row]:
    """The newest ideas with one of `statuses` (all statuses when empty)."""
    return _all(conn, _select(_IDEA_COLUMNS, "FROM trade_ideas "
                      "WHERE (cardinality(%(st)s::text[]) = 0 OR status::text = ANY(%(st)s)) "
                      "AND (%(acc)s::text IS NULL OR account = %(acc)s) "
                      "ORDER BY created_at DESC, id DESC LIMIT %(lim)s"),
                {"st": list(statuses), "acc": account, "lim": limit})


def idea(conn: Conn, idea_id: str) -> Row | None:
    """One idea by id."""
    return _one(conn, _select(_IDEA_COLUMNS, "FROM trade_ideas WHERE id = %s"), (idea_id,))


# -------------------------------------------------------------------- decision history


_DECISION_COLUMNS: LiteralString = (
    "id, account, occurred_at, symbol, action::text AS action, outcome, rationale, "
    "confidence_score, risk_check_result, strategy_id, trade_idea_id, snapshot_ref, "
    "command_id, human_override, issuer")


def decision_history(
    conn: Conn,
    *,
    symbol: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> list[Row]:
    """Decisions newest first, filtered; `after` = the (occurred_at, id) of the previous
    page's last row. Uses the (symbol|action, occurred_at DESC) indexes."""
    where: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit}
    if symbol is not None:
        where.append(sql.SQL("symbol = %(symbol)s"))
        params["symbol"] = symbol
    if action is not None:
        where.append(sql.SQL("action = %(action)s::decision_action"))
        params["action"] = action
    if since is not None:
        where.append(sql.SQL("occurred_at >= %(since)s"))
        params["since"] = since
    if until is not None:
        where.append(sql.SQL("occurred_at < %(until)s"))
        params["until"] = until
    if after is not None:
        # the first clause is what an index range can use; the second breaks ties on id
        where.append(sql.SQL("occurred_at <= %(after_at)s "
                             "AND (occurred_at < %(after_at)s OR id < %(after_id)s)"))
        params["after_at"], params["after_id"] = after
    query = sql.SQL("SELECT {cols} FROM decision_history {where} "
                    "ORDER BY occurred_at DESC, id DESC LIMIT %(limit)s").format(
        cols=sql.SQL(_DECISION_COLUMNS),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    return _all(conn, query, params)


def decision(conn: Conn, decision_id: str) -> Row | None:
    """One decision by id."""
    return _one(conn, _select(_DECISION_COLUMNS, "FROM decision_history WHERE id = %s "
                      "ORDER BY occurred_at DESC LIMIT 1"), (decision_id,))


def last_decision(conn: Conn) -> Row | None:
    """The newest decision."""
    return _one(conn, _select(_DECISION_COLUMNS, "FROM decision_history "
                      "ORDER BY occurred_at DESC LIMIT 1"))


def snapshot_bundle(conn: Conn, snapshot_id: str) -> Row | None:
    """A snapshot bundle's decoded record (`bundle`) and its key columns."""
    return _one(conn, "SELECT snapshot_id, account, symbol, timeframe, strategy_id, "
                      "strategy_version, strategy_hash, captured_at, bundle "
                      "FROM snapshot_bundles WHERE snapshot_id = %s", (snapshot_id,))


# ---------------------------------------------------------------------------- account


_ACCOUNT_COLUMNS: LiteralString = (
    "account, broker, balance, equity, margin_used, margin_free, open_pl, realized_pl_today, "
    "open_positions, positions, captured_at")


def latest_account(conn: Conn, account: str) -> Row | None:
    """The newest account snapshot."""
    return _one(conn, _select(_ACCOUNT_COLUMNS, "FROM snapshot_account WHERE account = %s "
                      "ORDER BY captured_at DESC LIMIT 1"), (account,))


def account_snapshots(conn: Conn, account: str, since: datetime, until: datetime,
                      limit: int) -> list[Row]:
    """Account snapshots in [since, until), newest first (no positions)."""
    return _all(conn, "SELECT captured_at, balance, equity, margin_used, margin_free, open_pl, "
                      "realized_pl_today, open_positions FROM snapshot_account "
                      "WHERE account = %s AND captured_at >= %s AND captured_at < %s "
                      "ORDER BY captured_at DESC LIMIT %s", (account, since, until, limit))


def order_history(conn: Conn, account: str, since: datetime, until: datetime,
                  limit: int) -> list[Row]:
    """Broker results of the account's orders in [since, until), newest first."""
    return _all(conn, """
        SELECT r.request_id, r.idea_id, r.status, r.broker, r.broker_order_id, r.filled_price,
               r.filled_volume, r.error_code, r.message, r.executed_at,
               q.symbol, q.direction, q.lot_size, q.stop_loss, q.take_profit, q.strategy_id,
               q.human_override
        FROM order_results r LEFT JOIN order_requests q ON q.request_id = r.request_id
        WHERE r.account = %s AND r.executed_at >= %s AND r.executed_at < %s
        ORDER BY r.executed_at DESC LIMIT %s""", (account, since, until, limit))


def balance_before(conn: Conn, account: str, at: datetime) -> Decimal | None:
    """The balance of the last snapshot before `at`, else the first one after it."""
    row = _one(conn, "SELECT balance FROM snapshot_account WHERE account = %s "
                     "AND captured_at < %s ORDER BY captured_at DESC LIMIT 1", (account, at))
    if row is None:
        row = _one(conn, "SELECT balance FROM snapshot_account WHERE account = %s "
                         "AND captured_at >= %s ORDER BY captured_at LIMIT 1", (account, at))
    return None if row is None else Decimal(row["balance"])


def daily_balances(conn: Conn, account: str, since: datetime, until: datetime) -> list[Row]:
    """The last balance of each UTC day in [since, until), oldest first."""
    return _all(conn, """
        SELECT DISTINCT ON (day) day, balance, equity FROM (
            SELECT date_trunc('day', captured_at, 'UTC') AS day, balance, equity, captured_at
            FROM snapshot_account
            WHERE account = %s AND captured_at >= %s AND captured_at < %s) s
        ORDER BY day, captured_at DESC""", (account, since, until))


def closed_positions(conn: Conn, account: str, since: datetime, until: datetime) -> list[Row]:
    """Positions seen open in [since, until) and gone from the last snapshot before `until`:
    their last marked P/L, and the entry, stop and first target of the idea that opened them.
    """
    return _all(conn, """
        WITH seen AS (
            SELECT DISTINCT ON (p->>'ticket')
                   p->>'ticket' AS ticket, p->>'symbol' AS symbol, p->>'direction' AS direction,
                   (p->>'volume')::numeric AS volume, (p->>'entry_price')::float8 AS entry_price,
                   (p->>'stop_loss')::float8 AS stop_loss, (p->>'unrealized_pl')::numeric AS pl,
                   p->>'idea_id' AS idea_id, s.captured_at AS last_seen_at
            FROM snapshot_account s CROSS JOIN LATERAL jsonb_array_elements(s.positions) AS p
            WHERE s.account = %(acc)s AND s.captured_at >= %(since)s AND s.captured_at < %(until)s
            ORDER BY p->>'ticket', s.captured_at DESC),
        still_open AS (
            SELECT p->>'ticket' AS ticket FROM (
                SELECT positions FROM snapshot_account
                WHERE account = %(acc)s AND captured_at < %(until)s
                ORDER BY captured_at DESC LIMIT 1) last
            CROSS JOIN LATERAL jsonb_array_elements(last.positions) AS p)
        SELECT seen.*, i.entry_price::float8 AS idea_entry, i.stop_loss::float8 AS idea_stop,
               i.take_profit[1]::float8 AS idea_target
        FROM seen LEFT JOIN trade_ideas i ON i.id = seen.idea_id
        WHERE seen.ticket NOT IN (SELECT ticket FROM still_open)
        ORDER BY seen.last_seen_at""", {"acc": account, "since": since, "until": until})


# ------------------------------------------------------------------------------- data


def calendar_events(conn: Conn, since: datetime, until: datetime, currency: str | None,
                    impact: str | None, limit: int) -> list[Row]:
    """Releases in [since, until) as last captured (newest actual values), by time."""
    return _all(conn, """
        SELECT * FROM (
            SELECT DISTINCT ON (event_id, event_time) event_id, event_time, currency,
                   impact_level, title, previous_value, forecast_value, actual_value, all_day,
                   source, captured_at
            FROM snapshot_calendar
            WHERE event_time >= %(since)s AND event_time < %(until)s
              AND (%(cur)s::text IS NULL OR currency = %(cur)s)
              AND (%(imp)s::text IS NULL OR impact_level = %(imp)s)
            ORDER BY event_id, event_time, captured_at DESC) e
        ORDER BY event_time, currency, title LIMIT %(lim)s""",
                {"since": since, "until": until, "cur": currency, "imp": impact, "lim": limit})


def news(conn: Conn, since: datetime, symbol: str | None, source: str | None,
         limit: int) -> list[Row]:
    """Headlines published since `since`, newest first, optionally tagged with `symbol`."""
    return _all(conn, """
        SELECT item_id, headline, source, url, summary, symbols, currencies, published_at,
               captured_at
        FROM snapshot_news
        WHERE published_at >= %(since)s
          AND (%(sym)s::text IS NULL OR %(sym)s = ANY(symbols) OR %(sym)s = ANY(currencies))
          AND (%(src)s::text IS NULL OR source = %(src)s)
        ORDER BY published_at DESC LIMIT %(lim)s""",
                {"since": since, "sym": symbol, "src": source, "lim": limit})


def latest_indicators(conn: Conn, pairs: Sequence[tuple[str, str]]) -> list[Row]:
    """The newest indicator row of each (symbol, timeframe) pair (one index probe each)."""
    if not pairs:
        return []
    return _all(conn, """
        SELECT i.* FROM unnest(%s::text[], %s::text[]) AS w(symbol, timeframe)
        CROSS JOIN LATERAL (
            SELECT symbol, timeframe, open_time, close, rsi_14, sma_50, sma_200, macd, atr,
                   pct_move_today, spread, captured_at
            FROM snapshot_indicators x
            WHERE x.symbol = w.symbol AND x.timeframe = w.timeframe
            ORDER BY open_time DESC LIMIT 1) i
        ORDER BY i.symbol, i.timeframe""",
                ([p[0] for p in pairs], [p[1] for p in pairs]))


def candles(conn: Conn, symbol: str, timeframe: str, limit: int) -> list[Row]:
    """The newest `limit` candles of a symbol and timeframe, oldest first, each with the
    indicators computed on it (for the price chart)."""
    return _all(conn, """
        SELECT * FROM (
            SELECT m.symbol, m.timeframe, m.open_time, m.open, m.high, m.low, m.close,
                   m.volume, m.spread, i.sma_50, i.sma_200, i.rsi_14
            FROM snapshot_market m
            LEFT JOIN snapshot_indicators i
              ON i.symbol = m.symbol AND i.timeframe = m.timeframe
             AND i.open_time = m.open_time
            WHERE m.symbol = %s AND m.timeframe = %s
            ORDER BY m.open_time DESC LIMIT %s) newest
        ORDER BY open_time""", (symbol, timeframe, limit))


def indicator_pairs(conn: Conn, since: datetime) -> list[tuple[str, str]]:
    """The (symbol, timeframe) pairs with indicators captured since `since`."""
    rows = _all(conn, "SELECT DISTINCT symbol, timeframe FROM snapshot_indicators "
                      "WHERE captured_at >= %s ORDER BY 1, 2", (since,))
    return [(r["symbol"], r["timeframe"]) for r in rows]


# ------------------------------------------------------------------------ health, ops


def feed_health(conn: Conn) -> list[Row]:
    """The latest health report of every feed and connector."""
    return _all(conn, "SELECT feed, status, last_success, last_error, last_error_at, "
                      "items_total, dead_letters_total, reported_at FROM feed_health "
                      "ORDER BY feed")


def unanswered_commands(conn: Conn, since: datetime) -> Row:
    """Commands issued since `since` with no reply yet: how many, and the oldest's time
    (how far behind the gate is)."""
    row = _one(conn, """
        SELECT count(*) AS pending, min(c.issued_at) AS oldest
        FROM control_commands c LEFT JOIN command_replies r ON r.command_id = c.command_id
        WHERE c.issued_at >= %s AND r.command_id IS NULL""", (since,))
    assert row is not None  # noqa: S101 - an aggregate always returns a row
    return row


def dead_letter_count(conn: Conn, since: datetime) -> int:
    """Dead letters received since `since`."""
    row = _one(conn, "SELECT count(*) AS n FROM dead_letters WHERE received_at >= %s", (since,))
    return 0 if row is None else int(row["n"])
