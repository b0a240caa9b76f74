#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run the quality gates and the tests.
# This is the README's test command, and exactly what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# ---- system packages: real servers and a browser for the tests (skipped when already present) ----
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "apt-get install ${need[*]}"
    # A mirror hiccup must not fail the run: the tests that need these skip when they are absent.
    if ! { apt-get update -qq >/dev/null &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
      echo "note: apt-get could not install ${need[*]}; the tests that need them will be skipped" >&2
    fi
  else
    echo "note: ${need[*]} missing and not root; the tests that need them will be skipped" >&2
  fi
fi

# ---- Python packages ----
# pip's output is shown only when it fails (a mirror's location warnings are noise otherwise).
pip_quiet() {
  local out
  out=$(mktemp)
  if ! "$@" >"$out" 2>&1; then grep -v '^WARNING: Location' "$out" >&2; rm -f "$out"; return 1; fi
  rm -f "$out"
}
log "pip install the package with its test and optional extras"
pip_quiet python3 -m pip install -q --disable-pip-version-check -e '.[test,all]'
python3 -m pip check >/dev/null || { python3 -m pip check; exit 1; }

# ---- quality gates ----
log "ruff"
python3 -m ruff check src tests benchmarks
log "mypy"
python3 -m mypy

# ---- the minimal install: no extras, the core must import and work ----
log "minimal install (no extras)"
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
pip_quiet "$venv/bin/pip" install -q --disable-pip-version-check . pytest pytest-asyncio
(cd tests && "$venv/bin/python" -m pytest -q -p no:cacheprovider -c ../pyproject.toml -m "not slow" minimal)
rm -rf "$(dirname "$venv")"

# ---- the tests, with the coverage floor recorded in the repository ----
log "pytest"
min=$(cat .coverage-min)
python3 -m pytest --cov=llmrelay --cov-report=term:skip-covered --cov-fail-under="$min" "$@"
