#!/usr/bin/env bash
# The whole local stack: PostgreSQL (infra/postgres.sh) + Kafka (infra/kafka.sh).
#
#   infra/stack.sh start [--quiet]   start both, wait until both answer, print the connection settings:
#                                      KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092
#                                      DATABASE_URL=postgresql://postgres@127.0.0.1:15432/ai_trader
#   infra/stack.sh stop [--quiet]    stop both
#   infra/stack.sh status [--quiet]  status of both; exit 0 when both run, 3 otherwise
#
# --quiet: only the two settings lines (start) or nothing (stop/status); errors still go to stderr.
#   set -a; eval "$(infra/stack.sh start --quiet)"; set +a
# Same environment variables as the two scripts (AI_TRADER_STATE_DIR, KAFKA_PORT, PGPORT_AI_TRADER,
# KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to use external services, ...).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
QUIET=0
CMD=""
for arg in "$@"; do
  case "$arg" in
    -q|--quiet) QUIET=1 ;;
    start|stop|status) CMD="$arg" ;;
    *) echo "usage: infra/stack.sh {start|stop|status} [--quiet]" >&2; exit 2 ;;
  esac
done
[[ -n "$CMD" ]] || { echo "usage: infra/stack.sh {start|stop|status} [--quiet]" >&2; exit 2; }

run() { # run SCRIPT ARGS...: chatter to stdout unless --quiet
  if [[ "$QUIET" == 1 ]]; then bash "$HERE/$1" "${@:2}" >/dev/null; else bash "$HERE/$1" "${@:2}"; fi
}

settings() {
  echo "KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-19092}}"
  echo "DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:${PGPORT_AI_TRADER:-15432}/ai_trader}"
}

case "$CMD" in
  start)
    t0=$(date +%s%3N)
    # kafka first: its JVM boots in the background while postgres starts
    run kafka.sh start
    run postgres.sh start
    run postgres.sh wait
    run kafka.sh wait
    if [[ "$QUIET" != 1 ]]; then
      d=$(( $(date +%s%3N) - t0 ))
      printf 'stack: ready in %d.%03ds\n' $((d / 1000)) $((d % 1000))
    fi
    settings
    ;;
  stop)
    rc=0
    run kafka.sh stop || rc=$?
    run postgres.sh stop || rc=$?
    exit "$rc"
    ;;
  status)
    rc=0
    run kafka.sh status || rc=3
    run postgres.sh status || rc=3
    exit "$rc"
    ;;
esac
