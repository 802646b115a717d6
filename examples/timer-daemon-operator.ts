/**
 * Timers and daemons: a `Probe` (`probes.example.kopf-ts.dev`) names a URL. A daemon per
 * probe fetches it every `spec.period` seconds for as long as the probe exists, and keeps the
 * last answer in memory; a timer publishes a summary to the status once the probe has been
 * left unchanged for a while. Deleting a probe aborts its daemon (the `signal`), and the
 * deletion waits for it to stop.
 *
 *   kopf-ts generate examples/timer-daemon-operator.ts | kubectl apply -f -
 *   kopf-ts run examples/timer-daemon-operator.ts -n default
 *   kubectl apply -f - <<< '{"apiVersion": "example.kopf-ts.dev/v1", "kind": "Probe",
 *     "metadata": {"name": "local"}, "spec": {"url": "http://127.0.0.1:8080/healthz", "period": 5}}'
 */
import { defineResource, on, type SpawningContext } from 'kopf-ts';

export interface ProbeSpec {
  url: string;
  period?: number;
}

interface Answer {
  ok: boolean;
  detail: string;
  at: string;
}

export const Probe = defineResource<ProbeSpec>({
  group: 'example.kopf-ts.dev',
  version: 'v1',
  kind: 'Probe',
  plural: 'probes',
  scope: 'Namespaced',
});

/** Polls the URL until the probe is deleted (or the operator stops or pauses). */
on.daemon(
  Probe,
  async function poll({ spec, memo, signal, logger }: SpawningContext<ProbeSpec>) {
    while (!signal.aborted) {
      let answer: Answer;
      try {
        const response = await fetch(spec.url, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
        });
        answer = { ok: response.ok, detail: `HTTP ${response.status}`, at: new Date().toISOString() };
      } catch (error) {
        if (signal.aborted) break;
        answer = { ok: false, detail: (error as Error).message, at: new Date().toISOString() };
      }
      memo.last = answer;
      logger.debug(`${spec.url}: ${answer.detail}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, (spec.period ?? 30) * 1000);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve(undefined)), { once: true });
      });
    }
    const why: unknown = signal.reason;
    logger.info(`Stopped polling: ${why instanceof Error ? why.message : String(why)}`);
  },
  { cancellationTimeout: 10 },
);

/** Every 30 s, once the probe has not changed for 10 s: the last answer, into status.report. */
on.timer(
  Probe,
  function report({ memo }: SpawningContext<ProbeSpec>) {
    return memo.last ?? { ok: false, detail: 'no answer yet', at: '' };
  },
  { interval: 30, idle: 10 },
);
