#!/usr/bin/env bash
# Static checks run by CI: type-check (tsc -b), ESLint, Prettier, the framework's layer rules.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { local t0=$SECONDS; echo "== $1"; shift; "$@"; echo "== done in $((SECONDS - t0))s"; }
step "typecheck (tsc -b)" tsc -b
step "lint (eslint)" eslint --max-warnings=0 .
step "format (prettier --check)" prettier --check --log-level=warn .
step "layers (dependency-cruiser)" depcruise --config .dependency-cruiser.cjs packages/framework/src
