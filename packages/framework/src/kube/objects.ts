/**
 * A small object API for handlers: get, list, create, apply (server-side apply), patch and
 * delete any object by its `apiVersion` and `kind`, resolved through discovery. Enough for
 * everyday operator work without reaching for a full generated client.
 */
import type { KubeClient } from './client.ts';
import { ApiError } from './errors.ts';
import { Discovery, resourceName, resourcePath, type Resource } from './resources.ts';
import type { JsonObject, JsonValue } from '../util/json.ts';

/** Any Kubernetes object body. */
export interface AnyObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export type PatchType = 'merge' | 'json' | 'strategic';

const PATCH_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

/** The implementation of the handlers' `api` (the contract is `ObjectApi` in registry/context.ts). */
export class Objects {
  private readonly resolved = new Map<string, Promise<Resource>>();
  private readonly discovery: Discovery;

  constructor(
    private readonly client: KubeClient,
    private readonly fieldManager = 'kopf-ts',
  ) {
    this.discovery = new Discovery(client);
  }

  private resource(apiVersion: string, kind: string): Promise<Resource> {
    const key = `${apiVersion}/${kind}`;
    let found = this.resolved.get(key);
    if (!found) {
      const [group, version] = apiVersion.includes('/')
        ? (apiVersion.split('/') as [string, string])
        : ['', apiVersion];
      found = this.discovery.resolve({ group, version, plural: kind }).then((list) => {
        const match = list.find((r) => r.kind === kind) ?? list[0];
        if (!match) throw new Error(`The cluster does not serve kind '${kind}' in '${apiVersion}'.`);
        return match;
      });
      found.catch(() => this.resolved.delete(key));
      this.resolved.set(key, found);
    }
    return found;
  }

  async get<T extends AnyObject = AnyObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    const r = await this.resource(apiVersion, kind);
    try {
      return await this.client.request<T & JsonObject>({
        method: 'GET',
        path: resourcePath(r, { namespace, name }),
        target: { verb: 'get', resource: resourceName(r), namespace, name },
      });
    } catch (error) {
      if (error instanceof ApiError && error.notFound) return undefined;
      throw error;
    }
  }

  async list<T extends AnyObject = AnyObject>(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {},
  ): Promise<T[]> {
    const r = await this.resource(apiVersion, kind);
    const list = await this.client.request<JsonObject>({
      method: 'GET',
      path: resourcePath(r, { namespace: options.namespace }),
      query: { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector },
      target: { verb: 'list', resource: resourceName(r), namespace: options.namespace },
    });
    return ((list.items ?? []) as JsonObject[]).map(
      (item) => ({ apiVersion, kind, ...item }) as unknown as T,
    );
  }

  async create<T extends AnyObject>(body: T): Promise<T> {
    const r = await this.resource(body.apiVersion, body.kind);
    const namespace = body.metadata.namespace;
    return (await this.client.request<JsonObject>({
      method: 'POST',
      path: resourcePath(r, { namespace }),
      body: body as unknown as JsonObject,
      target: { verb: 'create', resource: resourceName(r), namespace, name: body.metadata.name },
    })) as unknown as T;
  }

  async apply<T extends AnyObject>(
    body: T,
    options: { force?: boolean; fieldManager?: string; subresource?: string } = {},
  ): Promise<T> {
    const r = await this.resource(body.apiVersion, body.kind);
    const { namespace, name } = body.metadata;
    if (!name) throw new Error(`apply() needs metadata.name (${body.kind}).`);
    return (await this.client.request<JsonObject>({
      method: 'PATCH',
      path: resourcePath(r, { namespace, name, subresource: options.subresource }),
      query: { fieldManager: options.fieldManager ?? this.fieldManager, force: options.force ?? true },
      body: body as unknown as JsonObject,
      contentType: 'application/apply-patch+yaml',
      target: { verb: 'apply', resource: resourceName(r), namespace, name },
    })) as unknown as T;
  }

  async patch<T extends AnyObject = AnyObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    options: { type?: PatchType; subresource?: string } = {},
  ): Promise<T | undefined> {
    const r = await this.resource(apiVersion, kind);
    try {
      return (await this.client.request<JsonObject>({
        method: 'PATCH',
        path: resourcePath(r, { namespace, name, subresource: options.subresource }),
        body: patch as JsonValue,
        contentType: PATCH_TYPES[options.type ?? 'merge'],
        target: {
          verb: options.subresource ? `patch ${options.subresource} of` : 'patch',
          resource: resourceName(r),
          namespace,
          name,
        },
      })) as unknown as T;
    } catch (error) {
      if (error instanceof ApiError && error.notFound) return undefined;
      throw error;
    }
  }

  async delete(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
    options: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' } = {},
  ): Promise<boolean> {
    const r = await this.resource(apiVersion, kind);
    try {
      await this.client.request({
        method: 'DELETE',
        path: resourcePath(r, { namespace, name }),
        body: options.propagationPolicy
          ? { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: options.propagationPolicy }
          : undefined,
        target: { verb: 'delete', resource: resourceName(r), namespace, name },
      });
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.notFound) return false;
      throw error;
    }
  }
}
