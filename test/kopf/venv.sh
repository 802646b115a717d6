#!/usr/bin/env bash
# Create (idempotently) the virtualenv with the real Python Kopf used to generate
# the test vectors, and print the path of its python interpreter on stdout.
# All logs go to stderr; stdout has exactly one line: the python path.
#
#   PY="$(bash test/kopf/venv.sh)" && "$PY" test/kopf/gen_vectors.py
#
# The venv lives at ${KOPF_TS_CACHE:-$HOME/.cache/kopf-ts}/kopf-venv-1.45.2.
# A stamp file inside it holds the sha256 of requirements.txt; when it matches,
# nothing is installed again (a second run takes milliseconds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
cache="${KOPF_TS_CACHE:-$HOME/.cache/kopf-ts}"
venv="$cache/kopf-venv-1.45.2"
py="$venv/bin/python"
stamp="$venv/.kopf-ts-requirements.sha256"

log() { echo "venv.sh: $*" >&2; }

want="$(sha256sum "$req" | cut -d' ' -f1)"

is_ready() {
  [[ -x "$py" && -f "$stamp" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && "$py" -I -S -c '' 2>/dev/null
}

if is_ready; then
  echo "$py"
  exit 0
fi

mkdir -p "$cache"
# Serialise concurrent runs (e.g. parallel test workers) on a lock file, when flock exists.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.kopf-venv-1.45.2.lock"
  flock 9
  if is_ready; then
    echo "$py"
    exit 0
  fi
fi

if [[ -d "$venv" ]] && ! "$py" -c 'import sys' >/dev/null 2>&1; then
  log "removing a broken virtualenv at $venv"
  rm -rf "$venv"
fi
if [[ ! -x "$py" ]]; then
  log "creating a virtualenv at $venv"
  python3 -m venv "$venv" >&2
fi

log "installing $req"
rm -f "$stamp"
"$py" -m pip install --disable-pip-version-check --no-input -q -r "$req" >&2
"$py" -c 'import kopf' >&2
echo "$want" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
log "ready"
echo "$py"
