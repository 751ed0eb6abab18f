#!/usr/bin/env bash
# The whole test suite (`make test`, and so CI): unit, sanity, lint, integration, molecule.
# Every stage runs even after a failure; a summary follows and the exit status is non-zero if any
# stage failed.
#
# pytest exit status 5 ("no tests collected") passes only for a stage whose directory holds no test
# file yet; once tests exist, collecting none is a failure.
set -uo pipefail
exec </dev/null

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
VENV=$REPO/.venv
PY=$VENV/bin/python
export PATH=$VENV/bin:$PATH
export ANSIBLE_CONFIG=$REPO/ansible.cfg
if [ ! -t 1 ]; then
  # Logs (CI) get plain text: molecule, ansible-lint and ansible colour output otherwise.
  export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
fi

if [ ! -x "$PY" ]; then
  echo "run-all: no virtualenv at $VENV: run 'make venv' (or 'make test') first" >&2
  exit 2
fi

names=()
results=()
times=()
failed=0
# Ctrl-C or a TERM stops the run after the current stage (pytest turns Ctrl-C into exit status 2,
# so without this the next stage would start): the summary then says what ran.
interrupted=""
trap 'interrupted=yes' INT TERM

# record NAME STATUS SECONDS
record() {
  names+=("$1")
  results+=("$2")
  times+=("$3")
  case $2 in FAIL*) failed=1 ;; esac
  stop_if_interrupted "during $1"
}

# stop_if_interrupted WHEN: after Ctrl-C or TERM, the summary and exit status 130
stop_if_interrupted() {
  [ -n "$interrupted" ] || return 0
  echo "run-all: interrupted $1: the stages after it did not run" >&2
  failed=1
  summary
  exit 130
}

summary() {
  banner "summary"
  local passed=0 failures=0 skipped=0 i
  for i in "${!names[@]}"; do
    printf '  %-13s %-32s %5ss\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
    case ${results[$i]} in
      FAIL*) failures=$((failures + 1)) ;;
      "ok ("*) skipped=$((skipped + 1)) ;;
      *) passed=$((passed + 1)) ;;
    esac
  done
  # Stage tally, last line of the run (a stage with nothing to run yet counts as skipped).
  if [ -n "$interrupted" ]; then
    echo "run-all: INTERRUPTED"
  elif [ "$failed" -ne 0 ]; then
    echo "run-all: FAILED"
  else
    echo "run-all: all stages passed"
  fi
  echo "stages: $passed passed, $failures failed, $skipped skipped"
}

banner() {
  printf '\n==================== %s ====================\n' "$1"
}

# has_test_files DIR: pytest's default test file patterns
has_test_files() {
  [ -d "$1" ] && [ -n "$(find "$1" \( -name 'test_*.py' -o -name '*_test.py' \) -type f -print -quit)" ]
}

# pytest_stage NAME DIR [pytest args...]
pytest_stage() {
  local name=$1 dir=$2
  stop_if_interrupted "before $name"
  shift 2
  banner "$name: pytest $dir"
  local start=$SECONDS rc
  if [ ! -d "$dir" ]; then
    echo "$dir does not exist yet: nothing to run"
    record "$name" "ok (no $dir yet)" 0
    return
  fi
  "$PY" -m pytest "$dir" "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    record "$name" "ok" $((SECONDS - start))
  elif [ "$rc" -eq 5 ] && ! has_test_files "$dir"; then
    echo "run-all: $dir has no test files yet: counted as passed"
    record "$name" "ok (no tests yet)" $((SECONDS - start))
  else
    record "$name" "FAIL (pytest exit $rc)" $((SECONDS - start))
  fi
}

# command_stage NAME COMMAND...
command_stage() {
  local name=$1
  stop_if_interrupted "before $name"
  shift
  banner "$name: $*"
  local start=$SECONDS rc
  "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    record "$name" "ok" $((SECONDS - start))
  else
    record "$name" "FAIL (exit $rc)" $((SECONDS - start))
  fi
}

pytest_stage unit tests/unit
command_stage sanity bash tests/sanity/run-sanity.sh
command_stage ansible-lint "$VENV/bin/ansible-lint"
# Two pytest-xdist workers, one lab each (tests/integration/conftest.py gives each its own
# addresses); a file's tests stay on one worker, in order.
pytest_stage integration tests/integration -n 2 --dist loadfile

if [ -d molecule/default ]; then
  # Molecule's default (delegated) driver converges on localhost with the roles of this checkout.
  # The scenario itself (molecule.yml) must keep `prerun: false` or put a writable directory first
  # in ANSIBLE_COLLECTIONS_PATH: the prerun installs a built copy of this collection into the first
  # collections path, which with ansible.cfg's is ./collections, whose self-symlink ansible-galaxy
  # fails to replace ("Cannot call rmtree on a symbolic link").
  ANSIBLE_ROLES_PATH=$REPO/roles command_stage molecule "$VENV/bin/molecule" test -s default
else
  banner "molecule"
  echo "no molecule/default scenario yet: nothing to run"
  record molecule "ok (no scenario yet)" 0
fi

summary
[ "$failed" -eq 0 ]
