# shellcheck shell=bash
# Helpers shared by infra/kafka.sh and infra/postgres.sh. Sourced, never executed.
#
# Sets: INFRA_DIR, REPO_DIR, STATE_DIR (absolute; from $AI_TRADER_STATE_DIR or <repo>/.state)

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
REPO_DIR="$(cd "$INFRA_DIR/.." && pwd -P)"
STATE_DIR="${AI_TRADER_STATE_DIR:-$REPO_DIR/.state}"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd -P)"

# `say` goes to stdout (stack.sh --quiet silences it), errors go to stderr.
say() { printf '%s: %s\n' "$COMPONENT" "$*"; }
warn() { printf '%s: warning: %s\n' "$COMPONENT" "$*" >&2; }
die() { printf '%s: error: %s\n' "$COMPONENT" "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
elapsed_s() { # elapsed_s START_MS -> "1.234"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

# A live process (a zombie, killed but not reaped yet, counts as dead). Builtins only: cheap.
pid_alive() {
  local line st
  [[ -n "${1:-}" && "$1" =~ ^[0-9]+$ ]] || return 1
  { IFS= read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  st="${line##*) }"; st="${st%% *}"
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# The command line of a pid with NULs as spaces ("" when gone). Builtins only.
pid_cmdline() {
  local -a args=()
  { mapfile -d '' args <"/proc/$1/cmdline"; } 2>/dev/null || return 0
  printf '%s' "${args[*]}"
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Who listens on a local TCP port (for error messages); "" when unknown.
port_owner() {
  local port=$1 line=""
  if command -v ss >/dev/null 2>&1; then
    line="$(ss -H -ltnp "sport = :$port" 2>/dev/null | head -n1 || true)"
    if [[ "$line" =~ pid=([0-9]+) ]]; then
      printf 'pid %s: %s' "${BASH_REMATCH[1]}" "$(pid_cmdline "${BASH_REMATCH[1]}" | tr -s '\n\t ' ' ' | cut -c1-120)"
      return
    fi
  fi
  [[ -n "$line" ]] && printf '%s' "$line"
  return 0
}

# Fail when HOST:PORT is already served by a process that is not ours.
require_port_free() { # require_port_free HOST PORT WHAT
  local host=$1 port=$2 what=$3 owner
  if port_open "$host" "$port"; then
    owner="$(port_owner "$port")"
    die "$what port $host:$port is already in use by another process${owner:+ ($owner)}; stop it or choose another port"
  fi
}

# pids (one per line) that hold FILE open, from /proc/*/fd.
file_holders() {
  local file
  file="$(readlink -f "$1")"
  { find /proc/[0-9]*/fd -maxdepth 1 -lname "$file" 2>/dev/null || true; } | cut -d/ -f3 | sort -un
}

# Print the last N lines of each existing file, with a header.
tail_logs() { # tail_logs N FILE...
  local n=$1 f; shift
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    printf -- '----- last %d lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
  done
}
