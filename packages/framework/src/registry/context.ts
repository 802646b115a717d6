/**
 * The one typed object a handler receives. Built by `processing/`, documented for users.
 */
import type { JsonObject, JsonValue } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import type { Reason } from './registry.ts';

/** One change, as Kopf reports it: `[op, path, old, new]`, plain JSON-serialisable. */
export type DiffItem = readonly [
  'add' | 'change' | 'remove',
  readonly string[],
  JsonValue | null,
  JsonValue | null,
];

/** Object metadata as handlers see it. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
  [key: string]: JsonValue | undefined;
}

/** A Kubernetes object as handlers see it. */
export interface KubeObject<Spec = JsonObject, Status = JsonObject> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
  [key: string]: unknown;
}

/** The handled resource. */
export interface ResourceInfo {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** Any Kubernetes object body, for the object API. */
export interface AnyObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** The object API that handlers get as `api`: any object by `apiVersion` and `kind`. */
export interface ObjectApi {
  /** The object, or undefined if it does not exist. */
  get<T extends AnyObject = AnyObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T | undefined>;
  list<T extends AnyObject = AnyObject>(
    apiVersion: string,
    kind: string,
    options?: { namespace?: string; labelSelector?: string; fieldSelector?: string },
  ): Promise<T[]>;
  /** Creates the object; fails with a 409 ApiError if it exists. */
  create<T extends AnyObject>(body: T): Promise<T>;
  /** Server-side apply: creates the object or updates the fields this operator manages (idempotent). */
  apply<T extends AnyObject>(
    body: T,
    options?: { force?: boolean; fieldManager?: string; subresource?: string },
  ): Promise<T>;
  /** A merge (default), JSON or strategic patch; undefined if the object does not exist. */
  patch<T extends AnyObject = AnyObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    options?: { type?: 'merge' | 'json' | 'strategic'; subresource?: string },
  ): Promise<T | undefined>;
  /** Deletes the object; false if it did not exist. */
  delete(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
    options?: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' },
  ): Promise<boolean>;
}

/** A key of an index: a primitive, or a tuple of primitives (e.g. `[namespace, name]`). */
export type IndexKey = string | number | boolean | null | readonly (string | number | boolean | null)[];

/**
 * One index (`on.index`): for each key, the values that the index function returned for it,
 * one per object that returned the key. Kept current from the watch streams.
 */
export interface Index<V = unknown> extends Iterable<[IndexKey, readonly V[]]> {
  /** The values under the key; empty when no object has it. */
  get(key: IndexKey): readonly V[];
  has(key: IndexKey): boolean;
  keys(): IterableIterator<IndexKey>;
  /** The number of keys. */
  readonly size: number;
}

/** All indexes of the operator, by the id of their `on.index` handler. */
export interface Indexes {
  /** The index of that id; an error names the known ones if there is none. */
  get<V = unknown>(id: string): Index<V>;
  /** The ids of all indexes. */
  ids(): string[];
}

/** A per-object, in-memory store that lives as long as the operator process. */
export type Memo = Record<string, unknown>;

/** What every resource handler receives. */
export interface ObjectContext<Spec = JsonObject, Status = JsonObject> {
  body: KubeObject<Spec, Status>;
  spec: Spec;
  meta: ObjectMeta;
  status: Status;
  name: string;
  namespace: string | undefined;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Logs with the `[namespace/name]` prefix. */
  logger: Logger;
  /**
   * A merge patch for this object, sent once at the end of the cycle together with the
   * framework's own state: e.g. `patch.status = { phase: 'Ready' }`.
   */
  patch: Record<string, unknown>;
  memo: Memo;
  /** Get, list, create, apply, patch and delete other objects (e.g. children). */
  api: ObjectApi;
  resource: ResourceInfo;
  /** The handler's `param` option. */
  param: unknown;
  /** The operator's indexes (`on.index`), populated before any handler runs. */
  indexes: Indexes;
}

/** What create/update/delete/resume/field handlers receive. */
export interface HandlerContext<Spec = JsonObject, Status = JsonObject> extends ObjectContext<Spec, Status> {
  reason: Reason;
  /** 0 on the first attempt, then 1, 2, … */
  retry: number;
  /** When the first attempt started. */
  started: Date;
  /** Seconds since `started`. */
  runtime: number;
  /** The old and new essence (or field value, for field handlers); undefined for creation. */
  old: JsonValue | undefined;
  new: JsonValue | undefined;
  diff: DiffItem[];
}

/** What timers and daemons receive. */
export interface SpawningContext<Spec = JsonObject, Status = JsonObject> extends ObjectContext<Spec, Status> {
  /** Aborted when the task must stop: the object is being deleted, the operator pauses or stops. */
  signal: AbortSignal;
  /** 0 on the first attempt (daemons: restarts after errors; timers: consecutive failures). */
  retry: number;
  /** When the task started. */
  started: Date;
  /** Seconds since `started`. */
  runtime: number;
}

/** What on.reconcile handlers receive: the current state of the object, whatever changed. */
export interface ReconcileContext<Spec = JsonObject, Status = JsonObject> extends ObjectContext<
  Spec,
  Status
> {
  /** 0, or the number of failed attempts since the last success. */
  retry: number;
  /** When the first of the failed attempts started (now when `retry` is 0). */
  started: Date;
  /** Seconds since `started`. */
  runtime: number;
}

/** What on.event handlers receive: the raw watch event. */
export interface EventContext<Spec = JsonObject, Status = JsonObject> extends ObjectContext<Spec, Status> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
}

/** What activities (on.startup, on.cleanup, on.login, on.probe) receive. */
export interface ActivityContext {
  logger: Logger;
  /** The operator-wide memo, shared by all activities. */
  memo: Memo;
  /** 0 on the first attempt. */
  retry: number;
  started: Date;
  runtime: number;
  param: unknown;
}
