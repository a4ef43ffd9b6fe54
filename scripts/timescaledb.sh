#!/usr/bin/env bash
# Makes the TimescaleDB extension available to the newest installed PostgreSQL server.
#   1. an installed extension is used as it is;
#   2. else Timescale's own package (timescaledb-2-postgresql-MAJOR), where an apt source offers it;
#   3. else a build from a release source archive: CRYPTOCHART_TIMESCALEDB_ARCHIVE (a path or a
#      URL), or the newest timescaledb-*.tar.gz in .cache/ or ../shared/vendor/. The build is kept
#      in .cache/timescaledb/, so installing it again (after a server reinstall) does not compile.
# Exits 0 when the extension is installed, 3 with one line saying what to install when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
cannot() { printf '\033[1;31m[setup]\033[0m %s\n' "$*" >&2; exit 3; }

major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
[ -n "$major" ] || cannot "TimescaleDB needs a PostgreSQL server first: apt-get install postgresql"
control=/usr/share/postgresql/$major/extension/timescaledb.control
installed_version() { sed -n "s/^default_version = '\(.*\)'/\1/p" "$control"; }
if [ -f "$control" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  cannot "TimescaleDB is not installed for PostgreSQL $major: run 'sudo scripts/timescaledb.sh'," \
    "or install timescaledb-2-postgresql-$major from Timescale's apt repository"
fi
export DEBIAN_FRONTEND=noninteractive

# 2. Timescale's package, when an apt source of the machine offers it.
package=timescaledb-2-postgresql-$major
if apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  say "apt-get install $package"
  apt-get install -y -q "$package" >/dev/null
  [ -f "$control" ] && { say "TimescaleDB $(installed_version) installed from apt"; exit 0; }
fi

# 3. A release source archive.
archive=${CRYPTOCHART_TIMESCALEDB_ARCHIVE:-}
if [[ $archive == http://* || $archive == https://* ]]; then
  mkdir -p .cache
  target=.cache/$(basename "$archive")
  [ -f "$target" ] || { say "downloading $archive"; curl -fsSL -o "$target.part" "$archive" && mv "$target.part" "$target"; }
  archive=$target
fi
if [ -z "$archive" ]; then
  archive=$(ls .cache/timescaledb-*.tar.gz ../shared/vendor/timescaledb-*.tar.gz 2>/dev/null \
    | sort -V -t- -k2 | tail -1 || true)
fi
[ -n "$archive" ] && [ -f "$archive" ] || cannot "TimescaleDB is not installed and no source archive" \
  "was found: install $package from Timescale's apt repository, or set" \
  "CRYPTOCHART_TIMESCALEDB_ARCHIVE to a release source archive (timescaledb-X.Y.Z.tar.gz)"
version=$(basename "$archive" .tar.gz); version=${version#timescaledb-}
build=$ROOT/.cache/timescaledb/$version-pg$major
if [ ! -f "$build/.built" ]; then
  # The server's headers, at the server's own version: a newer server-dev would upgrade the
  # server package under a running cluster, whose new backends then fail to load their libraries.
  server=$(dpkg-query -W -f='${Version}' "postgresql-$major" 2>/dev/null || true)
  dev=postgresql-server-dev-$major
  if ! dpkg-query -W -f='${Status}' "$dev" 2>/dev/null | grep -q "install ok installed"; then
    say "apt-get install $dev (TimescaleDB build)"
    apt-get update -q >/dev/null
    if [ -n "$server" ] && apt-cache madison "$dev" | grep -qF " $server "; then
      apt-get install -y -q "$dev=$server" >/dev/null
    else
      apt-get install -y -q "$dev" "postgresql-$major" >/dev/null
    fi
  fi
  for tool in cmake make cc; do
    command -v $tool >/dev/null || apt-get install -y -q cmake build-essential >/dev/null
  done
  say "building TimescaleDB $version for PostgreSQL $major from $archive (about 2 minutes)"
  rm -rf "$build" && mkdir -p "$build"
  tar -xzf "$archive" -C "$build" --strip-components=1
  (
    cd "$build"
    ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF \
      -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" \
      >"$build/bootstrap.log" 2>&1
    make -C build -j"$(nproc)" >"$build/make.log" 2>&1
  ) || { tail -30 "$build"/*.log >&2; cannot "TimescaleDB build failed (logs in $build)"; }
  touch "$build/.built"
fi
make -C "$build/build" install >"$build/install.log" 2>&1 \
  || { tail -30 "$build/install.log" >&2; cannot "TimescaleDB install failed"; }
say "TimescaleDB $(installed_version) installed for PostgreSQL $major (built from $archive)"
