#!/usr/bin/env bash
# `make test`: every check, then a summary of what ran, what was skipped and why.
# With CI=true, PostgreSQL and the browser are required: missing means fail, not skip.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CI_MODE=false
case "${CI:-}" in 1|true|TRUE|yes) CI_MODE=true ;; esac

declare -a RESULTS=()
FAILED=0
record() { RESULTS+=("$(printf '%-28s %s' "$1" "$2")"); }
step() {  # step NAME COMMAND...
  local name=$1; shift
  echo; echo "=== $name"
  local t0=$SECONDS
  if "$@"; then record "$name" "ok ($((SECONDS - t0))s)"; else record "$name" "FAILED"; FAILED=1; fi
}
skip() { echo; echo "=== $1: skipped: $2"; record "$1" "skipped: $2"; }

step "ruff check" $BIN/ruff check .
step "ruff format --check" $BIN/ruff format --check .
step "mypy --strict" $BIN/mypy

# --- console ---
if [ -f web/package.json ]; then
  if command -v npm >/dev/null; then
    step "console deps (npm ci)" make -s web/node_modules/.installed
    step "api client up to date" bash scripts/check-api-client.sh
    step "vue-tsc" bash -c "cd web && npm run -s typecheck"
    step "vitest" bash -c "cd web && npm run -s test:unit"
    step "console build" bash -c "cd web && npm run -s build"
  else
    if $CI_MODE; then record "console" "FAILED: npm missing"; FAILED=1; else skip "console" "npm not installed"; fi
  fi
fi

# --- PostgreSQL reachability decides whether the suite also runs there ---
PG_URL="${SELFMART_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
if $BIN/python scripts/pg_ping.py "$PG_URL"; then
  PG_NOTE="SQLite + PostgreSQL"
else
  if $CI_MODE; then
    record "postgresql" "FAILED: required in CI, unreachable at $PG_URL"; FAILED=1
  fi
  PG_NOTE="SQLite only (PostgreSQL unreachable at $PG_URL: skipped)"
fi
# Two workers or more (pytest-xdist): each builds its own SQLite file and PostgreSQL database.
WORKERS="${SELFMART_TEST_WORKERS:-$($BIN/python -c 'import os; print(max(2, min(4, os.cpu_count() or 1)))')}"
step "pytest ($PG_NOTE, $WORKERS workers)" $BIN/pytest -m "not browser" -q -p no:cacheprovider -n "$WORKERS" --durations=30

# --- browser tests: Playwright driving the system Chromium ---
if ls tests/browser/test_*.py >/dev/null 2>&1; then
  if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "=== installing Chromium from Debian's packages"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk) >/tmp/selfmart-apt.log 2>&1 || tail -5 /tmp/selfmart-apt.log
  fi
  # Chinese text (the console's default language) needs a CJK font, or the screenshot shows boxes.
  if [ -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v fc-list >/dev/null \
    && [ -z "$(fc-list :lang=zh 2>/dev/null)" ] && command -v apt-get >/dev/null; then
    echo "=== installing a CJK font from Debian's packages (fonts-noto-cjk)"
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk \
      || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk)) \
      >/tmp/selfmart-apt.log 2>&1 || tail -5 /tmp/selfmart-apt.log
  fi
  if [ -x /usr/bin/chromium ]; then
    step "browser tests (Chromium)" $BIN/pytest -m browser -q -p no:cacheprovider tests/browser
  elif $CI_MODE; then
    record "browser tests" "FAILED: /usr/bin/chromium missing (apt-get install chromium)"; FAILED=1
  else
    skip "browser tests" "/usr/bin/chromium missing; as root: apt-get install chromium"
  fi
fi

echo
echo "=== make test summary"
for r in "${RESULTS[@]}"; do echo "  $r"; done
if [ $FAILED -ne 0 ]; then echo "make test: FAILED"; exit 1; fi
echo "make test: all checks passed"
