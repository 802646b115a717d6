/**
 * In-memory indexes (`on.index`, after Kopf's `indexing.py`): each index function maps an
 * object to keys and values; an index holds, per key, the values of all objects that returned
 * it. Every watch event of an indexed resource replaces that object's contribution (or removes
 * it: deletion, filters no longer matching), before the object's handlers run.
 */
import type { Index, IndexKey, Indexes, ObjectContext } from '../registry/context.ts';
import type { IndexingHandler } from '../registry/registry.ts';
import { filtersMatch } from './invocation.ts';

/** Keys are compared by value: tuples too. */
function keyId(key: IndexKey): string {
  return JSON.stringify(key);
}

class IndexStore<V> implements Index<V> {
  private readonly byKey = new Map<string, { key: IndexKey; values: Map<string, V> }>();
  private readonly byObject = new Map<string, string[]>();

  get(key: IndexKey): readonly V[] {
    return [...(this.byKey.get(keyId(key))?.values.values() ?? [])];
  }

  has(key: IndexKey): boolean {
    return this.byKey.has(keyId(key));
  }

  *keys(): IterableIterator<IndexKey> {
    for (const entry of this.byKey.values()) yield entry.key;
  }

  get size(): number {
    return this.byKey.size;
  }

  *[Symbol.iterator](): Iterator<[IndexKey, readonly V[]]> {
    for (const entry of this.byKey.values()) yield [entry.key, [...entry.values.values()]];
  }

  /** Replaces what one object contributes (nothing: removes it). */
  replace(object: string, entries: Array<[IndexKey, V]>): void {
    this.remove(object);
    if (!entries.length) return;
    const ids: string[] = [];
    for (const [key, value] of entries) {
      const id = keyId(key);
      let entry = this.byKey.get(id);
      if (!entry) this.byKey.set(id, (entry = { key, values: new Map() }));
      entry.values.set(object, value);
      ids.push(id);
    }
    this.byObject.set(object, ids);
  }

  remove(object: string): void {
    for (const id of this.byObject.get(object) ?? []) {
      const entry = this.byKey.get(id);
      entry?.values.delete(object);
      if (entry && !entry.values.size) this.byKey.delete(id);
    }
    this.byObject.delete(object);
  }
}

/**
 * What an index function returned, as entries: a Map or a plain object maps keys to values;
 * `undefined` or `null` indexes nothing; any other value is indexed under the key `null`.
 */
function entriesOf(result: unknown): Array<[IndexKey, unknown]> {
  if (result === undefined || result === null) return [];
  if (result instanceof Map) return [...(result as Map<IndexKey, unknown>)];
  if (typeof result === 'object' && !Array.isArray(result)) return Object.entries(result);
  return [[null, result]];
}

/** The operator's indexes, updated from the watch events of the indexed resources. */
export class Indexer implements Indexes {
  private readonly stores = new Map<string, IndexStore<unknown>>();

  constructor(handlers: IndexingHandler[]) {
    for (const handler of handlers) {
      if (this.stores.has(handler.id)) {
        throw new Error(
          `Two on.index handlers have the id '${handler.id}'${handler.origin ? ` (one at ${handler.origin})` : ''}: index ids name the indexes and must be unique in the operator.`,
        );
      }
      this.stores.set(handler.id, new IndexStore());
    }
  }

  get<V = unknown>(id: string): Index<V> {
    const store = this.stores.get(id);
    if (!store) {
      const known = [...this.stores.keys()];
      throw new Error(
        `There is no index '${id}'; ${known.length ? `the indexes are: ${known.join(', ')}` : 'no on.index handlers are registered'}.`,
      );
    }
    return store as Index<V>;
  }

  ids(): string[] {
    return [...this.stores.keys()];
  }

  /**
   * Re-indexes one object with the resource's index handlers (`base` is its context), or
   * removes it when it is gone. A failing index function keeps the object's previous entries.
   */
  async update(handlers: IndexingHandler[], base: ObjectContext, gone: boolean): Promise<void> {
    for (const handler of handlers) {
      const store = this.stores.get(handler.id)!;
      if (gone || !filtersMatch(handler, base)) {
        store.remove(base.uid);
        continue;
      }
      try {
        const result = await (handler.fn as (c: ObjectContext) => unknown)({
          ...base,
          param: handler.options.param,
        });
        store.replace(base.uid, entriesOf(result));
      } catch (error) {
        base.logger.error(
          { err: error },
          `Index '${handler.id}' failed for this object; its previous entries are kept: ${(error as Error).message}`,
        );
      }
    }
  }
}
