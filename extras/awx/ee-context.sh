#!/usr/bin/env bash
# The build context of the AWX execution environment (execution-environment.yml), offline:
#   extras/awx/ee-context.sh [OUTPUT_DIR]     (default build/ee; `make ee-context`)
# 1. OUTPUT_DIR/failsafe-datastores.tar.gz: the collection (ansible-galaxy collection build,
#    galaxy.yml's build_ignore applies), under the fixed name execution-environment.yml installs;
# 2. OUTPUT_DIR/context: `ansible-builder create` (Containerfile, _build/ with requirements.txt,
#    bindep.txt, requirements.yml and the tarball, the build scripts).
# Then: podman build -f OUTPUT_DIR/context/Containerfile -t IMAGE OUTPUT_DIR/context
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-build/ee}
case $out in /*) ;; *) out=$repo/$out ;; esac
venv_bin=${VENV_BIN:-$repo/.venv/bin}
cd "$repo"
# execution-environment.yml names the tarball under build/ee: build it there, copy it if asked
# for another directory.
rm -rf "$repo/build/ee/failsafe-datastores"*.tar.gz
mkdir -p "$repo/build/ee" "$out"
"$venv_bin/ansible-galaxy" collection build --force --output-path "$repo/build/ee" . >/dev/null
built=$(ls "$repo"/build/ee/failsafe-datastores-*.tar.gz)
mv "$built" "$repo/build/ee/failsafe-datastores.tar.gz"
rm -rf "$out/context"
"$venv_bin/ansible-builder" create --file execution-environment.yml --context "$out/context" \
  --output-filename Containerfile -v 1
echo "collection: $(basename "$built") -> build/ee/failsafe-datastores.tar.gz"
echo "build context: $out/context (podman build -f $out/context/Containerfile -t IMAGE $out/context)"
