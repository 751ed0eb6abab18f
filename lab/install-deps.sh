#!/usr/bin/env bash
# Debian packages the lab and the tests need: PostgreSQL 15 server and client tools (required),
# and, optionally, the linter for the sanity test of shell scripts (skipped without it).
# As root they are installed with apt-get; otherwise we only check and say what is missing.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/pg_rewind >/dev/null 2>&1 || missing+=(postgresql-15)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
optional=()
command -v shellcheck >/dev/null 2>&1 || optional+=(shellcheck)

if [ "$(id -u)" -ne 0 ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing Debian packages: ${missing[*]} — install them (sudo apt-get install ${missing[*]}) and re-run" >&2
    exit 1
  fi
  exit 0
fi
wanted=("${missing[@]}" "${optional[@]}")
[ ${#wanted[@]} -eq 0 ] && exit 0

# The lab runs its own clusters: do not let the package create and start a default one.
mkdir -p /etc/postgresql-common
if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
  echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
