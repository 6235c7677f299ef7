#!/usr/bin/env bash
# `make run` / `make stop`: the whole stack in the foreground until Ctrl-C.
# Starts the bus and the database when they are not running, then the supervisor
# (`ai-trader run`), which starts every process of the pipeline. On exit it stops
# what it started; `make stop` stops everything from another terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
state="${AI_TRADER_STATE_DIR:-$PWD/.state}"
pidfile="$state/run.pid"
startfile="$state/run.started"

supervisor_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

stop() {
  local pid
  if pid=$(supervisor_pid); then
    echo "stopping ai-trader (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  bash infra/kafka.sh stop
  bash infra/postgres.sh stop
  rm -f "$startfile"
}

start() {
  local pid
  if pid=$(supervisor_pid); then
    echo "ai-trader is already running (pid $pid): 'make stop' stops it."
    exit 0
  fi
  mkdir -p "$state"
  : > "$startfile"
  for svc in postgres kafka; do
    if ! bash "infra/$svc.sh" status >/dev/null 2>&1; then
      bash "infra/$svc.sh" start
      echo "$svc" >> "$startfile"
    fi
  done
  bash infra/postgres.sh wait
  bash infra/kafka.sh wait
  trap 'on_exit' EXIT
  .venv/bin/ai-trader setup
  .venv/bin/ai-trader run
}

on_exit() {
  local svc
  while read -r svc; do
    [ -n "$svc" ] && bash "infra/$svc.sh" stop
  done < "$startfile"
  rm -f "$startfile"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
