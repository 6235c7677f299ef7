#!/usr/bin/env bash
# Project-owned PostgreSQL cluster for ai-trader development and CI.
#
#   infra/postgres.sh install         install the Debian package when the binaries are missing (root),
#                                     create the cluster (initdb) when missing
#   infra/postgres.sh start           install if needed, start the server, create database ai_trader
#   infra/postgres.sh wait [SECONDS]  wait until pg_isready says the server accepts connections (60 s)
#   infra/postgres.sh status          running/stopped; exit 0 when running, 3 when stopped
#   infra/postgres.sh stop            fast shutdown (30 s), then immediate, then SIGKILL
#   infra/postgres.sh psql [ARGS...]  psql on the ai_trader database
#   infra/postgres.sh reset           stop and delete the cluster (all data)
#
# Environment: AI_TRADER_STATE_DIR (default <repo>/.state), PGPORT_AI_TRADER (15432),
# AI_TRADER_PG_FAST=1 (fsync/synchronous_commit/full_page_writes off: tests only),
# PG_BIN (directory of pg_ctl/initdb; default: highest /usr/lib/postgresql/*/bin),
# AI_TRADER_PG_OS_USER (server user when run as root; default postgres),
# PG_WAIT_TIMEOUT (60), PG_STOP_TIMEOUT (30).
# DATABASE_URL set => an external server is used: start/stop do nothing.
set -euo pipefail

COMPONENT=postgres
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

HOST=127.0.0.1
PORT="${PGPORT_AI_TRADER:-15432}"
DB=ai_trader
SUPERUSER=postgres
PG_DIR="$STATE_DIR/postgres"
DATA="$PG_DIR/data"
RUN="$PG_DIR/run"
LOGS="$PG_DIR/logs"
LOG="$LOGS/postgres.log"
CONF_NAME=ai_trader.conf
OS_USER="${AI_TRADER_PG_OS_USER:-postgres}"
BIN=""

as_root() { [[ "$(id -u)" == 0 ]]; }

external() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    say "DATABASE_URL is set: using that external server, nothing to $1"
    return 0
  fi
  return 1
}

# Directory with pg_ctl+initdb: $PG_BIN, else the version the cluster was made with, else the highest.
find_bin() {
  local d v
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/pg_ctl" && -x "$PG_BIN/initdb" ]] || die "PG_BIN=$PG_BIN has no pg_ctl/initdb"
    BIN="$PG_BIN"; return 0
  fi
  if [[ -f "$DATA/PG_VERSION" ]]; then
    v="$(cat "$DATA/PG_VERSION")"
    d="/usr/lib/postgresql/$v/bin"
    if [[ -x "$d/pg_ctl" ]]; then BIN="$d"; return 0; fi
    die "the cluster in $DATA is PostgreSQL $v but $d is missing: apt-get install postgresql-$v, or 'infra/postgres.sh reset' (deletes the data)"
  fi
  BIN=""
  for d in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V); do
    [[ -x "$d/pg_ctl" && -x "$d/initdb" ]] && BIN="$d"
  done
  if [[ -z "$BIN" ]] && command -v pg_ctl >/dev/null 2>&1; then
    d="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
    [[ -x "$d/initdb" ]] && BIN="$d"
  fi
  [[ -n "$BIN" ]]
}

ensure_binaries() {
  find_bin && return 0
  as_root || die "PostgreSQL server binaries (pg_ctl, initdb) not found: install the 'postgresql' package or set PG_BIN"
  say "PostgreSQL server binaries not found: apt-get install -y postgresql ..."
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
  find_bin || die "postgresql installed but no pg_ctl/initdb under /usr/lib/postgresql/*/bin"
}

# Run a command as the server's OS user (root cannot run postgres), from a directory it can enter.
run_pg() {
  if as_root; then
    (cd "$PG_DIR" && runuser -u "$OS_USER" -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

# When root: the server user must own the state dir and reach it through every parent.
prepare_dirs() {
  mkdir -p "$PG_DIR" "$RUN" "$LOGS"
  as_root || return 0
  id -u "$OS_USER" >/dev/null 2>&1 || die "OS user '$OS_USER' missing (the postgresql package creates it); set AI_TRADER_PG_OS_USER"
  chown "$OS_USER": "$PG_DIR" "$RUN" "$LOGS"
  [[ -e "$LOG" ]] && chown "$OS_USER": "$LOG"
  local d="$PG_DIR"
  local -a parents=()
  while [[ "$d" != / ]]; do d="$(dirname "$d")"; parents=("$d" "${parents[@]}"); done
  for d in "${parents[@]}"; do  # top down: a dir is reachable only if its parents are
    if ! runuser -u "$OS_USER" -- test -x "$d"; then
      warn "making $d traversable (o+x) so '$OS_USER' can reach $PG_DIR"
      chmod o+x "$d"
    fi
  done
}

init_cluster() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  local t0 locale=C
  t0=$(now_ms)
  if locale -a 2>/dev/null | grep -qix 'c.utf-\{0,1\}8'; then locale=C.UTF-8; fi
  say "creating cluster in $DATA ($("$BIN/postgres" --version | sed 's/^postgres (PostgreSQL) /PostgreSQL /'), locale $locale) ..."
  rm -rf "$DATA"
  local -a nosync=()
  [[ "${AI_TRADER_PG_FAST:-0}" == 1 ]] && nosync=(--no-sync)
  if ! run_pg "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust -E UTF8 --locale="$locale" \
      "${nosync[@]}" >"$LOGS/initdb.log" 2>&1; then
    cat "$LOGS/initdb.log" >&2
    die "initdb failed"
  fi
  # trust, but only on the socket and loopback (the server listens on 127.0.0.1 only anyway)
  cat >"$DATA/pg_hba.conf" <<'EOF'
# ai-trader local cluster (written by infra/postgres.sh): trust on the socket and 127.0.0.1 only.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
EOF
  printf "\n# ai-trader: port, socket dir and test tuning (rewritten on every start)\ninclude_if_exists = '%s'\n" \
    "$CONF_NAME" >>"$DATA/postgresql.conf"
  as_root && chown "$OS_USER": "$DATA/pg_hba.conf" "$DATA/postgresql.conf"
  say "cluster created in $(elapsed_s "$t0")s"
}

write_conf() {
  local fast="${AI_TRADER_PG_FAST:-0}" sync=on preload="" libdir
  [[ "$fast" == 1 ]] && sync=off
  # TimescaleDB features are used when the extension is present: preload it when installed
  libdir="$("$BIN/pg_config" --pkglibdir 2>/dev/null || true)"
  [[ -z "$libdir" ]] && libdir="$(dirname "$BIN")/lib"
  [[ -f "$libdir/timescaledb.so" ]] && preload=timescaledb
  cat >"$DATA/$CONF_NAME.tmp" <<EOF
# written by infra/postgres.sh start; edit the script, not this file
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 100
shared_buffers = 128MB
jit = off
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
shared_preload_libraries = '$preload'
# AI_TRADER_PG_FAST=$fast: durability off only for throwaway test clusters
fsync = $sync
synchronous_commit = $sync
full_page_writes = $sync
EOF
  [[ -n "$preload" ]] && echo "timescaledb.telemetry_level = off" >>"$DATA/$CONF_NAME.tmp"
  mv "$DATA/$CONF_NAME.tmp" "$DATA/$CONF_NAME"
  as_root && chown "$OS_USER": "$DATA/$CONF_NAME"
  return 0
}

cmd_install() {
  ensure_binaries
  prepare_dirs
  init_cluster
  say "binaries in $BIN, cluster in $DATA"
}

# Is PID the postmaster of this cluster? (a postgres process whose working dir is $DATA)
is_postmaster() {
  local cmd cwd
  pid_alive "$1" || return 1
  cmd="$(pid_cmdline "$1")"
  [[ "$cmd" == */postgres\ * || "$cmd" == postgres\ * ]] || return 1
  cwd="$(readlink "/proc/$1/cwd" 2>/dev/null || true)"
  [[ "$cwd" == "$DATA" ]]
}

# Every live process working in $DATA (postmaster, backends, orphans of a killed postmaster).
cluster_pids() {
  local p
  for p in $( { find /proc/[0-9]*/cwd -maxdepth 0 -lname "$DATA" 2>/dev/null || true; } | cut -d/ -f3); do
    pid_alive "$p" && echo "$p"
  done
  return 0
}

# pid of our running postmaster or "": postmaster.pid first, then a /proc scan
our_pid() {
  local pid="" p
  [[ -f "$DATA/postmaster.pid" ]] && pid="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
  if is_postmaster "$pid"; then echo "$pid"; return 0; fi
  for p in $(cluster_pids); do
    if [[ "$(pid_cmdline "$p")" == *" -D $DATA"* ]] && is_postmaster "$p"; then echo "$p"; return 0; fi
  done
  return 0
}

ready() { "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -d "$DB" -U "$SUPERUSER" -t 2; }

clean_stale() {
  local pid lock p left=""
  if [[ -f "$DATA/postmaster.pid" ]]; then
    pid="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
    if pid_alive "$pid"; then
      say "removing stale postmaster.pid: pid $pid is alive but is not this cluster's postmaster"
    else
      say "removing stale postmaster.pid: pid ${pid:-?} is not running (crashed or killed?)"
    fi
    rm -f "$DATA/postmaster.pid"
  fi
  # children of a killed postmaster exit on their own once they notice; give them a moment
  for _ in $(seq 1 50); do
    left="$(cluster_pids)"
    [[ -z "$left" ]] && break
    sleep 0.1
  done
  if [[ -n "$left" ]]; then
    say "killing leftover server processes of the old postmaster: $(echo "$left" | tr '\n' ' ')"
    for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.2
  fi
  for lock in "$RUN"/.s.PGSQL.*.lock; do
    [[ -e "$lock" ]] || continue
    pid="$(head -n1 "$lock" 2>/dev/null || true)"
    if ! is_postmaster "$pid"; then
      say "removing stale socket lock $lock (pid ${pid:-?} is not this cluster's postmaster)"
      rm -f "$lock" "${lock%.lock}"
    fi
  done
}

ensure_db() {
  local exists
  exists="$("$BIN/psql" -X -q -h "$HOST" -p "$PORT" -U "$SUPERUSER" -d postgres -tAc \
    "select 1 from pg_database where datname = '$DB'")" || die "cannot query the server on $HOST:$PORT"
  if [[ "$exists" != 1 ]]; then
    "$BIN/createdb" -h "$HOST" -p "$PORT" -U "$SUPERUSER" -E UTF8 -T template0 "$DB" \
      || die "createdb $DB failed"
    say "created database $DB"
  fi
}

cmd_start() {
  external start && return 0
  local pid t0 running_port
  t0=$(now_ms)
  cmd_install >/dev/null
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    running_port="$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)"
    if [[ -n "$running_port" && "$running_port" != "$PORT" ]]; then
      die "already running (pid $pid) on port $running_port, not $PORT: stop it first to change the port"
    fi
    if ready; then say "already running (pid $pid) on $HOST:$PORT"
    else say "already running (pid $pid), $HOST:$PORT not accepting connections yet: use 'infra/postgres.sh wait'"
    fi
    return 0
  fi
  clean_stale
  require_port_free "$HOST" "$PORT" server
  write_conf
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"
  touch "$LOG"; as_root && chown "$OS_USER": "$LOG"
  # pg_ctl detaches the postmaster (own session) and waits until it accepts connections
  if ! run_pg "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t "${PG_WAIT_TIMEOUT:-60}" -s; then
    tail_logs 30 "$LOG"
    die "server did not start (log: $LOG)"
  fi
  ensure_db
  pid="$(our_pid)"
  say "started (pid $pid) on $HOST:$PORT, $("$BIN/postgres" --version | sed 's/^postgres (PostgreSQL) /PostgreSQL /'), fsync $([[ "${AI_TRADER_PG_FAST:-0}" == 1 ]] && echo off || echo on), data $DATA ($(elapsed_s "$t0")s)"
}

cmd_wait() {
  local timeout="${1:-${PG_WAIT_TIMEOUT:-60}}" t0 deadline pid
  t0=$(now_ms)
  deadline=$(( t0 + timeout * 1000 ))
  if [[ -n "${DATABASE_URL:-}" ]]; then
    command -v pg_isready >/dev/null 2>&1 || find_bin || die "pg_isready not found"
    local isready; isready="$(command -v pg_isready || echo "$BIN/pg_isready")"
    until "$isready" -q -d "$DATABASE_URL" -t 2; do
      (( $(now_ms) < deadline )) || die "external server (DATABASE_URL) not ready after ${timeout}s"
      sleep 0.5
    done
    say "external server (DATABASE_URL) accepts connections ($(elapsed_s "$t0")s)"
    return 0
  fi
  find_bin || die "PostgreSQL binaries not found: run 'infra/postgres.sh install'"
  while :; do
    pid="$(our_pid)"
    if [[ -z "$pid" ]]; then
      tail_logs 30 "$LOG"
      die "server is not running (start it with 'infra/postgres.sh start')"
    fi
    if ready; then
      ensure_db
      say "ready on $HOST:$PORT (pid $pid) after $(elapsed_s "$t0")s"
      return 0
    fi
    if (( $(now_ms) >= deadline )); then
      tail_logs 30 "$LOG"
      die "server (pid $pid) not ready on $HOST:$PORT after ${timeout}s"
    fi
    sleep 0.3
  done
}

cmd_stop() {
  external stop && return 0
  local pid t0 timeout="${PG_STOP_TIMEOUT:-30}" left
  if ! find_bin; then say "not running (no binaries)"; return 0; fi
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    left="$(cluster_pids)"
    if [[ -n "$left" ]]; then
      say "no postmaster, killing leftover server processes: $(echo "$left" | tr '\n' ' ')"
      for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
    fi
    if [[ -f "$DATA/postmaster.pid" ]]; then
      say "not running (removing stale postmaster.pid, pid $(head -n1 "$DATA/postmaster.pid"))"
      rm -f "$DATA/postmaster.pid"
    else
      say "not running"
    fi
    return 0
  fi
  t0=$(now_ms)
  if ! run_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t "$timeout" -s; then
    warn "fast shutdown did not finish in ${timeout}s: immediate shutdown"
    run_pg "$BIN/pg_ctl" stop -D "$DATA" -m immediate -w -t 10 -s || true
  fi
  left="$(cluster_pids)"
  if [[ -n "$left" ]]; then
    warn "SIGKILL to leftover server processes: $(echo "$left" | tr '\n' ' ')"
    for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$DATA/postmaster.pid"
  fi
  say "stopped (pid $(echo "$pid" | head -n1)) in $(elapsed_s "$t0")s"
}

cmd_status() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    local isready; isready="$(command -v pg_isready || true)"
    [[ -z "$isready" ]] && find_bin && isready="$BIN/pg_isready"
    if [[ -n "$isready" ]] && "$isready" -q -d "$DATABASE_URL" -t 2; then
      say "external server (DATABASE_URL): accepting connections"; return 0
    fi
    say "external server (DATABASE_URL): not answering"; return 3
  fi
  local pid
  if ! find_bin; then say "stopped (PostgreSQL not installed)"; return 3; fi
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    if [[ -f "$DATA/postmaster.pid" ]]; then say "stopped (stale postmaster.pid: pid $(head -n1 "$DATA/postmaster.pid") is not this cluster)"
    else say "stopped"; fi
    return 3
  fi
  if ready; then say "running (pid $pid) on $HOST:$PORT, database $DB, data $DATA"
  else say "running (pid $pid), $HOST:$PORT not accepting connections yet"; fi
}

cmd_psql() {
  find_bin || die "PostgreSQL binaries not found"
  exec "$BIN/psql" -X -h "$HOST" -p "$PORT" -U "$SUPERUSER" -d "$DB" "$@"
}

cmd_reset() {
  external reset && return 0
  cmd_stop
  rm -rf "$DATA"
  say "cluster deleted ($DATA); next start creates a new one"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) shift; cmd_wait "$@" ;;
  psql) shift; cmd_psql "$@" ;;
  reset) cmd_reset ;;
  *) usage ;;
esac
