#!/usr/bin/env bash
# Builds the psql operator's container image offline, without a container engine, as an OCI
# image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
#
#   bash scripts/image.sh                 # -> build/image/ (ref name: latest)
#   bash scripts/image.sh --out DIR --ref test
#   bash scripts/image.sh --app DIR       # only the /app tree (what the Dockerfile copies)
#
# Two layers, built from what the workspace has (packages come from the pnpm store; only
# metadata missing from the cache is read from the npm registry):
#   1. runtime: the project's own Node (node_modules/node/bin/node, the npm package `node`, a
#      dynamically linked ELF), the shared libraries `ldd` names and the dynamic loader, and an
#      /etc/passwd with the non-root user 10001;
#   2. app: /app/operator.ts and /app/node_modules with the production dependencies from
#      `pnpm deploy --prod` (kopf-ts as built by `tsc -b`, tsx and esbuild to load the
#      TypeScript operator file); TypeScript itself and @types are left out.
# Entrypoint: node --max-semi-space-size=2 /app/node_modules/kopf-ts/bin/kopf-ts.js; Cmd: run /app/operator.ts (the
# generated Deployment's args replace Cmd with `run /app/operator.ts --namespace ...`).
# Nothing in the image needs to be written to at run time (readOnlyRootFilesystem): tsx's
# disk cache is off (TSX_DISABLE_CACHE=1). Layers are reproducible: sorted entries, owner 0,
# mtime 0, gzip -n.
#
# Load it into a cluster's runtime with e.g.
#   skopeo copy oci:build/image:latest docker-daemon:kopf-ts-psql-operator:latest
#   skopeo copy oci:build/image:latest docker-archive:psql.tar && ctr -n k8s.io images import psql.tar
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/build/image"
ref=latest
app_only=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --app) app_only=$2; shift 2 ;;
    *) echo "usage: scripts/image.sh [--out DIR] [--ref NAME] | --app DIR" >&2; exit 2 ;;
  esac
done
log() { echo "[image] $*" >&2; }

# The project's toolchain (pinned pnpm, Node 24), installed if missing.
bash "$root/scripts/bootstrap.sh" true
export PATH="$root/node_modules/.bin:$root/tools/bootstrap/node_modules/.bin:$PATH"
node_bin=$(readlink -f "$root/node_modules/node/bin/node")
[ -x "$node_bin" ] || { log "no Node binary at node_modules/node/bin/node"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kopf-ts-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the /app tree ------------------------------------------------------------------------
stage_app() {
  local dest=$1
  log "building kopf-ts (tsc -b packages/framework)"
  (cd "$root" && tsc -b packages/framework)
  log "pnpm deploy --prod (psql-operator and its production dependencies)"
  (cd "$root" && pnpm --filter psql-operator deploy --prod --legacy --prefer-offline "$work/deploy" >&2)
  mkdir -p "$dest"
  # A copy, not the deploy's hard links into the workspace and the store: edited below.
  cp -a "$work/deploy/node_modules" "$dest/node_modules"
  cp "$root/packages/psql-operator/src/operator.ts" "$dest/operator.ts"
  printf '{\n  "name": "psql-operator",\n  "private": true,\n  "type": "module"\n}\n' >"$dest/package.json"
  # Only what runs: no TypeScript compiler (kopf-ts's optional peer, for --typecheck), no
  # type declarations, no source maps; links left dangling by that go too.
  rm -rf "$dest/node_modules/.pnpm/"typescript@* "$dest/node_modules/.pnpm/"@types+*
  find "$dest/node_modules" -xtype l -delete
  find "$dest/node_modules" -name '*.map' -type f -delete
  # kopf-ts as published: its built files (publishConfig), not the workspace's sources, so
  # the CLI and the operator's `import ... from 'kopf-ts'` share one copy.
  local pkg
  pkg=$(readlink -f "$dest/node_modules/kopf-ts")
  node -e '
    const fs = require("node:fs");
    const file = process.argv[1] + "/package.json";
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    Object.assign(pkg, pkg.publishConfig ?? {});
    delete pkg.publishConfig;
    delete pkg.devDependencies;
    pkg.files = ["bin", "dist"];
    fs.rmSync(file);
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  ' "$pkg"
  rm -rf "$pkg/src" "$pkg/tsconfig.json" "$pkg/tsconfig.tsbuildinfo"
  find "$pkg/dist" -name '*.d.ts' -type f -delete
  [ -f "$pkg/dist/cli/main.js" ] || { log "kopf-ts has no dist/cli/main.js (tsc -b failed?)"; exit 1; }
  chmod -R u+rwX,go+rX,go-w "$dest"
}

if [ -n "$app_only" ]; then
  stage_app "$app_only"
  log "the /app tree is in $app_only"
  exit 0
fi

# --- the root filesystem, one folder per layer ---------------------------------------------
runtime="$work/layers/runtime"
app="$work/layers/app"
mkdir -p "$runtime/usr/local/bin" "$runtime/etc" "$app/app"
cp "$node_bin" "$runtime/usr/local/bin/node"
# The shared libraries and the loader, at the paths the binary and the loader look them up.
for lib in $(ldd "$node_bin" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }'); do
  mkdir -p "$runtime$(dirname "$lib")"
  cp -L "$lib" "$runtime$lib"
done
cat >"$runtime/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
operator:x:10001:10001:kopf-ts operator:/app:/sbin/nologin
EOF
cat >"$runtime/etc/group" <<'EOF'
root:x:0:
operator:x:10001:
EOF
# Where the kubelet mounts the ServiceAccount's token, CA and namespace.
mkdir -p "$runtime/var/run/secrets/kubernetes.io/serviceaccount"
chmod -R u+rwX,go+rX,go-w "$runtime"
stage_app "$app/app"

# --- the OCI image layout ------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/blobs/sha256"
layer() { # folder -> blobs/sha256/<digest of the .tar.gz>; prints "diff_id digest size"
  local dir=$1 tarball="$work/$(basename "$1").tar"
  (cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort |
    tar --no-recursion -T - --format=posix --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$tarball")
  local diff_id digest
  diff_id=$(sha256sum "$tarball" | cut -d' ' -f1)
  gzip -n -6 "$tarball"
  digest=$(sha256sum "$tarball.gz" | cut -d' ' -f1)
  mv "$tarball.gz" "$out/blobs/sha256/$digest"
  echo "$diff_id $digest $(stat -c %s "$out/blobs/sha256/$digest")"
}
log "writing layers"
runtime_layer=$(layer "$runtime")
app_layer=$(layer "$app")

OUT="$out" REF="$ref" PKG="$root/packages/framework/package.json" LAYERS="$runtime_layer $app_layer" \
  node --input-type=module -e '
    import { createHash } from "node:crypto";
    import { readFileSync, writeFileSync } from "node:fs";
    const { OUT, REF, LAYERS, PKG } = process.env;
    const parts = LAYERS.split(" ");
    const layers = [0, 3].map((i) => ({ diffId: parts[i], digest: parts[i + 1], size: Number(parts[i + 2]) }));
    const version = JSON.parse(readFileSync(PKG, "utf8")).version;
    const arch = { x64: "amd64", arm64: "arm64" }[process.arch] ?? process.arch;
    const blob = (value) => {
      const text = JSON.stringify(value, null, 2) + "\n";
      const digest = createHash("sha256").update(text).digest("hex");
      writeFileSync(`${OUT}/blobs/sha256/${digest}`, text);
      return { digest: `sha256:${digest}`, size: Buffer.byteLength(text) };
    };
    const labels = {
      "org.opencontainers.image.title": "psql-operator",
      "org.opencontainers.image.description": "The kopf-ts reference operator (psql -> PostgreSQL StatefulSet).",
      "org.opencontainers.image.version": version,
    };
    const config = blob({
      created: "1970-01-01T00:00:00Z",
      architecture: arch,
      os: "linux",
      config: {
        User: "10001:10001",
        Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production", "TSX_DISABLE_CACHE=1"],
        Entrypoint: ["/usr/local/bin/node", "--max-semi-space-size=2", "/app/node_modules/kopf-ts/bin/kopf-ts.js"],
        Cmd: ["run", "/app/operator.ts"],
        WorkingDir: "/app",
        Labels: labels,
      },
      rootfs: { type: "layers", diff_ids: layers.map((l) => `sha256:${l.diffId}`) },
      history: [
        { created: "1970-01-01T00:00:00Z", created_by: `scripts/image.sh: Node ${process.version} and its shared libraries` },
        { created: "1970-01-01T00:00:00Z", created_by: "scripts/image.sh: /app (pnpm deploy --prod)" },
      ],
    });
    const manifest = blob({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: `sha256:${l.digest}`,
        size: l.size,
      })),
      annotations: labels,
    });
    writeFileSync(`${OUT}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }) + "\n");
    writeFileSync(
      `${OUT}/index.json`,
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: [
            {
              mediaType: "application/vnd.oci.image.manifest.v1+json",
              ...manifest,
              platform: { architecture: arch, os: "linux" },
              annotations: { "org.opencontainers.image.ref.name": REF },
            },
          ],
        },
        null,
        2,
      ) + "\n",
    );
  '
log "OCI image layout: $out (ref '$ref'), $(du -sh "$out" | cut -f1) compressed"
