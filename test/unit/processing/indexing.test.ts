/**
 * Indexes (`on.index`) as pure logic: what index functions may return, tuple keys, replacing and
 * removing an object's contribution, filters, failures; and the registration rules of
 * `on.index` and `on.reconcile` with the RBAC they generate.
 */
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { on } from '../../../packages/framework/src/index.ts';
import type { ObjectContext } from '../../../packages/framework/src/index.ts';
import { rbacRules } from '../../../packages/framework/src/manifests/generate.ts';
import { Indexer } from '../../../packages/framework/src/processing/indexing.ts';
import {
  clearRegistry,
  registry,
  type IndexingHandler,
} from '../../../packages/framework/src/registry/registry.ts';
import { createLogger } from '../../../packages/framework/src/util/logging.ts';
import { Writable } from 'node:stream';

beforeEach(() => clearRegistry());

const errors: string[] = [];
const logger = createLogger({
  level: 'error',
  destination: new Writable({
    write(chunk: Buffer, _encoding, callback) {
      errors.push(chunk.toString());
      callback();
    },
  }),
});

function handler(id: string, fn: (c: ObjectContext) => unknown, labels?: Record<string, string>) {
  return { kind: 'indexing', id, resource: 'pods', fn, options: { labels } } as IndexingHandler;
}

function object(uid: string, spec: Record<string, unknown>, labels: Record<string, string> = {}) {
  return { uid, spec, labels, annotations: {}, logger } as unknown as ObjectContext;
}

test('an index maps keys to the values of all objects; objects replace and remove their own entries', async () => {
  const byTeam = handler('by_team', ({ spec }) => ({ [spec.team as string]: spec.name }));
  const indexer = new Indexer([byTeam]);
  await indexer.update([byTeam], object('1', { team: 'red', name: 'ann' }), false);
  await indexer.update([byTeam], object('2', { team: 'red', name: 'bob' }), false);
  const index = indexer.get<string>('by_team');
  assert.deepEqual(index.get('red'), ['ann', 'bob']);
  assert.deepEqual(index.get('blue'), [], 'an unknown key has no values');
  await indexer.update([byTeam], object('2', { team: 'blue', name: 'bob' }), false);
  assert.deepEqual(
    [...index],
    [
      ['red', ['ann']],
      ['blue', ['bob']],
    ],
  );
  await indexer.update([byTeam], object('1', {}), true);
  assert.equal(index.has('red'), false, 'an empty key disappears');
  assert.equal(index.size, 1);
});

test('index functions may return a Map with tuple keys, a single value, or nothing', async () => {
  const byPlace = handler('by_place', ({ spec }) => new Map([[[spec.ns, spec.node], spec.name]]));
  const single = handler('single', ({ spec }) => spec.name);
  const none = handler('none', () => undefined);
  const indexer = new Indexer([byPlace, single, none]);
  const all = [byPlace, single, none];
  await indexer.update(all, object('1', { ns: 'a', node: 'n1', name: 'ann' }), false);
  await indexer.update(all, object('2', { ns: 'a', node: 'n1', name: 'bob' }), false);
  assert.deepEqual(indexer.get('by_place').get(['a', 'n1']), ['ann', 'bob'], 'tuples compare by value');
  assert.deepEqual(indexer.get('single').get(null), ['ann', 'bob'], 'a plain value is under the key null');
  assert.equal(indexer.get('none').size, 0);
  assert.deepEqual(indexer.ids(), ['by_place', 'single', 'none']);
});

test('filters exclude objects; a failing index function keeps the previous entries and logs', async () => {
  let fail = false;
  const byName = handler(
    'by_name',
    ({ spec }) => {
      if (fail) throw new Error('broken');
      return { [spec.name as string]: true };
    },
    { role: 'member' },
  );
  const indexer = new Indexer([byName]);
  await indexer.update([byName], object('1', { name: 'ann' }, { role: 'member' }), false);
  fail = true;
  await indexer.update([byName], object('1', { name: 'ann2' }, { role: 'member' }), false);
  assert.deepEqual([...indexer.get('by_name').keys()], ['ann'], 'kept');
  assert.match(
    errors.join(''),
    /Index 'by_name' failed for this object; its previous entries are kept: broken/,
  );
  await indexer.update([byName], object('1', { name: 'ann' }, { role: 'retired' }), false);
  assert.equal(indexer.get('by_name').size, 0, 'no longer matching: removed');
  assert.throws(() => indexer.get('other'), /There is no index 'other'; the indexes are: by_name/);
  assert.throws(() => new Indexer([byName, byName]), /Two on.index handlers have the id 'by_name'/);
});

test('on.index ids are unique in the operator; on.reconcile options are checked', () => {
  on.index('pods', function by_node() {});
  assert.throws(() => on.index('configmaps', function by_node() {}), /An on.index handler with id 'by_node'/);
  assert.throws(
    () => on.reconcile('psqls.test.com', function r() {}, { field: 'spec' } as never),
    /takes no 'field' or 'optional' option/,
  );
  assert.throws(
    () => on.reconcile('psqls.test.com', function r() {}, { resync: -1 }),
    /resync is in seconds/,
  );
  assert.throws(() => on.reconcile('psqls.test.com', function r() {}, { owns: [''] }), /an empty resource/);
  on.reconcile('psqls.test.com', function keep() {}, {
    owns: ['statefulsets.apps', { resource: 'configmaps', labels: { app: 'x' } }],
  });
  assert.deepEqual(
    registry().handlers.map((h) => [h.kind, h.id]),
    [
      ['indexing', 'by_node'],
      ['reconciling', 'keep'],
    ],
  );
});

test('RBAC: indexes only read; owners may manage the children they own', () => {
  on.index('pods', function by_node() {});
  on.reconcile('psqls.test.com', function keep() {}, { owns: ['statefulsets.apps', 'configmaps'] });
  const rules = rbacRules(registry());
  const verbs = (group: string, resource: string) =>
    rules.find((r) => r.apiGroups.includes(group) && r.resources.includes(resource))?.verbs;
  assert.deepEqual(verbs('', 'pods'), ['list', 'watch']);
  assert.deepEqual(verbs('test.com', 'psqls'), ['get', 'list', 'patch', 'watch']);
  const managed = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
  assert.deepEqual(verbs('apps', 'statefulsets'), managed);
  assert.deepEqual(verbs('', 'configmaps'), managed);
});
