#!/usr/bin/env bash
# Creates the virtualenv and installs the pinned Python requirements (idempotent).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
if ! "$python" -c 'import sys; assert sys.version_info[:2] >= (3, 11)' 2>/dev/null; then
  echo "need Python >= 3.11 as '$python' (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      "$python" -m venv "$venv"
    else
      echo "cannot create a virtualenv: install python3-venv" >&2
      exit 1
    fi
  fi
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
