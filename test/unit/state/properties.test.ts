/**
 * Round-trip properties of the state formats over generated inputs (fast-check).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  buildEssence,
  clearEssence,
  encodeDiffBase,
  fetchDiffBase,
  storeDiffBase,
} from '../../../packages/framework/src/state/diffbase.ts';
import { keyConvention } from '../../../packages/framework/src/state/keys.ts';
import {
  encodeProgress,
  fetchProgress,
  storeProgress,
  type ProgressRecord,
} from '../../../packages/framework/src/state/progress.ts';
import { formatTime, parseTime } from '../../../packages/framework/src/state/time.ts';
import {
  dumpJson,
  parseJson,
  type JsonObject,
  type JsonValue,
} from '../../../packages/framework/src/util/json.ts';

const key = fc.oneof(
  fc.string(),
  fc.constantFrom('0', '1', '2', '10', '01', '-1', '__proto__', 'a/b', 'é', '😀'),
);
const json: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).filter((n) => n > 2n ** 53n || n < -(2n ** 53n)),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  ),
})).value;

test('dumpJson ∘ parseJson is the identity on its own output', () => {
  fc.assert(
    fc.property(json, (value) => {
      const text = dumpJson(value);
      assert.equal(dumpJson(parseJson(text)), text);
    }),
    { numRuns: 2000 },
  );
});

test('parseJson agrees with JSON.parse on values, and keeps the source key order', () => {
  fc.assert(
    fc.property(fc.dictionary(key, fc.oneof(fc.integer(), fc.string()), { maxKeys: 8 }), (obj) => {
      const text = JSON.stringify(obj);
      const parsed = parseJson(text) as JsonObject;
      assert.deepEqual({ ...parsed }, JSON.parse(text));
      // The order written back is the order of the text.
      assert.equal(
        dumpJson(parsed).replace(/\\u[0-9a-f]{4}/g, '?'),
        dumpJson(JSON.parse(text)).replace(/\\u[0-9a-f]{4}/g, '?'),
      );
    }),
  );
  assert.equal(dumpJson(parseJson('{"b":1,"2":2,"a":3,"1":4}')), '{"b":1,"2":2,"a":3,"1":4}');
  assert.equal(
    dumpJson(parseJson('[2.0,1e+21,1e-07,12345678901234567890]')),
    '[2.0,1e+21,1e-07,12345678901234567890]',
  );
});

const time = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2100-01-01T00:00:00Z'),
  noInvalidDate: true,
});
const record: fc.Arbitrary<ProgressRecord> = fc.record(
  {
    started: time.map(formatTime),
    stopped: time.map(formatTime),
    delayed: time.map(formatTime),
    purpose: fc.constantFrom('create', 'update', 'delete', 'resume'),
    retries: fc.nat(),
    success: fc.boolean(),
    failure: fc.boolean(),
    message: fc.string(),
    subrefs: fc.uniqueArray(fc.string({ minLength: 1 })).map((a) => a.sort()),
  },
  { requiredKeys: [] },
);

test('progress: fetch(store(record)) returns the record', () => {
  const convention = keyConvention('my-op.example.com');
  fc.assert(
    fc.property(record, fc.string({ minLength: 1, maxLength: 120 }), (rec, handlerId) => {
      const patch: JsonObject = {};
      storeProgress({}, patch, handlerId, rec, convention);
      const body = { metadata: patch.metadata! } as JsonObject;
      assert.deepEqual({ ...fetchProgress(body, handlerId, convention) }, JSON.parse(encodeProgress(rec)));
    }),
  );
});

test('times: parseTime(formatTime(t)) == t, and old naive forms read as UTC', () => {
  fc.assert(fc.property(time, (t) => assert.equal(parseTime(formatTime(t))?.getTime(), t.getTime())));
  assert.equal(parseTime('2020-02-14T16:58:25.396364')?.toISOString(), '2020-02-14T16:58:25.396Z');
  assert.equal(parseTime('2020-02-14T16:58:25')?.toISOString(), '2020-02-14T16:58:25.000Z');
  assert.equal(parseTime('2020-02-14T18:58:25+02:00')?.toISOString(), '2020-02-14T16:58:25.000Z');
  assert.equal(parseTime('yesterday'), undefined);
});

test('essence is stable under our own state annotations, and the stored essence reads back', () => {
  const convention = keyConvention();
  const body = fc.record({
    apiVersion: fc.constant('test.com/v1'),
    kind: fc.constant('psql'),
    metadata: fc.record({
      name: fc.constant('x'),
      labels: fc.dictionary(key, fc.string(), { maxKeys: 3 }),
      annotations: fc.dictionary(key, fc.string(), { maxKeys: 3 }),
    }),
    spec: fc.dictionary(key, json, { maxKeys: 4 }),
  });
  fc.assert(
    fc.property(body, record, (raw, rec) => {
      const original = parseJson(dumpJson(raw)) as JsonObject;
      const essence = clearEssence(buildEssence(original, convention), convention);
      const patch: JsonObject = {};
      storeProgress(original, patch, 'create_fn', rec, convention);
      storeDiffBase(original, patch, essence, convention);
      const annotated = parseJson(dumpJson(raw)) as JsonObject;
      const metadata = annotated.metadata as JsonObject;
      metadata.annotations = {
        ...(metadata.annotations as JsonObject),
        ...((patch.metadata as JsonObject).annotations as JsonObject),
      };
      const again = clearEssence(buildEssence(annotated, convention), convention);
      assert.equal(encodeDiffBase(again), encodeDiffBase(essence));
      assert.equal(dumpJson(fetchDiffBase(annotated, convention)!), dumpJson(essence));
    }),
  );
});
