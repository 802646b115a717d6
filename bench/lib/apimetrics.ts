/**
 * The apiserver's own request accounting (its /metrics endpoint): `apiserver_request_total`
 * by verb, subresource and code, and request body sizes, filtered by resource, as deltas
 * between two scrapes.
 */
import type { Api } from './kube.ts';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseSamples(text: string, names: string[]): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!names.some((n) => line.startsWith(n))) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || !names.includes(m[1]!)) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const NAMES = [
  'apiserver_request_total',
  'apiserver_request_body_size_bytes_sum',
  // Watchers the watch cache closed because they did not read fast enough.
  'apiserver_terminated_watchers_total',
];

export async function scrape(api: Api): Promise<Sample[]> {
  const { text } = await api.ok('GET', '/metrics');
  return parseSamples(text, NAMES);
}

export interface RequestCounts {
  /** `VERB` or `VERB/subresource` → requests. */
  byVerb: Record<string, number>;
  total: number;
  /** Request body bytes by (lower-case) verb. */
  bodyBytes: Record<string, number>;
}

/** The growth of one counter between two scrapes, for one resource. */
export function counterBetween(
  before: Sample[],
  after: Sample[],
  name: string,
  group: string,
  resource: string,
): number {
  const value = (samples: Sample[]) =>
    samples
      .filter((s) => s.name === name && s.labels.group === group && s.labels.resource === resource)
      .reduce((sum, s) => sum + s.value, 0);
  return value(after) - value(before);
}

/** What happened between two scrapes for one resource (group, plural). */
export function requestsBetween(
  before: Sample[],
  after: Sample[],
  group: string,
  resource: string,
): RequestCounts {
  const key = (s: Sample) => `${s.name} ${JSON.stringify(s.labels)}`;
  const old = new Map(before.map((s) => [key(s), s.value]));
  const byVerb: Record<string, number> = {};
  const bodyBytes: Record<string, number> = {};
  for (const s of after) {
    if (s.labels.group !== group || s.labels.resource !== resource) continue;
    if (s.name === 'apiserver_terminated_watchers_total') continue;
    const delta = s.value - (old.get(key(s)) ?? 0);
    if (!delta) continue;
    if (s.name === 'apiserver_request_total') {
      const verb = s.labels.subresource ? `${s.labels.verb}/${s.labels.subresource}` : s.labels.verb!;
      byVerb[verb] = (byVerb[verb] ?? 0) + delta;
    } else bodyBytes[s.labels.verb!] = (bodyBytes[s.labels.verb!] ?? 0) + delta;
  }
  return { byVerb, total: Object.values(byVerb).reduce((a, b) => a + b, 0), bodyBytes };
}
