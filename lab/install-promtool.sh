#!/usr/bin/env bash
# Puts Debian's `promtool` (package prometheus) into the virtualenv's bin/ without installing the
# package: the package would also install, and on some systems start, a Prometheus server.
# Used to check extras/backup/prometheus-rules.yml (tests/unit/test_backup_extras.py).
set -euo pipefail
venv=${1:-.venv}
if [ -x "$venv/bin/promtool" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
  echo "install-promtool: cannot download the Debian package prometheus (run apt-get update?)" >&2
  exit 1
fi
dpkg -x prometheus_*.deb root
cd - >/dev/null
install -m 0755 "$work/root/usr/bin/promtool" "$venv/bin/promtool"
echo "promtool installed in $venv/bin"
