#!/usr/bin/env bash
# Every benchmark under tests/bench, one after the other, with their figures on stdout.
# `make bench` runs this with the bus and the database up (infra/with-stack.sh).
# BENCH_ONLY=gate,indicators runs a subset.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
only=",${BENCH_ONLY:-},"
rc=0
for f in tests/bench/bench_*.py; do
  name=$(basename "$f" .py); name=${name#bench_}
  if [ "$only" != ",," ] && [[ "$only" != *",$name,"* ]]; then continue; fi
  echo "=== bench: $name ($f)"
  "$PY" "$f" || { echo "bench $name failed" >&2; rc=1; }
  echo
done
exit $rc
