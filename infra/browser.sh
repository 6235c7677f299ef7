#!/usr/bin/env bash
# The headless browser of the UI's browser tests: Debian's `chromium` and `chromium-driver`.
#
#   infra/browser.sh install   install both packages when either binary is missing (root);
#                              a no-op (one `command -v` each) when they are there
#   infra/browser.sh check     exit 0 when both binaries run, else say what is missing
#   infra/browser.sh path      print "CHROMIUM CHROMEDRIVER" (absolute paths)
#
# Never downloads a browser build of its own: only the distribution's packages, whose
# driver always matches the browser's version. Run by `make infra-install`.
# Environment: AI_TRADER_CHROMIUM, AI_TRADER_CHROMEDRIVER (use these binaries instead).
set -euo pipefail

COMPONENT=browser
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

find_browser() {
  local b
  if [[ -n "${AI_TRADER_CHROMIUM:-}" ]]; then
    [[ -x "$AI_TRADER_CHROMIUM" ]] || return 1
    printf '%s' "$AI_TRADER_CHROMIUM"; return 0
  fi
  for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

find_driver() {
  if [[ -n "${AI_TRADER_CHROMEDRIVER:-}" ]]; then
    [[ -x "$AI_TRADER_CHROMEDRIVER" ]] || return 1
    printf '%s' "$AI_TRADER_CHROMEDRIVER"; return 0
  fi
  command -v chromedriver 2>/dev/null
}

present() { find_browser >/dev/null && find_driver >/dev/null; }

install() {
  if present; then
    say "chromium and chromedriver present ($(find_browser), $(find_driver))"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "chromium and chromium-driver are missing: apt-get install chromium chromium-driver (as root)"
  say "apt-get install -y chromium chromium-driver ..."
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >&2
  present || die "chromium or chromedriver still missing after apt-get"
  say "installed $("$(find_browser)" --version 2>/dev/null | head -n1)"
}

check() {
  local b d
  b="$(find_browser)" || die "no chromium: run 'bash infra/browser.sh install' (or make infra-install)"
  d="$(find_driver)" || die "no chromedriver: run 'bash infra/browser.sh install' (or make infra-install)"
  "$d" --version >/dev/null 2>&1 || die "$d does not run"
  say "ok: $("$b" --version 2>/dev/null | head -n1); $("$d" --version | head -n1)"
}

case "${1:-install}" in
  install) install ;;
  check) check ;;
  path)
    b="$(find_browser)" || die "no chromium (${AI_TRADER_CHROMIUM:-not on PATH})"
    d="$(find_driver)" || die "no chromedriver (${AI_TRADER_CHROMEDRIVER:-not on PATH})"
    printf '%s %s\n' "$b" "$d"
    ;;
  *) die "usage: $0 install|check|path" ;;
esac
