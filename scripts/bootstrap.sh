#!/usr/bin/env bash
# Installs the project's own toolchain (pinned pnpm, Node 24 as the `node` dev dependency)
# and the workspace's dependencies when they are missing or stale, then runs the given
# command with that Node first on PATH. Needs only the machine's npm (any Node >= 18).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

boot="$root/tools/bootstrap"
if [ ! -x "$boot/node_modules/.bin/pnpm" ] || [ "$boot/package-lock.json" -nt "$boot/node_modules/.package-lock.json" ]; then
  echo "[bootstrap] installing pnpm (tools/bootstrap)" >&2
  npm ci --prefix "$boot" --no-audit --no-fund --loglevel=error >&2
fi
stamp="$root/node_modules/.kopf-ts-installed"
if [ ! -e "$stamp" ] || [ "$root/pnpm-lock.yaml" -nt "$stamp" ] || [ ! -x "$root/node_modules/.bin/node" ]; then
  echo "[bootstrap] installing workspace dependencies (pnpm install --frozen-lockfile)" >&2
  "$boot/node_modules/.bin/pnpm" install --frozen-lockfile --reporter=append-only >&2
  touch "$stamp"
fi
export PATH="$root/node_modules/.bin:$boot/node_modules/.bin:$PATH"
case "$(node --version)" in
  v2[4-9].*|v[3-9][0-9].*) ;;
  *) echo "[bootstrap] expected the project's Node >= 24, got $(node --version) at $(command -v node)" >&2; exit 1 ;;
esac
[ "$#" -eq 0 ] || exec "$@"
