/**
 * A ledger for reliability tests: what the handlers were called for, compared with what the
 * test did to the objects.
 *
 * The handlers that `register()` adds (`create_fn`, `update_fn`, `delete_fn`) record every call
 * with the object's name, uid and the spec they saw, and return `{ spec }` (kept in
 * `status.<id>`). The test tells the ledger what it did: `created(name, spec)`,
 * `updated(name, spec)`, `deleted(name)`. `problems()` then compares, object by object:
 *
 * - exactly one creation, with the spec the object was created with;
 * - one update per distinct spec after it, in order (a change to the same spec is not one);
 * - one deletion, with the last spec, and nothing after it;
 * - no calls for objects the test never made, and one uid per name.
 *
 * "One update per distinct spec" is exact only when the test waits for each change to be
 * handled (`handled()`) before it changes the same object again: otherwise the operator may
 * rightly see only the newest spec. Tests change objects in phases for that reason.
 */
import type { TestContext } from 'node:test';
import { on } from '../../packages/framework/src/index.ts';
import type { HandlerContext } from '../../packages/framework/src/registry/context.ts';
import { eventually } from './cluster.ts';

export type LedgerReason = 'create' | 'update' | 'delete';

export interface LedgerCall {
  reason: LedgerReason;
  name: string;
  uid: string;
  /** The spec the handler saw, as JSON with sorted keys. */
  spec: string;
  /** Milliseconds since the ledger was made. */
  at: number;
}

/** JSON with sorted keys: specs compare by content, not by key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value ?? null);
}

export class Ledger {
  readonly calls: LedgerCall[] = [];
  private readonly intents = new Map<string, { specs: string[]; deleted: boolean }>();
  private readonly t0 = Date.now();

  /**
   * Registers the recording handlers on `resource` (in the process-wide registry). `delay`:
   * milliseconds each handler takes, so that cycles overlap with whatever the test breaks.
   */
  register(resource: string, options: { delay?: number } = {}): void {
    for (const reason of ['create', 'update', 'delete'] as const) {
      on[reason](
        resource,
        async (context: HandlerContext) => {
          const spec = canonical(context.spec);
          this.calls.push({ reason, name: context.name, uid: context.uid, spec, at: Date.now() - this.t0 });
          if (options.delay) await new Promise((r) => setTimeout(r, options.delay));
          return { spec };
        },
        { id: `${reason}_fn` },
      );
    }
  }

  // ---- what the test did ----

  created(name: string, spec: unknown): void {
    if (this.intents.has(name)) throw new Error(`ledger: ${name} was created already (use unique names)`);
    this.intents.set(name, { specs: [canonical(spec)], deleted: false });
  }

  updated(name: string, spec: unknown): void {
    const intent = this.intent(name);
    const json = canonical(spec);
    if (intent.specs.at(-1) !== json) intent.specs.push(json);
  }

  deleted(name: string): void {
    this.intent(name).deleted = true;
  }

  /** The names the test made (deleted or not). */
  get names(): string[] {
    return [...this.intents.keys()];
  }

  // ---- comparisons ----

  /** True once `name` had a `reason` call (with this spec, by default the latest intended one). */
  handled(name: string, reason: LedgerReason, spec?: unknown): boolean {
    const json = spec === undefined ? this.intents.get(name)?.specs.at(-1) : canonical(spec);
    return this.calls.some((c) => c.name === name && c.reason === reason && c.spec === json);
  }

  /** Waits until every name in `names` had its `reason` call for its latest intended spec. */
  async allHandled(what: string, names: string[], reason: LedgerReason, timeoutMs = 30_000): Promise<void> {
    await eventually(
      `${what} (${reason})`,
      () => {
        const missing = names.filter((n) => !this.handled(n, reason));
        if (missing.length)
          throw new Error(`${missing.length} not handled yet, e.g. ${missing.slice(0, 5).join(', ')}`);
        return true;
      },
      timeoutMs,
      100,
    );
  }

  /** What the calls should have been for `name`: `create <spec>`, `update <spec>`..., `delete <spec>`. */
  expected(name: string): string[] {
    const intent = this.intent(name);
    const lines = intent.specs.map((spec, i) => `${i === 0 ? 'create' : 'update'} ${spec}`);
    if (intent.deleted) lines.push(`delete ${intent.specs.at(-1)}`);
    return lines;
  }

  /** What the calls were for `name`, in order. */
  actual(name: string): string[] {
    return this.calls.filter((c) => c.name === name).map((c) => `${c.reason} ${c.spec}`);
  }

  /** Every difference between the calls and the intents, as readable lines; empty when they agree. */
  problems(): string[] {
    const problems: string[] = [];
    for (const name of this.intents.keys()) {
      const expected = this.expected(name);
      const actual = this.actual(name);
      if (JSON.stringify(expected) !== JSON.stringify(actual))
        problems.push(`${name}: expected [${expected.join('; ')}], got [${actual.join('; ')}]`);
      const uids = new Set(this.calls.filter((c) => c.name === name).map((c) => c.uid));
      if (uids.size > 1) problems.push(`${name}: calls for ${uids.size} different uids`);
    }
    for (const call of this.calls)
      if (!this.intents.has(call.name))
        problems.push(`${call.name}: a ${call.reason} call for an object never made`);
    return problems;
  }

  /**
   * Waits until the calls agree with the intents, then `quietMs` more, and checks again: a late
   * duplicate (e.g. a handler run again after a lost patch) fails too.
   */
  async settled(t?: TestContext, timeoutMs = 30_000, quietMs = 1_500): Promise<void> {
    try {
      await eventually(
        'the ledger to agree with what was done',
        () => {
          const problems = this.problems();
          if (problems.length) throw new Error(problems.slice(0, 5).join('\n'));
          return true;
        },
        timeoutMs,
        100,
      );
      await new Promise((r) => setTimeout(r, quietMs));
    } catch {
      // reported below, in full
    }
    const problems = this.problems();
    if (problems.length) {
      t?.diagnostic(
        `ledger:\n${this.calls.map((c) => `${c.at} ${c.reason} ${c.name} ${c.uid} ${c.spec}`).join('\n')}`,
      );
      throw new Error(`the ledger disagrees (${problems.length}):\n${problems.slice(0, 20).join('\n')}`);
    }
  }

  /** Counts by reason, for diagnostics. */
  summary(): string {
    const count = (r: LedgerReason) => this.calls.filter((c) => c.reason === r).length;
    return `${this.intents.size} objects: ${count('create')} create, ${count('update')} update, ${count('delete')} delete calls`;
  }

  private intent(name: string): { specs: string[]; deleted: boolean } {
    const intent = this.intents.get(name);
    if (!intent) throw new Error(`ledger: ${name} was never created`);
    return intent;
  }
}
