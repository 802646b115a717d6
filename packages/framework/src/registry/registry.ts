/**
 * The registry: plain data about what an operator registered — handlers, activities and
 * resource declarations. Written by `api/`, read by `processing/`, `runtime/` and
 * `manifests/`. One registry per process, kept on `globalThis`, so that handlers registered
 * through source files and through built files (or two copies of the package) meet.
 */

/** A resource as handlers name it: `'psqls.test.com'`, `'psqls.v1.test.com'`, `'psqls'`, or an object. */
export type ResourceSpec = string | { group?: string; version?: string; plural: string };

/** Why a changing handler is called. */
export type Reason = 'create' | 'update' | 'delete' | 'resume';

/** How a label or annotation must be: a value, present, absent, or a predicate of the value. */
export type MetaFilter = string | typeof PRESENT | typeof ABSENT | ((value: string | undefined) => boolean);

/** Marks a label/annotation filter that requires the key to be present (any value). */
export const PRESENT: unique symbol = Symbol.for('kopf-ts.filter.present');
/** Marks a label/annotation filter that requires the key to be absent. */
export const ABSENT: unique symbol = Symbol.for('kopf-ts.filter.absent');

/** What to do with errors other than TemporaryError/PermanentError. */
export type ErrorsMode = 'temporary' | 'permanent' | 'ignored';

/** Options shared by resource handlers. Durations are in seconds. */
export interface HandlerOptions<C = never> {
  /** The handler id: progress annotations and `status.<id>` use it. Defaults to the function's name. */
  id?: string;
  /** Only changes of this dotted field (e.g. `spec.size`) trigger the handler; old/new/diff are of this field. */
  field?: string;
  /** Only objects whose labels match. */
  labels?: Record<string, MetaFilter>;
  /** Only objects whose annotations match. */
  annotations?: Record<string, MetaFilter>;
  /** Only when this predicate of the handler's arguments is true. */
  when?: (context: C) => boolean;
  /** Attempts before the handler is considered failed. Default: unlimited. */
  retries?: number;
  /** Seconds since the first attempt after which the handler is considered failed. */
  timeout?: number;
  /** Seconds between retries after an error (default: exponential, 1 s doubling to 60 s). */
  backoff?: number;
  /** How to treat errors other than TemporaryError/PermanentError. Default `temporary`. */
  errors?: ErrorsMode;
  /** Deletion handlers only: do not block deletion with a finalizer (best effort). */
  optional?: boolean;
  /** An arbitrary value passed to the handler as `param` (one function for several registrations). */
  param?: unknown;
}

/** A function called with one typed context object. */
export type HandlerFn<C = never> = (context: C) => unknown;

interface HandlerBase {
  /** Unique within the resource. */
  id: string;
  resource: ResourceSpec;
  fn: HandlerFn<never>;
  options: HandlerOptions<never>;
  /** Where it was registered (file:line), for messages. */
  origin?: string;
}

/** on.create / on.update / on.delete / on.resume / on.field handlers. */
export interface ChangingHandler extends HandlerBase {
  kind: 'changing';
  /** The reasons it reacts to. `on.field` handlers react to create, update and resume with a change of the field. */
  reasons: Reason[];
}

/** on.event handlers: every watch event, nothing persisted. */
export interface WatchingHandler extends HandlerBase {
  kind: 'watching';
}

/** Options of `on.timer`. Durations are in seconds. */
export interface TimerOptions<C = never> extends HandlerOptions<C> {
  /** Seconds between runs. */
  interval: number;
  /** Run only when the object has not changed for this long. */
  idle?: number;
  /** Seconds to wait before the first run. */
  initialDelay?: number;
  /** Keep a fixed rhythm (every `interval` from the start) rather than `interval` after each run ends. */
  sharp?: boolean;
}

/** Options of `on.daemon`. Durations are in seconds. */
export interface DaemonOptions<C = never> extends HandlerOptions<C> {
  /** Seconds to wait before starting. */
  initialDelay?: number;
  /** Seconds a daemon has to stop after its signal is aborted before it is abandoned. Default 60. */
  cancellationTimeout?: number;
}

/** on.timer / on.daemon: per-object tasks that live while the object exists. */
export interface SpawningHandler extends HandlerBase {
  kind: 'timer' | 'daemon';
  options: TimerOptions<never> | DaemonOptions<never>;
}

/** on.index handlers: keep an in-memory index of the resource's objects. */
export interface IndexingHandler extends HandlerBase {
  kind: 'indexing';
}

/** A kind of children whose changes bring their owner back to `on.reconcile`. */
export interface OwnedResource {
  /** The children's resource, e.g. `'statefulsets.apps'`. */
  resource: ResourceSpec;
  /**
   * The labels that select the children server-side. Default: the label `adopt()` puts on
   * children, `kopf-ts.dev/owned-by: <owner kind>.<owner group>`.
   */
  labels?: Record<string, string>;
}

/** Options of `on.reconcile`. Durations are in seconds. */
export interface ReconcileOptions<C = never> extends Omit<HandlerOptions<C>, 'field' | 'optional'> {
  /** Kinds of children (by ownerReference) whose changes trigger the owner's reconciliation. */
  owns?: Array<ResourceSpec | OwnedResource>;
  /** Seconds between reconciliations of every object even without changes (a safety net). Default 300; 0 disables. */
  resync?: number;
}

/** on.reconcile handlers: level-based, on every change of the object or its children, and periodically. */
export interface ReconcilingHandler extends HandlerBase {
  kind: 'reconciling';
  options: ReconcileOptions<never>;
}

export type ResourceHandler =
  ChangingHandler | WatchingHandler | SpawningHandler | IndexingHandler | ReconcilingHandler;

/** A custom resource that the operator declares (and `kopf-ts generate` emits a CRD for). */
export interface ResourceDeclaration {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular?: string;
  shortNames?: string[];
  scope: 'Namespaced' | 'Cluster';
  /** The OpenAPI v3 schema of the whole object (or of `spec`/`status` via `schema.properties`). */
  schema?: Record<string, unknown>;
  /** Serve the status subresource. Default true. */
  statusSubresource?: boolean;
  /** kubectl columns. */
  printerColumns?: Array<{ name: string; type: string; jsonPath: string; description?: string }>;
}

/** What the operator needs on other resources (for RBAC generation), e.g. its children. */
export interface PermissionDeclaration {
  group: string;
  resource: string;
  verbs: string[];
}

/** Operator-level activities: not about any object. */
export type ActivityKind = 'startup' | 'cleanup' | 'login' | 'probe';

/** Options of activities. Durations are in seconds. */
export interface ActivityOptions {
  /** Defaults to the function's name. */
  id?: string;
  /** Attempts before the activity is considered failed. Default: unlimited for login/startup retries with backoff up to `timeout`. */
  retries?: number;
  /** Seconds since the first attempt after which the activity is considered failed. */
  timeout?: number;
  /** Seconds between retries after an error (default: 1 s doubling to 60 s). */
  backoff?: number;
  param?: unknown;
}

export interface ActivityHandler {
  kind: ActivityKind;
  id: string;
  fn: (context: never) => unknown;
  options: ActivityOptions;
  origin?: string;
}

/** An operation an admission webhook can be called for. */
export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** Options of admission handlers (`on.validate`, `on.mutate`). Durations are in seconds. */
export interface AdmissionOptions {
  /** Defaults to the function's name; names the webhook (`<id>.<plural>.<group>`). */
  id?: string;
  /** The operations to be called for. Default `['CREATE', 'UPDATE']`. */
  operations?: AdmissionOperation[];
  /** A subresource (e.g. `status`, `scale`) instead of the object itself. */
  subresource?: string;
  /** Only objects whose labels match (also sent to the apiserver as the webhook's `objectSelector` where possible). */
  labels?: Record<string, MetaFilter>;
  /** Only objects whose annotations match. */
  annotations?: Record<string, MetaFilter>;
  /** `None` (default) or `NoneOnDryRun`: whether the handler has side effects outside the object. */
  sideEffects?: 'None' | 'NoneOnDryRun';
  /** What the apiserver does when the webhook cannot be called: `Fail` (default, reject) or `Ignore` (admit). */
  failurePolicy?: 'Fail' | 'Ignore';
  /** Seconds the apiserver waits for the webhook (1–30; the apiserver's default is 10). */
  timeout?: number;
  /** An arbitrary value passed to the handler as `param`. */
  param?: unknown;
}

/** on.validate / on.mutate handlers, served as admission webhooks. */
export interface AdmissionHandler {
  kind: 'validating' | 'mutating';
  id: string;
  resource: ResourceSpec;
  fn: HandlerFn<never>;
  options: AdmissionOptions;
  origin?: string;
}

export interface Registry {
  handlers: ResourceHandler[];
  activities: ActivityHandler[];
  resources: ResourceDeclaration[];
  permissions: PermissionDeclaration[];
  /** Admission handlers (`on.validate`, `on.mutate`). */
  webhooks: AdmissionHandler[];
}

const KEY = Symbol.for('kopf-ts.registry');

/** The process-wide registry. */
export function registry(): Registry {
  const holder = globalThis as { [KEY]?: Registry };
  holder[KEY] ??= { handlers: [], activities: [], resources: [], permissions: [], webhooks: [] };
  holder[KEY].webhooks ??= []; // a registry made by an older copy of the package
  return holder[KEY];
}

/** Empties the registry (tests that register handlers per test). */
export function clearRegistry(): void {
  const r = registry();
  r.handlers.length = 0;
  r.activities.length = 0;
  r.resources.length = 0;
  r.permissions.length = 0;
  r.webhooks.length = 0;
}

/** Adds a handler; a duplicate id on the same resource is an error that names both. */
export function addHandler(handler: ResourceHandler): void {
  const r = registry();
  const key = JSON.stringify(handler.resource);
  const clash = r.handlers.find(
    (h) => h.kind === handler.kind && h.id === handler.id && JSON.stringify(h.resource) === key,
  );
  if (clash) {
    throw new Error(
      `A handler with id '${handler.id}' is already registered for ${key}${clash.origin ? ` at ${clash.origin}` : ''}. ` +
        `Give one of them another id: { id: '...' }.`,
    );
  }
  r.handlers.push(handler);
}

/** Adds an activity; a duplicate id of the same kind is an error. */
export function addActivity(activity: ActivityHandler): void {
  const r = registry();
  const clash = r.activities.find((a) => a.kind === activity.kind && a.id === activity.id);
  if (clash)
    throw new Error(
      `An on.${activity.kind} activity with id '${activity.id}' is already registered${clash.origin ? ` at ${clash.origin}` : ''}.`,
    );
  r.activities.push(activity);
}

/** Adds an admission handler; a duplicate id of the same kind on the same resource is an error. */
export function addWebhook(handler: AdmissionHandler): void {
  const r = registry();
  const key = JSON.stringify(handler.resource);
  const clash = r.webhooks.find(
    (h) => h.kind === handler.kind && h.id === handler.id && JSON.stringify(h.resource) === key,
  );
  if (clash) {
    throw new Error(
      `An admission handler with id '${handler.id}' is already registered for ${key}${clash.origin ? ` at ${clash.origin}` : ''}. ` +
        `Give one of them another id: { id: '...' }.`,
    );
  }
  r.webhooks.push(handler);
}
