/**
 * Registering handlers: plain calls, standard (TC39) decorators on static and instance methods,
 * legacy (experimentalDecorators) decorators, and the errors for misuse.
 */
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { on } from '../../../packages/framework/src/index.ts';
import type { HandlerContext } from '../../../packages/framework/src/index.ts';
import { clearRegistry, registry } from '../../../packages/framework/src/registry/registry.ts';

beforeEach(() => clearRegistry());

const context = {} as HandlerContext;

test('plain calls register under the function name, and duplicates are refused', () => {
  on.create('psqls.test.com', function create_fn() {});
  on.update('psqls.test.com', () => undefined, { id: 'by_id' });
  assert.deepEqual(
    registry().handlers.map((h) => [h.kind, h.id]),
    [
      ['changing', 'create_fn'],
      ['changing', 'by_id'],
    ],
  );
  assert.throws(
    () => on.create('psqls.test.com', function create_fn() {}),
    /id 'create_fn' is already registered/,
  );
  assert.throws(
    () => on.create('psqls.test.com', () => undefined),
    /the function has no name; give it an id/,
  );
  assert.throws(() => on.field('psqls.test.com', function f() {}), /needs the field option/);
  assert.throws(
    () => on.timer('psqls.test.com', function t() {}, { interval: 0 }),
    /needs a positive interval/,
  );
});

test('standard decorators: static methods run on the class, instance methods on the first instance', async () => {
  const calls: string[] = [];
  class Operator {
    constructor(readonly name: string) {}
    @on.create('psqls.test.com')
    static create_fn() {
      calls.push('static');
    }
    @on.update('psqls.test.com', { id: 'update_it' })
    update(_: HandlerContext) {
      calls.push(`instance ${this.name}`);
    }
  }
  const handlers = registry().handlers;
  assert.deepEqual(
    handlers.map((h) => h.id),
    ['create_fn', 'update_it'],
  );
  await (handlers[0]!.fn as (c: HandlerContext) => unknown)(context);
  await assert.rejects(
    Promise.resolve().then(() => (handlers[1]!.fn as (c: HandlerContext) => unknown)(context)),
    /no instance of its class was created/,
  );
  new Operator('first');
  new Operator('second');
  await (handlers[1]!.fn as (c: HandlerContext) => unknown)(context);
  assert.deepEqual(calls, ['static', 'instance first']);
});

test('legacy decorators (experimentalDecorators) instantiate the class on first use and record ids', async () => {
  const calls: string[] = [];
  class Legacy {
    greeting = 'hello';
    handle() {
      calls.push(this.greeting);
    }
  }
  // What TypeScript emits for `@on.create('psqls.test.com') handle() {}` with experimentalDecorators.
  const descriptor = Object.getOwnPropertyDescriptor(Legacy.prototype, 'handle')!;
  (on.create('psqls.test.com') as (target: object, key: string, descriptor: PropertyDescriptor) => void)(
    Legacy.prototype,
    'handle',
    descriptor,
  );
  // reflect-metadata (loaded by kopf-ts) records the handler ids on the class.
  const metadata = Reflect as unknown as { getMetadata(key: string, target: object): unknown };
  assert.deepEqual(metadata.getMetadata('kopf-ts:handlers', Legacy), ['handle']);
  await (registry().handlers[0]!.fn as (c: HandlerContext) => unknown)(context);
  assert.deepEqual(calls, ['hello']);
});

test('decorating something other than a method says what was detected', () => {
  const decorator = on.create('psqls.test.com') as unknown as (value: unknown, context: unknown) => void;
  assert.throws(
    () => decorator(undefined, { kind: 'field', name: 'x', addInitializer: () => undefined }),
    /decorates methods, not a field \(detected a standard TC39 decorator/,
  );
  assert.throws(() => decorator(42, 7), /must decorate a class method/);
});
