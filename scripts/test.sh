#!/usr/bin/env bash
# Runs a test tier with node's test runner (tsx loads TypeScript and lowers decorators).
#   ci   (npm test):      unit tests + integration tests on the local control plane
#   unit (npm run test:unit): pure logic, no cluster
#   long (npm run test:long): soaks and heavy fault runs, on the local control plane
# The control plane is built (cold: tens of minutes) or reused, started if needed, and
# stopped again at the end when this script started it (KOPF_TS_KEEP_CLUSTER=1 keeps it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tier="${1:-ci}"
phase() { echo "[test] $1: $2s"; }

case "$tier" in
  unit) globs=('test/unit/**/*.test.ts'); cluster=0 ;;
  ci) globs=('test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'); cluster=1 ;;
  long) globs=('test/long/**/*.test.ts'); cluster=1 ;;
  *) echo "usage: scripts/test.sh ci|unit|long" >&2; exit 2 ;;
esac

started=0
if [ "$cluster" = 1 ]; then
  if ! node --import tsx cluster/cli.ts status >/dev/null 2>&1; then started=1; fi
  t0=$SECONDS
  node --import tsx cluster/cli.ts up
  phase "control plane build/start" $((SECONDS - t0))
  if [ "$started" = 1 ] && [ "${KOPF_TS_KEEP_CLUSTER:-0}" != 1 ]; then
    trap 'node --import tsx cluster/cli.ts down >/dev/null 2>&1 || true' EXIT
  fi
fi

t0=$SECONDS
set +e
node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${globs[@]}"
rc=$?
set -e
phase "tests ($tier)" $((SECONDS - t0))
exit $rc
