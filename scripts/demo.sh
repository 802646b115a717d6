#!/usr/bin/env bash
# `npm run demo`: the main job (see scripts/demo.ts). Builds (or reuses) and starts the local
# control plane, then runs the psql operator demo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec node --import tsx scripts/demo.ts
