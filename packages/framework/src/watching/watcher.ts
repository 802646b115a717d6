/**
 * A LIST+WATCH of one resource in one namespace (or cluster-wide) that never silently stops:
 * a small state machine in the manner of kube-rs's watcher.
 *
 *   listing ──(all pages delivered)──▶ watching(rv) ──(stream ends)──▶ watching(last rv)
 *      ▲                                   │
 *      └──(410 Gone: HTTP or ERROR event)──┘   errors/silence ─▶ backoff ─▶ watching(last rv)
 *
 * - Paginated LIST, then WATCH from the list's resourceVersion with bookmarks.
 * - 410 Gone (as an HTTP status or an ERROR event inside a 200 stream) means events were lost:
 *   relist, and emit what changed while away — creations, updates, and deletions of objects
 *   that vanished during the gap (synthetic DELETED events), by comparing with the versions
 *   seen so far.
 * - An inactivity timeout (default 90 s, at most 120 s) drops a stream that stays silent
 *   (no events, no bookmarks) and re-establishes it.
 * - Reconnects use jittered exponential backoff, reset after a healthy stream: never a tight loop.
 * - A resource that is not served any more (404: its CRD deleted) is said so once, retried with
 *   the same backoff, and watched again once it is back.
 * - Objects are emitted without `managedFields`.
 */
import { stripManagedFields, type KubeClient } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';
import { resourceName, resourcePath, type Resource } from '../kube/resources.ts';
import type { JsonObject } from '../util/json.ts';
import { parseJson, textOf } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import { sleep } from '../util/time.ts';

export type WatchEvent =
  | {
      type: 'ADDED' | 'MODIFIED' | 'DELETED';
      object: JsonObject;
      /** Inferred from a relist, not seen as an event. */ synthetic?: boolean;
    }
  | { type: 'SYNCED'; /** The first full list (false after a relist). */ initial: boolean };

export interface WatcherOptions {
  resource: Resource;
  /** A namespace, or undefined for cluster-wide (or a cluster-scoped resource). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Seconds of silence after which a watch stream is considered dead. Default 90, at most 120. */
  inactivityTimeout?: number;
  /** LIST page size. Default 500. */
  pageSize?: number;
  /** Reconnect backoff in seconds. Default 0.5 doubling to 30, with jitter. */
  backoff?: { initial: number; max: number };
  signal: AbortSignal;
  logger?: Logger;
  /** Told about every (re)connection and failure, e.g. for metrics and liveness. */
  onStatus?: (status: { state: 'listing' | 'watching' | 'backoff'; error?: Error }) => void;
}

interface Seen {
  uid: string;
  rv: string;
  namespace?: string;
  name: string;
}

type State = { kind: 'listing'; initial: boolean } | { kind: 'watching'; rv: string };

function metaOf(obj: JsonObject): { name: string; namespace?: string; uid: string; rv: string } {
  const m = (obj.metadata ?? {}) as JsonObject;
  return {
    name: textOf(m.name),
    namespace: textOf(m.namespace) || undefined,
    uid: textOf(m.uid),
    rv: textOf(m.resourceVersion),
  };
}

function keyOf(m: { namespace?: string; name: string }): string {
  return `${m.namespace ?? ''}/${m.name}`;
}

/** Watches a resource until the signal aborts; yields typed events (see module docs). */
export async function* watchObjects(client: KubeClient, options: WatcherOptions): AsyncGenerator<WatchEvent> {
  const { resource, namespace, signal } = options;
  const inactivity = Math.min(options.inactivityTimeout ?? 90, 120);
  const backoff = options.backoff ?? { initial: 0.5, max: 30 };
  const where = `${resourceName(resource)}${namespace ? ` in ${namespace}` : ' cluster-wide'}`;
  const seen = new Map<string, Seen>();
  let state: State = { kind: 'listing', initial: true };
  let failures = 0;
  /** The resource answered 404 (its CRD deleted?): said once, then quieter until it is back. */
  let unserved = false;

  const pause = async (error: Error) => {
    failures++;
    const base = Math.min(backoff.max, backoff.initial * 2 ** (failures - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    options.onStatus?.({ state: 'backoff', error });
    if (error instanceof ApiError && error.notFound) {
      if (unserved)
        options.logger?.debug(`Watching ${where}: still not served, retrying in ${delay.toFixed(1)}s.`);
      else
        options.logger?.warn(
          `Watching ${where} failed: the resource is not served by the apiserver (404 Not Found: was its CRD deleted?). ` +
            `Retrying in ${delay.toFixed(1)}s, then less and less often (at most every ${backoff.max}s) until it is back.`,
        );
      unserved = true;
    } else {
      options.logger?.warn(`Watching ${where} failed, retrying in ${delay.toFixed(1)}s: ${error.message}`);
    }
    await sleep(delay * 1000, signal);
  };
  const served = () => {
    if (!unserved) return;
    unserved = false;
    options.logger?.info(`The resource ${where} is served again; watching it.`);
  };

  while (!signal.aborted) {
    if (state.kind === 'listing') {
      options.onStatus?.({ state: 'listing' });
      let listed: { rv: string; items: JsonObject[] };
      try {
        listed = await listAll(client, options);
      } catch (error) {
        if (signal.aborted) return;
        await pause(error as Error);
        continue;
      }
      const present = new Set<string>();
      for (const item of listed.items) {
        const m = metaOf(item);
        const key = keyOf(m);
        present.add(key);
        const before = seen.get(key);
        if (before && before.uid !== m.uid)
          yield { type: 'DELETED', object: tombstone(before), synthetic: true };
        seen.set(key, { ...m });
        if (!before || before.uid !== m.uid) yield { type: 'ADDED', object: item, synthetic: !state.initial };
        else if (before.rv !== m.rv) yield { type: 'MODIFIED', object: item, synthetic: true };
      }
      for (const [key, before] of [...seen]) {
        if (present.has(key)) continue;
        seen.delete(key);
        yield { type: 'DELETED', object: tombstone(before), synthetic: true };
      }
      failures = 0;
      served();
      yield { type: 'SYNCED', initial: state.initial };
      options.logger?.debug(
        `Listed ${listed.items.length} objects of ${where} at resourceVersion ${listed.rv}.`,
      );
      state = { kind: 'watching', rv: listed.rv };
      continue;
    }

    // Watching from a known resourceVersion.
    options.onStatus?.({ state: 'watching' });
    const started = Date.now();
    let received = 0;
    try {
      const stream = await client.stream({
        method: 'GET',
        path: resourcePath(resource, { namespace }),
        query: {
          watch: 'true',
          resourceVersion: state.rv,
          allowWatchBookmarks: 'true',
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          // The server ends the stream after 5–10 minutes; we then resume from the last version.
          timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        },
        target: { verb: 'watch', resource: resourceName(resource), namespace },
        inactivityTimeout: inactivity,
        signal,
      });
      try {
        for await (const line of lines(stream.body)) {
          const event = parseJson(line) as { type?: string; object?: JsonObject };
          received++;
          const object = event.object ?? {};
          if (event.type === 'ERROR') {
            const code = Number(object.code ?? 0);
            const message = textOf(object.message) || 'an error event';
            throw new ApiError(
              { verb: 'watch', resource: resourceName(resource), namespace },
              code,
              textOf(object.reason),
              message,
            );
          }
          const m = metaOf(object);
          if (m.rv) state = { kind: 'watching', rv: m.rv };
          failures = 0; // any event or bookmark: the stream is healthy
          served();
          if (event.type === 'BOOKMARK') continue;
          if (event.type !== 'ADDED' && event.type !== 'MODIFIED' && event.type !== 'DELETED') continue;
          stripManagedFields(object);
          const key = keyOf(m);
          if (event.type === 'DELETED') seen.delete(key);
          else seen.set(key, { ...m });
          yield { type: event.type, object };
        }
      } finally {
        stream.close();
      }
      // A normal end (server-side timeout): resume at once, unless it keeps ending instantly.
      if (received === 0 && Date.now() - started < 1000)
        await pause(new Error('the watch stream ended at once'));
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.gone) {
        options.logger?.info(`The resourceVersion of ${where} is too old (410 Gone); relisting.`);
        state = { kind: 'listing', initial: false };
        // A 410 right after a relist, with nothing received in between: back off, no tight loop.
        if (received === 0 && Date.now() - started < 1000) await pause(error);
        continue;
      }
      await pause(error as Error);
    }
  }
}

/** A minimal body of an object that vanished while unwatched. */
function tombstone(seen: Seen): JsonObject {
  const metadata: JsonObject = { name: seen.name, uid: seen.uid, resourceVersion: seen.rv };
  if (seen.namespace) metadata.namespace = seen.namespace;
  return { metadata };
}

async function listAll(
  client: KubeClient,
  options: WatcherOptions,
): Promise<{ rv: string; items: JsonObject[] }> {
  const { resource, namespace } = options;
  const items: JsonObject[] = [];
  let cont: string | undefined;
  for (;;) {
    let page: JsonObject;
    try {
      page = await client.request<JsonObject>({
        method: 'GET',
        path: resourcePath(resource, { namespace }),
        query: {
          limit: options.pageSize ?? 500,
          continue: cont,
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
        },
        target: { verb: 'list', resource: resourceName(resource), namespace },
        signal: options.signal,
      });
    } catch (error) {
      // An expired continue token: start the list over.
      if (error instanceof ApiError && error.gone && cont) {
        items.length = 0;
        cont = undefined;
        continue;
      }
      throw error;
    }
    const kind = typeof page.kind === 'string' ? page.kind.replace(/List$/, '') : undefined;
    const apiVersion = page.apiVersion;
    for (const item of (page.items ?? []) as JsonObject[]) {
      // List items come without apiVersion/kind; handlers expect full bodies.
      if (kind && item.kind === undefined) item.kind = kind;
      if (apiVersion && item.apiVersion === undefined) item.apiVersion = apiVersion;
      items.push(item);
    }
    const metadata = (page.metadata ?? {}) as JsonObject;
    cont = textOf(metadata.continue) || undefined;
    if (!cont) return { rv: textOf(metadata.resourceVersion), items };
  }
}

/** Splits a byte stream into lines, decoding UTF-8 across chunk boundaries. */
async function* lines(body: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body) {
    rest += decoder.decode(chunk, { stream: true });
    let newline = rest.indexOf('\n');
    while (newline >= 0) {
      const line = rest.slice(0, newline);
      rest = rest.slice(newline + 1);
      if (line.trim()) yield line;
      newline = rest.indexOf('\n');
    }
  }
  rest += decoder.decode();
  if (rest.trim()) yield rest;
}
