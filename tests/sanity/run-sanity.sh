#!/usr/bin/env bash
# ansible-test sanity for the failsafe.datastores collection, from any checkout path, offline-safe.
#
# ansible-test insists on running from .../ansible_collections/<namespace>/<name>, so we copy the
# checkout's files (tracked + untracked-but-not-ignored, as git lists them) into
#   tests/output/sanity-tree/ansible_collections/failsafe/datastores
# and run `ansible-test sanity --local --python 3.11` there.
#
# Offline pip bootstrap: every sanity test with pinned requirements (pylint, pep8, yamllint,
# validate-modules, ...) runs in a virtualenv that ansible-test creates *without pip* under
# ~/.ansible/test/venv and then bootstraps with a get-pip script it downloads from a CI file host
# that is unreachable here. It first looks for a cached copy at
# ~/.ansible/test/cache/get_pip_<pip version, dots as underscores>.py; we write a small stand-in
# there (ensurepip + `pip install <its arguments>` from the configured package index).
#
# Usage: tests/sanity/run-sanity.sh [extra ansible-test sanity arguments, e.g. --test pep8]
# Env:   SANITY_VENV  virtualenv holding ansible-test (default: <repo>/.venv)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${SANITY_VENV:-$REPO/.venv}
PY=$VENV/bin/python
ANSIBLE_TEST=$VENV/bin/ansible-test
PYTHON_VERSION=3.11
NAMESPACE=failsafe
NAME=datastores
TREE=$REPO/tests/output/sanity-tree
DEST=$TREE/ansible_collections/$NAMESPACE/$NAME

if [ ! -x "$ANSIBLE_TEST" ]; then
  echo "run-sanity: $ANSIBLE_TEST not found: create the virtualenv first (make venv)" >&2
  exit 2
fi

# --- 1. the cached get-pip stand-in -------------------------------------------------------------
# The file name comes from ansible-test itself (python_requirements.get_venv_packages, used by
# _util/target/setup/requirements.py:bootstrap), so an ansible-core upgrade that bumps pip still
# finds its cache file. ansible-test runs it as
#   <sanity venv python> quiet_pip.py --disable-pip-version-check pip==<ver> --no-setuptools --no-wheel
# with GET_PIP=<cache file>; quiet_pip.py runs the file as __main__ with those arguments in sys.argv.
"$PY" - "$PYTHON_VERSION" <<'PYEOF'
import os
import sys
import types

from ansible_test._internal.python_requirements import get_venv_packages

pip_version = get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))['pip']
cache_path = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % pip_version.replace('.', '_'))
marker = '# failsafe.datastores offline get-pip stand-in v1'
script = marker + '''
"""Stand-in for get-pip.py: bootstrap pip with ensurepip, then pip-install the given arguments."""
import subprocess
import sys

args = sys.argv[1:]
no_setuptools = '--no-setuptools' in args
args = [a for a in args if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
packages = [a for a in args if not a.startswith('-')]
if packages:
    try:
        subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
    except subprocess.CalledProcessError:
        # The pinned pip could not be fetched: the pip bundled with ensurepip installs the sanity
        # requirements just as well.
        print('get-pip stand-in: could not install %s; keeping the ensurepip pip' % ' '.join(packages), file=sys.stderr)
if no_setuptools:
    subprocess.call([sys.executable, '-m', 'pip', 'uninstall', '-q', '-y', 'setuptools'])
'''
try:
    with open(cache_path) as existing:
        current = existing.read()
except FileNotFoundError:
    current = None
if current is None:
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    with open(cache_path + '.tmp', 'w') as new:
        new.write(script)
    os.replace(cache_path + '.tmp', cache_path)
    print('run-sanity: wrote offline pip bootstrap %s' % cache_path)
elif current.startswith(marker) and current != script:
    with open(cache_path, 'w') as new:  # our own older stand-in: refresh it
        new.write(script)
# else: a real get-pip.py (or our current stand-in) is already cached: leave it alone.
PYEOF

# --- 2. the collection tree -----------------------------------------------------------------------
# Only what git would ship: tracked + untracked-not-ignored files that exist. collections/ is the
# checkout's self-symlink (collections/ansible_collections/failsafe/datastores -> ../../..): skip it;
# so are .venv and .ansible, which .gitignore only ignores as directories, not as symlinks.
# tar (not rsync: absent on a fresh Debian) keeps modes, so shebang/executable checks are real.
rm -rf "$TREE"
mkdir -p "$DEST"
cd "$REPO"
git ls-files -z -c -o --exclude-standard -- . ':(exclude)collections' ':(exclude).venv' ':(exclude).ansible' |
  while IFS= read -r -d '' f; do
    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
  done |
  tar -C "$REPO" --null --no-recursion -T - -cf - |
  tar -C "$DEST" -xf -

# --- 3. run ---------------------------------------------------------------------------------------
# The copy sits inside this checkout's git work tree (in ignored tests/output/): without a content
# root ansible-test would walk up to the checkout's .git and ask git for the file list, which
# excludes everything ignored, i.e. the whole copy. With ANSIBLE_TEST_CONTENT_ROOT it lists the
# copy's files from the file system instead.
export ANSIBLE_TEST_CONTENT_ROOT=$DEST
# The Makefile exports ANSIBLE_CONFIG (checkout's ansible.cfg, collections_path ./collections):
# sanity must see only the copied collection plus what the venv's ansible package ships.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS ANSIBLE_ROLES_PATH
export PATH=$VENV/bin:$PATH
cd "$DEST"

skip=(
  # PowerShell lint: the collection has no PowerShell; pwsh is not installed on these machines.
  --skip-test pslint
)
if ! command -v shellcheck >/dev/null 2>&1; then
  # ansible-test would only warn and skip; say so once, plainly. Once installed (make lab-deps
  # does it as root), the test runs on every .sh file of the collection.
  echo "run-sanity: shellcheck not installed: skipping the shellcheck sanity test"
  skip+=(--skip-test shellcheck)
fi

echo "run-sanity: ansible-test sanity in $DEST"
exec "$ANSIBLE_TEST" sanity --local --python "$PYTHON_VERSION" --color no "${skip[@]}" "$@" </dev/null
