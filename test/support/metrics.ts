/**
 * Reading an operator's Prometheus endpoint (`metrics` option, `--metrics`) in tests.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of an exposition text. */
export function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `where`. */
export function total(text: string, name: string, where: Record<string, string> = {}): number {
  return samples(text)
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** `kopf_api_requests_total` by code (and `all`), e.g. `{ '200': 310, '429': 57, all: 367 }`. */
export function requestsByCode(text: string): Record<string, number> {
  const codes: Record<string, number> = { all: 0 };
  for (const s of samples(text)) {
    if (s.name !== 'kopf_api_requests_total') continue;
    codes[s.labels.code!] = (codes[s.labels.code!] ?? 0) + s.value;
    codes.all! += s.value;
  }
  return codes;
}

export async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics: HTTP ${response.status}`);
  return response.text();
}
