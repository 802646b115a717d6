/**
 * The diff-base of oversized objects (docs/state.md): the annotation while the annotations
 * with it stay within the budget (Kopf's bytes, unchanged), the status copy with a digest
 * annotation beyond it, the digest alone where the status copy is lost, and the way back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  annotationsSize,
  buildEssence,
  clearEssence,
  DIFFBASE_ANNOTATIONS_BUDGET,
  DIFFBASE_STATUS_BUDGET,
  diffBaseDigest,
  encodeDiffBase,
  fetchStoredDiffBase,
  oldEssenceOf,
  storeDiffBase,
  storeDiffBaseFitting,
} from '../../../packages/framework/src/state/diffbase.ts';
import { keyConvention } from '../../../packages/framework/src/state/keys.ts';
import { dumpJson, type JsonObject } from '../../../packages/framework/src/util/json.ts';

const convention = keyConvention();
const DIFFBASE = 'kopf.zalando.org/last-handled-configuration';
const DIGEST = 'kopf.zalando.org/last-handled-digest';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function body(spec: JsonObject, annotations: Record<string, string> = {}, status?: JsonObject): JsonObject {
  return {
    apiVersion: 'kopf-ts.dev/v1',
    kind: 'KopfTest',
    metadata: { name: 'x', namespace: 'ns', uid: 'u', annotations },
    spec,
    ...(status ? { status } : {}),
  };
}

/** The body after a merge patch of annotations and status (nulls remove), as the apiserver does. */
function patched(original: JsonObject, patch: JsonObject): JsonObject {
  const merge = (a: JsonObject, b: JsonObject): JsonObject => {
    const out: JsonObject = { ...a };
    for (const [k, v] of Object.entries(b)) {
      if (v === null) delete out[k];
      else if (v && typeof v === 'object' && !Array.isArray(v))
        out[k] = merge((out[k] as JsonObject | undefined) ?? {}, v);
      else out[k] = v;
    }
    return out;
  };
  return merge(original, patch);
}

test('a small object: the same bytes and keys as storeDiffBase (Kopf)', () => {
  const b = body({ a: 1, s: 'Grüße' });
  const essence = { spec: { a: 1, s: 'Grüße' } };
  const kopf: JsonObject = {};
  storeDiffBase(b, kopf, essence, convention);
  const ours: JsonObject = {};
  const stored = storeDiffBaseFitting(b, ours, essence, convention);
  assert.equal(stored.location, 'annotations');
  assert.equal(stored.previous, undefined);
  assert.deepEqual(ours, kopf);
  const after = patched(b, ours);
  assert.deepEqual(fetchStoredDiffBase(after, convention), { location: 'annotations', essence });
});

test('beyond the budget: the status copy in Kopf StatusDiffBaseStorage format, and a digest', () => {
  const blob = 'x'.repeat(80 * 1024);
  const spec = { blob };
  const lastApplied = JSON.stringify({ spec });
  const b = body(spec, { [LAST_APPLIED]: lastApplied });
  const essence = { spec };
  const patch: JsonObject = {};
  const stored = storeDiffBaseFitting(b, patch, essence, convention);
  assert.equal(stored.location, 'status');
  assert.ok(stored.annotationsSize > DIFFBASE_ANNOTATIONS_BUDGET);
  assert.equal(stored.diffBaseSize, encodeDiffBase(essence).length);
  const annotations = (patch.metadata as JsonObject).annotations as JsonObject;
  assert.equal(annotations[DIFFBASE], undefined, 'no diff-base annotation written');
  assert.equal(annotations[DIGEST], diffBaseDigest(essence));
  assert.match(String(annotations[DIGEST]), /^sha256:[0-9a-f]{64}$/);
  const copy = ((patch.status as JsonObject).kopf as JsonObject)['last-handled-configuration'];
  assert.equal(copy, dumpJson(essence), 'compact JSON, no newline');

  const after = patched(b, patch);
  const found = fetchStoredDiffBase(after, convention)!;
  assert.equal(found.location, 'status');
  assert.deepEqual(found.essence, essence);
  assert.deepEqual(oldEssenceOf(found, essence, convention), essence);
  assert.ok(annotationsSize((after.metadata as JsonObject).annotations as JsonObject) < 90 * 1024);
  // The status copy is not part of the essence, even for handlers of `status` fields.
  const withStatus = clearEssence(buildEssence(after, convention, [['status']]), convention);
  assert.deepEqual(withStatus, essence);
});

test('the budget counts keys and values in UTF-8 bytes, after the patch', () => {
  assert.equal(annotationsSize({ ab: 'cd', 'é/x': 'ü' }), 4 + 4 + 2);
  // Just below and just above the budget, with another annotation taking the rest.
  const essence = { spec: { a: 1 } };
  const own = Buffer.byteLength(DIFFBASE) + Buffer.byteLength(encodeDiffBase(essence));
  const other = 'o'.repeat(DIFFBASE_ANNOTATIONS_BUDGET - own - 'other'.length);
  assert.equal(
    storeDiffBaseFitting(body({ a: 1 }, { other }), {}, essence, convention).location,
    'annotations',
  );
  const more = `${other}o`;
  assert.equal(
    storeDiffBaseFitting(body({ a: 1 }, { other: more }), {}, essence, convention).location,
    'status',
  );
  // An annotation that the same patch removes does not count.
  const removing: JsonObject = { metadata: { annotations: { other: null } } };
  assert.equal(
    storeDiffBaseFitting(body({ a: 1 }, { other: more }), removing, essence, convention).location,
    'annotations',
  );
});

test('back within the budget: the annotation again, the status copy and the digest removed', () => {
  const old = { spec: { blob: 'y'.repeat(200 * 1024) } };
  const b = body(
    { a: 1 },
    { [DIGEST]: diffBaseDigest(old) },
    { kopf: { 'last-handled-configuration': dumpJson(old) } },
  );
  assert.equal(fetchStoredDiffBase(b, convention)!.location, 'status');
  const patch: JsonObject = {};
  const stored = storeDiffBaseFitting(b, patch, { spec: { a: 1 } }, convention);
  assert.equal(stored.location, 'annotations');
  assert.equal(stored.previous, 'status');
  assert.deepEqual(patch, {
    metadata: { annotations: { [DIFFBASE]: '{"spec":{"a":1}}\n', [DIGEST]: null } },
    status: { kopf: { 'last-handled-configuration': null } },
  });
});

test('moving to status removes a stale diff-base annotation, which would be read first', () => {
  const small = { spec: { a: 1 } };
  const big = { spec: { a: 1, blob: 'z'.repeat(140 * 1024) } };
  const b = body(big.spec, { [DIFFBASE]: encodeDiffBase(small) });
  assert.equal(fetchStoredDiffBase(b, convention)!.location, 'annotations');
  const patch: JsonObject = {};
  const stored = storeDiffBaseFitting(b, patch, big, convention);
  assert.equal(stored.location, 'status');
  assert.equal(stored.previous, 'annotations');
  assert.equal(((patch.metadata as JsonObject).annotations as JsonObject)[DIFFBASE], null);
  assert.equal(fetchStoredDiffBase(patched(b, patch), convention)!.location, 'status');
});

test('reading: a status copy that its digest disagrees with is not trusted; the digest alone', () => {
  const committed = { spec: { n: 1 } };
  const uncommitted = { spec: { n: 2 } };
  const digest = diffBaseDigest(committed);
  // The status patch went through, the main patch (with the digest) did not.
  const b = body(
    { n: 2 },
    { [DIGEST]: digest },
    { kopf: { 'last-handled-configuration': dumpJson(uncommitted) } },
  );
  const found = fetchStoredDiffBase(b, convention)!;
  assert.deepEqual(found, { location: 'digest', digest });
  assert.equal(oldEssenceOf(found, uncommitted, convention), undefined, 'changed, from an unknown state');
  assert.deepEqual(oldEssenceOf(found, committed, convention), committed, 'unchanged');
  // A status copy without any digest (as Kopf's StatusDiffBaseStorage writes it) is read.
  const kopf = body({ n: 2 }, {}, { kopf: { 'last-handled-configuration': dumpJson(uncommitted) } });
  assert.deepEqual(fetchStoredDiffBase(kopf, convention), {
    location: 'status',
    essence: uncommitted,
    digest: undefined,
  });
  // Nothing at all: a new object.
  assert.equal(fetchStoredDiffBase(body({ n: 2 }), convention), undefined);
});

test('beyond the status budget too: only the digest, and the status copy removed', () => {
  const spec = { blob: 'w'.repeat(DIFFBASE_STATUS_BUDGET) };
  const old = { spec: { blob: 'v' } };
  const b = body(
    spec,
    { [DIGEST]: diffBaseDigest(old) },
    { kopf: { 'last-handled-configuration': dumpJson(old) } },
  );
  const patch: JsonObject = {};
  const stored = storeDiffBaseFitting(b, patch, { spec }, convention);
  assert.equal(stored.location, 'digest');
  assert.equal(stored.previous, 'status');
  assert.deepEqual(patch, {
    status: { kopf: { 'last-handled-configuration': null } },
    metadata: { annotations: { [DIGEST]: diffBaseDigest({ spec }) } },
  });
  const found = fetchStoredDiffBase(patched(b, patch), convention)!;
  assert.equal(found.location, 'digest');
  assert.deepEqual(oldEssenceOf(found, { spec }, convention), { spec });
});
