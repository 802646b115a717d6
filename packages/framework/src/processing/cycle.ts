/**
 * One processing cycle of one object, after Kopf's `process_resource_event`: run the event
 * handlers, detect the cause (creation, update, deletion, resume, or nothing), keep the
 * finalizer right, run the next ready handler of the cause, record its progress and result,
 * and send everything as one patch. Returns the patched resourceVersion (the queue waits for
 * the watch to deliver it before the next cycle) and when to come back for delayed handlers.
 */
import type { KubeClient } from '../kube/client.ts';
import type { Resource } from '../kube/resources.ts';
import type {
  EventContext,
  HandlerContext,
  Indexes,
  KubeObject,
  Memo,
  ObjectApi,
  ObjectContext,
} from '../registry/context.ts';
import type {
  ChangingHandler,
  IndexingHandler,
  Reason,
  ReconcilingHandler,
  SpawningHandler,
  WatchingHandler,
} from '../registry/registry.ts';
import { buildEssence, clearEssence } from '../state/diffbase.ts';
import type { KeyConvention } from '../state/keys.ts';
import type { Patch } from '../state/patch.ts';
import { fetchProgress, purgeProgress, storeProgress } from '../state/progress.ts';
import { parseTime } from '../state/time.ts';
import { cloneJson, textOf, type JsonObject, type JsonValue } from '../util/json.ts';
import { objectLogger, type Logger } from '../util/logging.ts';
import { diff, jsonEqual, resolveField } from './diff.ts';
import type { EventPoster } from './events.ts';
import { filtersMatch, invoke } from './invocation.ts';
import { applyPatch, setFinalizer } from './patching.ts';
import { loadDiffBase, saveDiffBase } from './oversized.ts';
import { HandlerState } from './progression.ts';
import { reconcile, type Streak } from './reconciling.ts';
import { deliverResult } from './results.ts';
import type { Spawner } from './spawning.ts';

export interface ProcessingSettings {
  convention: KeyConvention;
  finalizer: string;
}

/** The handlers of one resolved resource. */
export interface ResourceHandlers {
  resource: Resource;
  changing: ChangingHandler[];
  watching: WatchingHandler[];
  spawning: SpawningHandler[];
  indexing: IndexingHandler[];
  reconciling: ReconcilingHandler[];
  /** Runs the timers and daemons of this resource's objects (when it has any). */
  spawner?: Spawner;
}

/** What the operator remembers about an object between cycles (in memory only). */
export interface ObjectMemory {
  memo: Memo;
  /** Seen in the initial listing (so resume handlers apply), not created while watching. */
  noticedByListing: boolean;
  /** A cycle has fully handled it once in this process. */
  fullyHandledOnce: boolean;
  /** Reconcile handlers failing on it, by id. */
  streaks?: Map<string, Streak>;
  /** The resourceVersion it had after its reconcile handlers last all succeeded (and our patch). */
  reconciledVersion?: string;
  /**
   * Our finalizer was removed while it was being deleted: it is going away. Events that still
   * show the finalizer are older than that (the apiserver answers that removal with the version
   * before it, and the watch may still bring it), so its deletion handlers must not run again.
   */
  released?: boolean;
}

export interface ObjectEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: JsonObject;
  /** Not from the watch: brought back by a child's change or a resync (reconcile handlers run). */
  requeued?: boolean;
}

export interface CycleEnvironment {
  client: KubeClient;
  /** The object API handlers get as `api`. */
  api: ObjectApi;
  /** The operator's indexes. */
  indexes: Indexes;
  settings: ProcessingSettings;
  logger: Logger;
  events: EventPoster;
  /** Told about each handler invocation (metrics, tests). */
  onHandler?: (info: {
    id: string;
    reason: Reason | 'reconcile';
    outcome: 'success' | 'temporary' | 'permanent';
    seconds: number;
  }) => void;
}

export interface CycleResult {
  /** The resourceVersion our patch produced, if we patched. */
  version?: string;
  /** Seconds until delayed handlers are due, if any are. */
  delay?: number;
}

type Cause = 'create' | 'update' | 'delete' | 'resume' | 'noop' | 'free' | 'gone';

const TITLES: Record<Reason, string> = {
  create: 'creation',
  update: 'update',
  delete: 'deletion',
  resume: 'resuming',
};

function stringMap(value: JsonValue | undefined): Record<string, string> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  return value as Record<string, string>;
}

export function objectContext(
  resource: Resource,
  body: JsonObject,
  patch: Patch,
  memo: Memo,
  logger: Logger,
  api: ObjectApi,
  indexes: Indexes,
): ObjectContext {
  const meta = (body.metadata ?? {}) as JsonObject;
  return {
    body: body as unknown as KubeObject,
    spec: (body.spec ?? {}) as JsonObject,
    meta: meta as unknown as KubeObject['metadata'],
    status: (body.status ?? {}) as JsonObject,
    name: textOf(meta.name),
    namespace: typeof meta.namespace === 'string' ? meta.namespace : undefined,
    uid: textOf(meta.uid),
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
    logger,
    patch,
    memo,
    api,
    resource: {
      group: resource.group,
      version: resource.version,
      plural: resource.plural,
      kind: resource.kind,
      namespaced: resource.namespaced,
    },
    param: undefined,
    indexes,
  };
}

/** Paths outside the default essence that field handlers watch (e.g. `status.phase`). */
function extraFields(handlers: ChangingHandler[]): string[][] {
  return handlers
    .map((h) => h.options.field?.split('.'))
    .filter(
      (p): p is string[] =>
        !!p && (p[0] === 'status' || (p[0] === 'metadata' && p[1] !== 'labels' && p[1] !== 'annotations')),
    );
}

/** Processes one (the newest) event of an object. */
export async function processEvent(
  env: CycleEnvironment,
  rh: ResourceHandlers,
  event: ObjectEvent,
  memory: ObjectMemory,
): Promise<CycleResult> {
  const body = event.object;
  const meta = (body.metadata ?? {}) as JsonObject;
  const logger = objectLogger(
    env.logger,
    typeof meta.namespace === 'string' ? meta.namespace : undefined,
    textOf(meta.name),
  );
  const patch: Patch = {};
  const base = objectContext(rh.resource, body, patch, memory.memo, logger, env.api, env.indexes);

  for (const handler of rh.watching) {
    if (!filtersMatch(handler, base)) continue;
    const context: EventContext = { ...base, type: event.type, param: handler.options.param };
    try {
      await (handler.fn as (c: EventContext) => unknown)(context);
    } catch (error) {
      logger.error(
        { err: error },
        `Handler '${handler.id}' failed with an exception: ${(error as Error).message}`,
      );
    }
  }
  const deleting = meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null;
  // Reconcile handlers see every state of a live object; their results join the cycle's patch.
  // The state our own patch after them produced needs no reconciliation again (a result that
  // changes on every call would otherwise loop), unless a child or a resync brings it back.
  const version = textOf(meta.resourceVersion);
  let reconciled = false;
  const reconcileNow = async (): Promise<number | undefined> => {
    if (!rh.reconciling.length || (!event.requeued && memory.reconciledVersion === version)) return undefined;
    memory.reconciledVersion = undefined;
    const streaks = (memory.streaks ??= new Map<string, Streak>());
    const outcome = await reconcile(env, rh.resource, rh.reconciling, base, body, streaks, patch);
    reconciled = outcome.succeeded;
    return outcome.delay;
  };
  const patchAfterReconciling = async (): Promise<string | undefined> => {
    const patched = await applyPatchOf(env, rh, base, patch);
    if (reconciled) memory.reconciledVersion = patched ?? version;
    return patched;
  };
  if (!rh.changing.length && !rh.spawner) {
    // Event and reconcile handlers may write to the object too.
    if (event.type === 'DELETED') return {};
    const delay = deleting ? undefined : await reconcileNow();
    return { version: await patchAfterReconciling(), delay };
  }

  const { convention, finalizer } = env.settings;
  const newEssence = clearEssence(buildEssence(body, convention, extraFields(rh.changing)), convention);
  // From the annotation, or for oversized objects from the status or only a digest (docs/state.md).
  const { stored, oldEssence } = loadDiffBase(env, rh.resource, body, newEssence, logger);
  const changes = diff(oldEssence, newEssence);
  const finalizers = Array.isArray(meta.finalizers) ? (meta.finalizers as string[]) : [];
  const blocked = finalizers.includes(finalizer);
  const initial = memory.noticedByListing && !memory.fullyHandledOnce;

  let cause: Cause;
  if (event.type === 'DELETED') cause = 'gone';
  else if (deleting && (!blocked || memory.released)) cause = 'free';
  else if (deleting) cause = 'delete';
  else if (!stored) cause = 'create';
  else if (!changes.length && initial) cause = 'resume';
  else if (!changes.length) cause = 'noop';
  else cause = 'update';
  // Timers and daemons live while the object does; deletion waits for them to stop.
  const uid = textOf(meta.uid);
  if (deleting || event.type === 'DELETED') await rh.spawner?.stop(uid, 'the object is being deleted');
  else rh.spawner?.update(uid, body, changes.length > 0, memory.memo, logger);

  if (cause === 'gone' || cause === 'free') {
    logger.debug(
      cause === 'gone'
        ? 'Deleted, really deleted, and we are notified.'
        : 'Deletion, but we are done with it, and we do not care.',
    );
    return {};
  }

  // The finalizer: needed while any non-optional deletion handler applies to this object.
  const mustBlock =
    rh.changing.some((h) => h.reasons.includes('delete') && !h.options.optional && filtersMatch(h, base)) ||
    (rh.spawner?.requiresFinalizer(base) ?? false);
  if (mustBlock && !blocked && !deleting) {
    logger.debug('Adding the finalizer, thus preventing the actual deletion.');
    return { version: await setFinalizer(env.client, rh.resource, body, finalizer, true) };
  }
  if (!mustBlock && blocked) {
    logger.debug('Removing the finalizer, as there are no handlers requiring it.');
    return { version: await setFinalizer(env.client, rh.resource, body, finalizer, false) };
  }
  if (cause === 'noop') {
    if (!rh.reconciling.length)
      logger.debug('Something has changed, but we are not interested (the essence is the same).');
    const delay = await reconcileNow();
    return { version: await patchAfterReconciling(), delay };
  }
  const reason: Reason = cause;

  // Handlers of this cause (resume handlers also join an update noticed on start-up, as in Kopf).
  const now = new Date();
  const relevant = rh.changing.filter((h) => {
    const reasons =
      h.reasons.includes(reason) || (reason === 'update' && initial && h.reasons.includes('resume'));
    if (!reasons || !filtersMatch(h, base)) return false;
    const field = h.options.field?.split('.');
    if (!field) return true;
    const oldValue = resolveField(oldEssence, field);
    const newValue = resolveField(newEssence, field);
    if (reason === 'update') return !jsonEqual(oldValue, newValue);
    if (reason === 'delete') return true;
    return newValue !== undefined && newValue !== null;
  });

  let done = true;
  let delay: number | undefined;
  if (relevant.length) {
    const states = new Map<string, HandlerState>();
    for (const h of relevant) {
      const record = fetchProgress(body, h.id, convention);
      const loaded = record ? HandlerState.fromStorage(record, now) : undefined;
      // A record left by another cause (e.g. an update superseded by deletion) starts over.
      if (loaded && loaded.purpose && loaded.purpose !== reason) {
        logger.info(
          `${capitalize(TITLES[loaded.purpose as Reason] ?? loaded.purpose)} is superseded by ${TITLES[reason]}.`,
        );
      }
      states.set(
        h.id,
        loaded && (!loaded.purpose || loaded.purpose === reason)
          ? loaded.withPurpose(reason)
          : HandlerState.fromScratch(reason, now),
      );
    }
    // One handler per cycle: the ready one with the fewest retries, in registration order.
    const ready = relevant.filter(
      (h) => !states.get(h.id)!.finished && states.get(h.id)!.delayFrom(now) === 0,
    );
    const next = ready.sort((a, b) => states.get(a.id)!.retries - states.get(b.id)!.retries)[0];
    if (next) {
      const state = states.get(next.id)!;
      const started = new Date(Date.now());
      const field = next.options.field?.split('.');
      const oldValue = field ? resolveField(oldEssence, field) : oldEssence;
      const newValue = field ? resolveField(newEssence, field) : newEssence;
      const context: HandlerContext = {
        ...base,
        param: next.options.param,
        reason,
        retry: state.retries,
        started: parseTime(state.started) ?? now,
        runtime: state.runtimeAt(now),
        old: oldValue === undefined ? undefined : cloneJson(oldValue),
        new: newValue === undefined ? undefined : cloneJson(newValue),
        diff: diff(oldValue, newValue),
      };
      const outcome = await invoke(next, context);
      const seconds = (Date.now() - started.getTime()) / 1000;
      states.set(next.id, state.withOutcome(outcome, new Date()));
      if (outcome.final && !outcome.error) {
        logger.info(`Handler '${next.id}' succeeded.`);
        env.events.post(rh.resource, body, 'Normal', 'Logging', `Handler '${next.id}' succeeded.`);
        env.onHandler?.({ id: next.id, reason, outcome: 'success', seconds });
        deliverResult(patch, next.id, outcome.result);
      } else if (outcome.final) {
        logger.error(`Handler '${next.id}' failed permanently: ${outcome.error!.message}`);
        env.events.post(
          rh.resource,
          body,
          'Warning',
          'Error',
          `Handler '${next.id}' failed permanently: ${outcome.error!.message}`,
        );
        env.onHandler?.({ id: next.id, reason, outcome: 'permanent', seconds });
      } else {
        const kind =
          outcome.error?.name === 'TemporaryError'
            ? 'failed temporarily'
            : 'failed with an exception. Will retry';
        logger.warn({ err: outcome.error }, `Handler '${next.id}' ${kind}: ${outcome.error?.message ?? ''}`);
        env.events.post(
          rh.resource,
          body,
          'Warning',
          'Error',
          `Handler '${next.id}' ${kind}: ${outcome.error?.message ?? ''}`,
        );
        env.onHandler?.({ id: next.id, reason, outcome: 'temporary', seconds });
      }
    }
    for (const [id, state] of states)
      if (state.changed) storeProgress(body, patch, id, state.forStorage(), convention);
    done = [...states.values()].every((s) => s.finished);
    if (done) {
      const all = [...states.values()];
      const failed = all.filter((s) => s.failure).length;
      logger.info(
        `${capitalize(TITLES[reason])} is processed: ${all.length - failed} succeeded; ${failed} failed.`,
      );
      // Purge all our records, as Kopf does: the next cause starts afresh. (Failures stay
      // visible in the records while other handlers are pending, and in Events and logs.)
      for (const h of rh.changing) purgeProgress(body, patch, h.id, convention);
    } else {
      const pending = [...states.values()].filter((s) => !s.finished).map((s) => s.delayFrom(new Date()));
      delay = Math.min(...pending);
    }
  }

  if (done && reason !== 'delete' && !jsonEqual(oldEssence, newEssence))
    saveDiffBase(env, rh.resource, body, patch, newEssence, logger);
  if (done) memory.fullyHandledOnce = true;
  if (done && reason !== 'delete') {
    const retry = await reconcileNow();
    if (retry !== undefined) delay = Math.min(delay ?? Infinity, retry);
  }

  let patched = await patchAfterReconciling();
  if (done && reason === 'delete') {
    // All deletion handlers are done: let the object go (the patch tests the list, not the version).
    const released = await setFinalizer(env.client, rh.resource, body, finalizer, false);
    if (released !== undefined) memory.released = true;
    patched = released ?? patched;
  }
  return { version: patched, delay };
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Sends the cycle's patch, if there is anything in it; returns the new resourceVersion. */
function applyPatchOf(
  env: CycleEnvironment,
  rh: ResourceHandlers,
  base: ObjectContext,
  patch: Patch,
): Promise<string | undefined> {
  if (!Object.keys(patch).length) return Promise.resolve(undefined);
  return applyPatch(env.client, rh.resource, { namespace: base.namespace, name: base.name }, patch);
}
