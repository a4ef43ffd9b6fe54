#!/usr/bin/env bash
# Installs what cryptochart needs on a fresh Debian machine; quick when everything is there.
#   scripts/setup.sh            runtime: PostgreSQL (+pg_partman, TimescaleDB), Java/Maven, Python
#                               venv, frontend
#   scripts/setup.sh --test     also the test tools: Chromium
#   scripts/setup.sh --bench    also the benchmark tools (wrk; chromium for the page benchmarks)
# Downloads are cached in .cache/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
mkdir -p .cache
export PIP_CACHE_DIR=$ROOT/.cache/pip npm_config_cache=$ROOT/.cache/npm
WANT_TEST=0 WANT_BENCH=0
for arg in "$@"; do
  case $arg in
    --test) WANT_TEST=1 ;;
    --bench) WANT_BENCH=1 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------------------
pg_major() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }
missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for cmd_pkg in java:openjdk-17-jre-headless mvn:maven node:nodejs npm:npm python3:python3; do
  command -v "${cmd_pkg%%:*}" >/dev/null || missing+=("${cmd_pkg#*:}")
done
[ -n "$(pg_major)" ] || missing+=(postgresql)
[ "$WANT_TEST$WANT_BENCH" != 00 ] && { command -v chromium >/dev/null || missing+=(chromium); }
[ "$WANT_BENCH" = 1 ] && { command -v wrk >/dev/null || missing+=(wrk); }
if [ -n "$(pg_major)" ]; then
  have_pkg "postgresql-$(pg_major)-partman" || missing+=("postgresql-$(pg_major)-partman")
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: please install: sudo apt-get install ${missing[*]}" >&2; exit 1
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
  # pg_partman matches the server's major version, known only once the server is installed.
  have_pkg "postgresql-$(pg_major)-partman" || apt-get install -y -q "postgresql-$(pg_major)-partman" >/dev/null
fi

# --- TimescaleDB (the main schema flavour) ---------------------------------------------------
# Built from a release source archive where no package is installed (scripts/timescaledb.sh).
# Installed before `cryptochart services up` starts the cluster, which then preloads it.
flavour=${CRYPTOCHART_DB_FLAVOUR:-auto}
if [ "$flavour" != postgres ]; then
  if ! scripts/timescaledb.sh; then
    if [ "$flavour" = timescaledb ] || [ "$WANT_TEST" = 1 ]; then
      echo "setup: TimescaleDB is needed (CRYPTOCHART_DB_FLAVOUR=$flavour; the tests run on both" \
        "flavours); set CRYPTOCHART_DB_FLAVOUR=postgres to use plain PostgreSQL only" >&2
      exit 1
    fi
    say "continuing with plain PostgreSQL (the schema's second flavour)"
  fi
fi

# --- Python -----------------------------------------------------------------------------------
# Exactly the versions in requirements.lock (hash-checked; `make lock` updates it), then the
# project itself, editable, without resolving anything more. Re-run when either file changes.
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  say "python venv (.venv) from requirements.lock"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  { .venv/bin/pip install -q --require-hashes -r requirements.lock \
      && .venv/bin/pip install -q --no-deps -e . ; } >.cache/pip-install.log 2>&1 \
    || { tail -30 .cache/pip-install.log >&2; exit 1; }
  rm -f .venv/.installed-* && touch "$stamp"
fi

# --- Kafka broker jars (Maven Central) ----------------------------------------------------------
if ! ls .data/kafka/libs/kafka_2.13-*.jar >/dev/null 2>&1; then
  say "kafka broker jars (mvn)"
  mvn -q -B -f cryptochart/devservices/kafka/pom.xml dependency:copy-dependencies \
    -DoutputDirectory="$ROOT/.data/kafka/libs" -DincludeScope=runtime \
    -Dmaven.repo.local="$ROOT/.cache/m2"
fi

# --- npm packages -----------------------------------------------------------------------------
npm_ci() {  # npm ci in $1 when its lock file changed since the last install
  local dir=$1 lock_stamp
  [ -f "$dir/package-lock.json" ] || return 0
  lock_stamp=$dir/node_modules/.installed-$(sha1sum "$dir/package-lock.json" | cut -c1-12)
  if [ ! -f "$lock_stamp" ]; then
    say "npm ci ($dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$lock_stamp"
  fi
}
npm_ci frontend
if [ -f frontend/package.json ]; then
  newest_src=
  if [ -f frontend/dist/index.html ]; then
    # The page's sources and build files; not the unit tests nor their compiled copy.
    newest_src=$(find frontend -path frontend/node_modules -prune -o -path frontend/dist -prune \
      -o -path frontend/.test-build -prune -o -path frontend/test -prune \
      -o -type f -newer frontend/dist/index.html -print | head -1)
  fi
  if [ ! -f frontend/dist/index.html ] || [ -n "$newest_src" ]; then
    say "frontend build (vite)"
    (cd frontend && npm run build --silent >/dev/null)
  fi
fi
say "ready"
