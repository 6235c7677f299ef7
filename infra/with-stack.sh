#!/usr/bin/env bash
# Run a command with the bus and the database up, then stop only what this script started.
# With KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL set, those services are used and nothing starts.
# With AI_TRADER_TEST_CONTAINERS=1 and a Docker engine, the tests start their own containers.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${AI_TRADER_TEST_CONTAINERS:-0}" = "1" ] && docker info >/dev/null 2>&1; then
  echo "with-stack: AI_TRADER_TEST_CONTAINERS=1 and Docker answers: tests start containers"
  exec "$@"
fi

started=()
cleanup() {
  local rc=$?
  for svc in "${started[@]}"; do bash "infra/$svc.sh" stop || rc=1; done
  exit $rc
}
trap cleanup EXIT

for svc in postgres kafka; do
  if [ "$svc" = kafka ] && [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then continue; fi
  if [ "$svc" = postgres ] && [ -n "${DATABASE_URL:-}" ]; then continue; fi
  if ! bash "infra/$svc.sh" status >/dev/null 2>&1; then
    bash "infra/$svc.sh" start
    started+=("$svc")
  fi
done
for svc in postgres kafka; do
  if [ "$svc" = kafka ] && [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then continue; fi
  if [ "$svc" = postgres ] && [ -n "${DATABASE_URL:-}" ]; then continue; fi
  bash "infra/$svc.sh" wait
done

"$@"
