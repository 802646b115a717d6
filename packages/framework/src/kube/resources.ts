/**
 * Resources: how handlers name them (`'psqls.test.com'`, `'psqls.v1.test.com'`, `'psqls'`,
 * `{ group, version, plural }`), how the apiserver's discovery resolves them, and their URLs.
 */
import type { KubeClient } from './client.ts';
import type { JsonObject } from '../util/json.ts';

/** A resource as handlers name it; fields left out are resolved by discovery. */
export interface ResourceSelector {
  group?: string;
  version?: string;
  /** Plural name, kind, singular name or a short name. */
  plural: string;
}

/** A resolved resource. */
export interface Resource {
  /** `''` for the core API group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Subresources served, e.g. `status`. */
  subresources: string[];
  verbs: string[];
}

const VERSION = /^v\d+(?:(?:alpha|beta)\d+)?$/;

/** Parses `'psqls.test.com'`, `'psqls.v1.test.com'`, `'psqls'`, or takes an object as is. */
export function parseSelector(spec: string | ResourceSelector): ResourceSelector {
  if (typeof spec !== 'string') return spec;
  const [plural = '', maybeVersion, ...rest] = spec.split('.');
  if (!plural) throw new Error(`an empty resource name: '${spec}'`);
  if (maybeVersion === undefined) return { plural };
  if (VERSION.test(maybeVersion)) return { plural, version: maybeVersion, group: rest.join('.') };
  return { plural, group: [maybeVersion, ...rest].join('.') };
}

/** `psqls.v1.test.com`, `pods.v1`: Kopf's way to name a resource in logs. */
export function resourceName(r: Pick<Resource, 'group' | 'version' | 'plural'>): string {
  return `${r.plural}.${r.version}${r.group ? `.${r.group}` : ''}`;
}

/** `test.com/v1` or `v1`. */
export function apiVersionOf(r: Pick<Resource, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The URL path of a collection or an object, optionally of a subresource. */
export function resourcePath(
  r: Pick<Resource, 'group' | 'version' | 'plural' | 'namespaced'>,
  where: { namespace?: string; name?: string; subresource?: string } = {},
): string {
  let path = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (r.namespaced && where.namespace) path += `/namespaces/${encodeURIComponent(where.namespace)}`;
  path += `/${r.plural}`;
  if (where.name) path += `/${encodeURIComponent(where.name)}`;
  if (where.subresource) path += `/${where.subresource}`;
  return path;
}

interface ApiResourceList {
  groupVersion: string;
  resources: Array<{
    name: string;
    singularName?: string;
    kind: string;
    namespaced: boolean;
    verbs: string[];
    shortNames?: string[];
  }>;
}

function matches(selector: ResourceSelector, r: ApiResourceList['resources'][number]): boolean {
  const name = selector.plural.toLowerCase();
  return (
    r.name === name ||
    r.singularName === name ||
    r.kind.toLowerCase() === name ||
    (r.shortNames ?? []).includes(name)
  );
}

/** Resolves selectors through the apiserver's discovery; caches per group-version. */
export class Discovery {
  private readonly lists = new Map<string, Promise<ApiResourceList | undefined>>();

  constructor(private readonly client: KubeClient) {}

  /** Forgets what was discovered (e.g. after a CRD was created). */
  reset(): void {
    this.lists.clear();
  }

  /** All resources matching the selector (none if it is not served). */
  async resolve(spec: string | ResourceSelector): Promise<Resource[]> {
    const selector = parseSelector(spec);
    const groupVersions = await this.groupVersions(selector);
    const found: Resource[] = [];
    for (const gv of groupVersions) {
      const list = await this.resourceList(gv);
      if (!list) continue;
      const [group, version] = gv.includes('/') ? (gv.split('/') as [string, string]) : ['', gv];
      const all = list.resources;
      for (const r of all) {
        if (r.name.includes('/') || !matches(selector, r)) continue;
        const subresources = all
          .filter((s) => s.name.startsWith(`${r.name}/`))
          .map((s) => s.name.slice(r.name.length + 1));
        found.push({
          group,
          version,
          plural: r.name,
          kind: r.kind,
          namespaced: r.namespaced,
          subresources,
          verbs: r.verbs,
        });
      }
    }
    return found;
  }

  /** Exactly one resource for the selector, or an error saying why not. */
  async resolveOne(spec: string | ResourceSelector): Promise<Resource | undefined> {
    const found = await this.resolve(spec);
    if (found.length > 1) {
      const names = found.map(resourceName).join(', ');
      throw new Error(
        `'${typeof spec === 'string' ? spec : resourceName({ group: '', version: '', ...spec })}' is ambiguous: ${names}. Name the group (and version).`,
      );
    }
    return found[0];
  }

  private async groupVersions(selector: ResourceSelector): Promise<string[]> {
    if (selector.group !== undefined && selector.version)
      return [selector.group ? `${selector.group}/${selector.version}` : selector.version];
    const groups = await this.client.request<JsonObject>({
      method: 'GET',
      path: '/apis',
      target: { verb: 'discover', resource: 'api groups' },
    });
    const result: string[] = selector.group === undefined || selector.group === '' ? ['v1'] : [];
    for (const g of (groups.groups ?? []) as Array<{
      name: string;
      preferredVersion: { groupVersion: string };
      versions: Array<{ groupVersion: string; version: string }>;
    }>) {
      if (selector.group !== undefined && g.name !== selector.group) continue;
      if (selector.version) {
        const v = g.versions.find((x) => x.version === selector.version);
        if (v) result.push(v.groupVersion);
      } else {
        result.push(g.preferredVersion.groupVersion);
      }
    }
    return result;
  }

  private resourceList(groupVersion: string): Promise<ApiResourceList | undefined> {
    let list = this.lists.get(groupVersion);
    if (!list) {
      const path = groupVersion.includes('/') ? `/apis/${groupVersion}` : `/api/${groupVersion}`;
      list = this.client
        .request<JsonObject>({ method: 'GET', path, target: { verb: 'discover', resource: groupVersion } })
        .then((r) => r as unknown as ApiResourceList)
        .catch((error: unknown) => {
          this.lists.delete(groupVersion);
          if ((error as { notFound?: boolean }).notFound) return undefined;
          throw error;
        });
      this.lists.set(groupVersion, list);
    }
    return list;
  }
}
