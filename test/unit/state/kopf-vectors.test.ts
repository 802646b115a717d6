/**
 * Byte-for-byte compatibility with the real Python Kopf: every vector in
 * test/vectors/kopf-state.json was produced by Kopf's own storage classes
 * (test/kopf/gen_vectors.py); kopf-ts must produce the same bytes from the same inputs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  buildEssence,
  clearEssence,
  fetchDiffBase,
  storeDiffBase,
} from '../../../packages/framework/src/state/diffbase.ts';
import {
  DEFAULT_FINALIZER,
  keyConvention,
  keySuffix,
  makeKeys,
  makeV1Key,
  makeV2Key,
} from '../../../packages/framework/src/state/keys.ts';
import {
  fetchProgress,
  purgeProgress,
  storeProgress,
  touch,
  type ProgressRecord,
} from '../../../packages/framework/src/state/progress.ts';
import { dumpJson, parseJson, type JsonObject } from '../../../packages/framework/src/util/json.ts';

interface Vectors {
  kopf_version: string;
  finalizer: string;
  diffbase: Array<{
    name: string;
    prefix: string;
    body_json: string;
    essence_json: string;
    patch_json: string;
    stored_essence_roundtrip_json: string;
    extra_fields?: string[][];
  }>;
  progress: Array<{
    op: 'store' | 'fetch' | 'purge' | 'touch' | 'clear';
    name: string;
    prefix: string;
    v1?: boolean;
    verbose?: boolean;
    handler_id?: string;
    body_json?: string;
    record?: ProgressRecord;
    record_json?: string;
    initial_patch_json?: string;
    patch_json?: string;
    value?: string | null;
    essence_json?: string;
    result_json?: string;
  }>;
  keys: Array<{
    prefix: string;
    name: string;
    v1: string;
    v2: string;
    suffix: string;
    keys_v1_true: string[];
    keys_v1_false: string[];
  }>;
  mark_key: Array<{ name: string; body_json: string; key: string; keys: string[] }>;
}

const vectors = JSON.parse(
  readFileSync(new URL('../../vectors/kopf-state.json', import.meta.url), 'utf8'),
) as Vectors;
const object = (text: string) => parseJson(text) as JsonObject;

test('vectors come from the pinned Kopf and the finalizer name matches', () => {
  assert.equal(vectors.kopf_version, '1.45.2');
  assert.equal(DEFAULT_FINALIZER, vectors.finalizer);
});

describe('diff-base: essence built, cleared and stored as Kopf does', () => {
  for (const v of vectors.diffbase) {
    test(v.name, () => {
      const convention = keyConvention(v.prefix);
      const body = object(v.body_json);
      const essence = clearEssence(buildEssence(body, convention, v.extra_fields ?? []), convention);
      const patch: JsonObject = {};
      storeDiffBase(body, patch, essence, convention);
      assert.equal(dumpJson(patch), v.patch_json);

      // Reading it back from an object that carries the stored annotation.
      const annotations = (patch.metadata as JsonObject).annotations as JsonObject;
      const stored = object(v.body_json);
      const metadata = (stored.metadata as JsonObject | undefined) ?? (stored.metadata = {});
      metadata.annotations = { ...((metadata.annotations as JsonObject | undefined) ?? {}), ...annotations };
      assert.equal(dumpJson(fetchDiffBase(stored, convention) ?? null), v.stored_essence_roundtrip_json);
      assert.equal(annotations[Object.keys(annotations)[0]!], v.essence_json);
    });
  }
});

describe('progress records', () => {
  for (const v of vectors.progress) {
    test(`${v.op}: ${v.name}`, () => {
      const convention = keyConvention(v.prefix, v.v1 ?? true);
      const body = v.body_json ? object(v.body_json) : {};
      const patch = v.initial_patch_json ? object(v.initial_patch_json) : {};
      switch (v.op) {
        case 'store':
          if (v.verbose) return; // kopf-ts never writes null fields (Kopf's non-default verbose mode)
          storeProgress(body, patch, v.handler_id!, v.record!, convention);
          assert.equal(dumpJson(patch), v.patch_json);
          break;
        case 'fetch':
          assert.equal(dumpJson(fetchProgress(body, v.handler_id!, convention) ?? null), v.record_json);
          break;
        case 'purge':
          purgeProgress(body, patch, v.handler_id!, convention);
          assert.equal(dumpJson(patch), v.patch_json);
          break;
        case 'touch':
          touch(body, patch, v.value ?? null, convention);
          assert.equal(dumpJson(patch), v.patch_json);
          break;
        case 'clear':
          assert.equal(dumpJson(clearEssence(object(v.essence_json!), convention)), v.result_json);
          break;
      }
    });
  }
});

test('annotation keys: v1, v2, suffixes and key lists for every id and prefix', () => {
  assert.ok(vectors.keys.length > 100);
  for (const v of vectors.keys) {
    const label = `${v.prefix} / ${v.name}`;
    // Built directly: keyConvention() refuses prefixes too long for valid keys, Kopf only warns.
    const withV1 = { prefix: v.prefix, v1: true };
    const withoutV1 = { prefix: v.prefix, v1: false };
    assert.equal(makeV1Key(withV1, v.name), v.v1, `v1 of ${label}`);
    assert.equal(makeV2Key(withV1, v.name), v.v2, `v2 of ${label}`);
    assert.equal(keySuffix(v.name), v.suffix, `suffix of ${label}`);
    assert.deepEqual(makeKeys(withV1, v.name), v.keys_v1_true, `keys (v1) of ${label}`);
    assert.deepEqual(makeKeys(withoutV1, v.name), v.keys_v1_false, `keys (v2 only) of ${label}`);
  }
});

test('keys of ReplicaSets owned by Deployments are marked -ofDRS', () => {
  for (const v of vectors.mark_key) {
    assert.deepEqual(makeKeys(keyConvention(), v.key, object(v.body_json)), v.keys, v.name);
  }
});
