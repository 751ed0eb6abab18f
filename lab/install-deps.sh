#!/usr/bin/env bash
# Debian packages the lab and the tests need: those of the lab's components (each declares its
# own; `python3 -m lab packages` lists the missing ones), and, optionally, the linter for the
# sanity test of shell scripts (skipped without it); with FAILSAFE_TEST_TOOLS=1, the browser
# that the run report's test opens.
# As root they are installed with apt-get; otherwise we only check and say what is missing.
#
# Usage: lab/install-deps.sh [KIND[,KIND]]   (default: every component of lab/topology.py)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
only=()
[ $# -gt 0 ] && only=(--only "$1")
# The system's python3 (the virtualenv may not exist yet): the listing imports only the stdlib.
listing=$("${PYTHON:-python3}" -m lab packages "${only[@]}")
read -r -a missing <<<"$listing"
optional=()
command -v shellcheck >/dev/null 2>&1 || optional+=(shellcheck)
# `make test` also opens the run report in a real browser (headless chromium, a font for it).
if [ "${FAILSAFE_TEST_TOOLS:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
fi

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
# Nor may a package start a service of its own (Debian's redis-server and redis-sentinel would
# take 6379/26379 and run beside the lab's): invoke-rc.d asks policy-rc.d, and 101 means "not
# allowed". A policy that is already there (containers have one) is left alone.
added_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  added_policy=/usr/sbin/policy-rc.d
fi
trap 'if [ -n "$added_policy" ]; then rm -f "$added_policy"; fi' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
# Where systemd runs, the services stay disabled too, so that a reboot does not start them.
if [ -d /run/systemd/system ]; then
  for unit in redis-server redis-sentinel; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
