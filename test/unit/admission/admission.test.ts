/**
 * Admission without a cluster: certificates, merge → JSON patches, one review, the webhook
 * configurations, the HTTPS server on loopback, registration and `kopf-ts generate`'s output.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, test } from 'node:test';
import fc from 'fast-check';
import { selfSignedCertificates } from '../../../packages/framework/src/admission/certificates.ts';
import { mergePatchToJsonPatch, type JsonPatchOp } from '../../../packages/framework/src/admission/patch.ts';
import { review, type AdmissionRequest } from '../../../packages/framework/src/admission/review.ts';
import { WebhookServer } from '../../../packages/framework/src/admission/server.ts';
import {
  webhookConfigurations,
  webhookName,
  webhookPath,
} from '../../../packages/framework/src/admission/webhooks.ts';
import { AdmissionError, on, PRESENT } from '../../../packages/framework/src/index.ts';
import type { AdmissionContext, MutationContext } from '../../../packages/framework/src/index.ts';
import { generateManifests } from '../../../packages/framework/src/manifests/generate.ts';
import { commentOf } from '../../../packages/framework/src/manifests/webhooks.ts';
import {
  clearRegistry,
  registry,
  type AdmissionHandler,
} from '../../../packages/framework/src/registry/registry.ts';
import { silentLogger } from '../../../packages/framework/src/util/logging.ts';

beforeEach(() => clearRegistry());

const R = 'kopftests.kopf-ts.dev';

function handler(
  kind: AdmissionHandler['kind'],
  fn: (c: MutationContext) => unknown,
  options: AdmissionHandler['options'] = {},
): AdmissionHandler {
  return { kind, id: 'check_fn', resource: R, fn, options };
}

function requestFor(object: Record<string, unknown> | null, extra: Partial<AdmissionRequest> = {}) {
  return {
    uid: 'req-1',
    operation: 'CREATE',
    namespace: 'ns',
    name: 'one',
    resource: { group: 'kopf-ts.dev', version: 'v1', resource: 'kopftests' },
    kind: { group: 'kopf-ts.dev', version: 'v1', kind: 'KopfTest' },
    userInfo: { username: 'alice' },
    object: object as AdmissionRequest['object'],
    ...extra,
  } satisfies AdmissionRequest;
}

const obj = (spec: Record<string, unknown>, labels: Record<string, string> = {}) => ({
  apiVersion: 'kopf-ts.dev/v1',
  kind: 'KopfTest',
  metadata: { name: 'one', namespace: 'ns', labels },
  spec,
});

test('the self-signed CA signs a serving certificate for the hosts; node:crypto verifies the chain', () => {
  const certs = selfSignedCertificates(['127.0.0.1', 'localhost', '::1']);
  const ca = new X509Certificate(certs.ca);
  const leaf = new X509Certificate(certs.cert);
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.ok(ca.verify(ca.publicKey));
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(leaf.checkIssued(ca));
  assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(leaf.checkIP('::1'), '::1');
  assert.equal(leaf.checkHost('localhost'), 'localhost');
  assert.equal(leaf.checkHost('example.com'), undefined);
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.ok(new Date(leaf.validTo).getTime() > Date.now() + 300 * 86400_000);
});

function applyJsonPatch(target: unknown, ops: JsonPatchOp[]): unknown {
  const root = structuredClone(target) as Record<string, unknown>;
  for (const op of ops) {
    const keys = op.path
      .split('/')
      .slice(1)
      .map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop()!;
    let parent = root;
    for (const k of keys) parent = parent[k] as Record<string, unknown>;
    const has = Object.prototype.hasOwnProperty.call(parent, last);
    if (op.op === 'remove') {
      assert.ok(has, `remove of a missing ${op.path}`);
      delete parent[last];
    } else {
      assert.equal(has, op.op === 'replace', `${op.op} ${op.path}`);
      parent[last] = op.value;
    }
  }
  return root;
}

/** RFC 7386. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = applyMergePatch(result[k], v);
  }
  return result;
}

test('a merge patch becomes the JSON patch that does the same (examples)', () => {
  const target = { metadata: { labels: { 'a/b': '1', keep: 'x' } }, spec: { size: 1, list: [1, 2] } };
  const ops = mergePatchToJsonPatch(target, {
    metadata: { labels: { 'a/b': null, new: 'y' } },
    spec: { size: 2, list: [3], extra: { deep: { x: 1, gone: null } } },
    status: null,
  });
  assert.deepEqual(ops, [
    { op: 'remove', path: '/metadata/labels/a~1b' },
    { op: 'add', path: '/metadata/labels/new', value: 'y' },
    { op: 'replace', path: '/spec/size', value: 2 },
    { op: 'replace', path: '/spec/list', value: [3] },
    { op: 'add', path: '/spec/extra', value: { deep: { x: 1 } } },
  ]);
});

test('a merge patch becomes the JSON patch that does the same (properties)', () => {
  const leaf = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }));
  const keys = fc.constantFrom('a', 'b', 'c/d', 'e~f');
  const tree = fc.letrec<{ obj: Record<string, unknown> }>((tie) => ({
    obj: fc.dictionary(keys, fc.oneof({ depthSize: 'small' }, leaf, tie('obj')), { maxKeys: 4 }),
  })).obj;
  const patch = fc.letrec<{ obj: Record<string, unknown> }>((tie) => ({
    obj: fc.dictionary(keys, fc.oneof({ depthSize: 'small' }, leaf, fc.constant(null), tie('obj')), {
      maxKeys: 4,
    }),
  })).obj;
  fc.assert(
    fc.property(tree, patch, (t, p) => {
      const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown; // fast-check makes null-prototype objects
      assert.deepEqual(plain(applyJsonPatch(t, mergePatchToJsonPatch(t, p))), plain(applyMergePatch(t, p)));
    }),
  );
});

test('a review: rejections with their message and code, other errors as 500, filters, warnings', async () => {
  const logger = silentLogger();
  const seen: AdmissionContext[] = [];
  const validate = handler('validating', (c) => {
    seen.push(c);
    c.warnings.push('careful');
    if ((c.spec.size as number) < 0) throw new AdmissionError('size must be >= 0', 422);
    if (c.spec.size === 13) throw new Error('unlucky');
  });
  assert.deepEqual(await review(validate, requestFor(obj({ size: 1 })), logger), {
    uid: 'req-1',
    allowed: true,
    warnings: ['careful'],
  });
  assert.deepEqual(await review(validate, requestFor(obj({ size: -1 })), logger), {
    uid: 'req-1',
    allowed: false,
    status: { code: 422, message: 'size must be >= 0' },
    warnings: ['careful'],
  });
  assert.deepEqual((await review(validate, requestFor(obj({ size: 13 })), logger)).status, {
    code: 500,
    message: 'unlucky',
  });
  const c = seen[0]!;
  assert.equal(c.operation, 'CREATE');
  assert.equal(c.dryRun, false);
  assert.equal(c.name, 'one');
  assert.equal(c.namespace, 'ns');
  assert.equal(c.uid, undefined);
  assert.equal(c.requestUid, 'req-1');
  assert.deepEqual(c.userInfo, { username: 'alice' });
  assert.deepEqual(c.resource, {
    group: 'kopf-ts.dev',
    version: 'v1',
    plural: 'kopftests',
    kind: 'KopfTest',
    namespaced: true,
  });
  assert.equal('patch' in c, false);

  // Without a code, the apiserver picks its own (400).
  const plain = handler('validating', () => {
    throw new AdmissionError('no');
  });
  assert.deepEqual((await review(plain, requestFor(obj({})), logger)).status, { message: 'no' });

  // Filters: not matching means admitted without a call.
  seen.length = 0;
  const filtered = handler('validating', (c) => void seen.push(c), { labels: { tier: PRESENT } });
  assert.equal((await review(filtered, requestFor(obj({ size: -1 })), logger)).allowed, true);
  assert.equal(seen.length, 0);
  await review(filtered, requestFor(obj({}, { tier: 'db' })), logger);
  assert.equal(seen.length, 1);

  // DELETE: the body is the old object.
  seen.length = 0;
  const old = obj({ size: 5 });
  await review(
    filtered,
    requestFor(null, { operation: 'DELETE', oldObject: old as never, dryRun: true }),
    logger,
  );
  await review(
    handler('validating', (c) => void seen.push(c)),
    requestFor(null, { operation: 'DELETE', oldObject: old as never, dryRun: true }),
    logger,
  );
  assert.equal(seen[0]?.body, old);
  assert.equal(seen[0]?.old, old);
  assert.equal(seen[0]?.dryRun, true);
});

test('a review of a mutation: the patch goes back as a base64 JSON patch', async () => {
  const mutate = handler('mutating', ({ spec, patch }) => {
    if (spec.size === undefined) patch.spec = { size: 1 };
    patch.metadata = { labels: { 'example.com/defaulted': 'true' } };
  });
  const response = await review(mutate, requestFor(obj({})), silentLogger());
  assert.equal(response.allowed, true);
  assert.equal(response.patchType, 'JSONPatch');
  assert.deepEqual(JSON.parse(Buffer.from(response.patch!, 'base64').toString()), [
    { op: 'add', path: '/spec/size', value: 1 },
    { op: 'add', path: '/metadata/labels/example.com~1defaulted', value: 'true' },
  ]);
  const nothing = await review(
    handler('mutating', () => {}),
    requestFor(obj({})),
    silentLogger(),
  );
  assert.deepEqual(nothing, { uid: 'req-1', allowed: true });
});

test('on.validate and on.mutate register as plain calls and as decorators; ids clash per resource', () => {
  const fn = on.validate(R, function check_size({ spec }: AdmissionContext<{ size?: number }>) {
    if ((spec.size ?? 0) < 0) throw new AdmissionError('negative');
  });
  assert.equal(typeof fn, 'function');
  on.mutate(
    R,
    function defaults({ patch }) {
      patch.spec = { size: 1 };
    },
    { operations: ['CREATE'], failurePolicy: 'Ignore' },
  );
  class Hooks {
    @on.validate('pods', { id: 'pod_check' })
    static check() {}
  }
  void Hooks;
  assert.deepEqual(
    registry().webhooks.map((w) => [w.kind, w.id, w.resource]),
    [
      ['validating', 'check_size', R],
      ['mutating', 'defaults', R],
      ['validating', 'pod_check', 'pods'],
    ],
  );
  assert.equal(registry().handlers.length, 0);
  assert.throws(() => on.validate(R, function check_size() {}), /already registered/);
  on.mutate(R, function check_size() {}); // another kind: fine
});

test('webhook configurations: names, paths, rules, selectors, client config', () => {
  const a = handler('validating', () => {}, {
    labels: { tier: 'db', team: PRESENT, other: () => true },
    timeout: 5,
    operations: ['CREATE', 'DELETE'],
  });
  const b: AdmissionHandler = { ...handler('mutating', () => {}), id: 'Set_Defaults', resource: 'pods' };
  assert.equal(webhookName(a), 'check-fn.kopftests.kopf-ts.dev');
  assert.equal(webhookPath(a), '/validate/check-fn.kopftests.kopf-ts.dev');
  assert.equal(webhookPath(b), '/mutate/set-defaults.pods.kopf-ts.dev');
  const docs = webhookConfigurations([a, b], {
    name: 'op',
    clientConfig: { url: 'https://127.0.0.1:9443/', caBundle: 'Q0E=' },
    namespaces: ['ns'],
  });
  assert.deepEqual(
    docs.map((d) => d.kind),
    ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'],
  );
  assert.deepEqual((docs[0]!.webhooks as unknown[])[0], {
    name: 'check-fn.kopftests.kopf-ts.dev',
    clientConfig: { url: 'https://127.0.0.1:9443/validate/check-fn.kopftests.kopf-ts.dev', caBundle: 'Q0E=' },
    rules: [
      {
        apiGroups: ['kopf-ts.dev'],
        apiVersions: ['*'],
        resources: ['kopftests'],
        operations: ['CREATE', 'DELETE'],
        scope: '*',
      },
    ],
    failurePolicy: 'Fail',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: 5,
    namespaceSelector: {
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ns'] }],
    },
    objectSelector: {
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['db'] },
        { key: 'team', operator: 'Exists' },
      ],
    },
  });
  const pods = (docs[1]!.webhooks as Array<{ rules: Array<{ apiGroups: string[] }> }>)[0]!;
  assert.deepEqual(pods.rules[0]!.apiGroups, ['']);
  const clash: AdmissionHandler = { ...a, id: 'check-fn' };
  assert.throws(() => webhookConfigurations([a, clash], { name: 'x', clientConfig: { url: 'https://h' } }), {
    message: /both make the webhook check-fn\.kopftests\.kopf-ts\.dev/,
  });
});

test('the webhook server answers AdmissionReviews over TLS (certificate files), per path', async (t) => {
  const certs = selfSignedCertificates(['127.0.0.1']);
  const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-webhook-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'tls.crt'), certs.cert);
  writeFileSync(join(dir, 'tls.key'), certs.key);
  const server = new WebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
    handlers: [
      handler('validating', ({ spec }) => {
        if (spec.size === -1) throw new AdmissionError('negative');
      }),
    ],
    logger: silentLogger(),
    servesNamespace: (ns) => ns !== 'elsewhere',
  });
  const port = await server.start();
  t.after(() => server.stop());
  const post = (path: string, body: unknown) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          ca: certs.ca,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
          );
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const path = '/validate/check-fn.kopftests.kopf-ts.dev';
  const denied = await post(path, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: requestFor(obj({ size: -1 })),
  });
  assert.equal(denied.status, 200);
  assert.deepEqual(denied.body, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'req-1', allowed: false, status: { message: 'negative' } },
  });
  const elsewhere = await post(path, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: requestFor(obj({ size: -1 }), { namespace: 'elsewhere' }),
  });
  assert.deepEqual((elsewhere.body.response as { allowed: boolean }).allowed, true);
  assert.equal((await post('/validate/nothing', {})).status, 404);
  assert.equal((await post(path, { kind: 'AdmissionReview' })).status, 400);
});

test('generate: a Service, the configurations and the Deployment flags, only with webhooks', () => {
  const options = {
    name: 'op',
    namespace: 'ops',
    clusterwide: false,
    image: 'img',
    files: ['/app/op.ts'],
  };
  const without = generateManifests(registry(), options);
  assert.equal(without.filter((d) => d.kind === 'Service').length, 0);
  on.validate(R, function check_size() {});
  on.mutate(R, function defaults() {});
  const docs = generateManifests(registry(), options);
  const kinds = docs.map((d) => d.kind);
  for (const kind of ['Service', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'])
    assert.ok(kinds.includes(kind), kind);
  const service = docs.find((d) => d.kind === 'Service') as { spec: { ports: unknown[] } };
  assert.deepEqual(service.spec.ports, [{ name: 'webhook', port: 443, targetPort: 'webhook' }]);
  const validating = docs.find((d) => d.kind === 'ValidatingWebhookConfiguration')!;
  assert.deepEqual((validating.metadata as { annotations: unknown }).annotations, {
    'cert-manager.io/inject-ca-from': 'ops/op-webhook',
  });
  assert.match(commentOf(validating) ?? '', /caBundle is not set/);
  const hook = (validating.webhooks as Array<{ clientConfig: unknown; namespaceSelector: unknown }>)[0]!;
  assert.deepEqual(hook.clientConfig, {
    service: { namespace: 'ops', name: 'op', port: 443, path: '/validate/check-size.kopftests.kopf-ts.dev' },
  });
  const deployment = docs.find((d) => d.kind === 'Deployment') as {
    spec: {
      template: { spec: { containers: Array<{ args: string[]; ports: unknown[] }>; volumes: unknown[] } };
    };
  };
  const container = deployment.spec.template.spec.containers[0]!;
  assert.deepEqual(container.args.slice(container.args.indexOf('--webhook-server')), [
    '--webhook-server',
    '0.0.0.0:8443',
    '--webhook-cert',
    '/etc/kopf-ts/webhook/tls.crt',
    '--webhook-key',
    '/etc/kopf-ts/webhook/tls.key',
  ]);
  assert.deepEqual(container.ports.at(-1), { name: 'webhook', containerPort: 8443 });
  assert.deepEqual(deployment.spec.template.spec.volumes.at(-1), {
    name: 'webhook-tls',
    secret: { secretName: 'op-webhook-tls' },
  });

  const ca = selfSignedCertificates(['x']).ca;
  const withCa = generateManifests(registry(), { ...options, webhookCa: ca, clusterwide: true });
  const mutating = withCa.find((d) => d.kind === 'MutatingWebhookConfiguration')!;
  const mhook = (
    mutating.webhooks as Array<{ clientConfig: { caBundle: string }; namespaceSelector?: unknown }>
  )[0]!;
  assert.equal(Buffer.from(mhook.clientConfig.caBundle, 'base64').toString(), ca);
  assert.equal(mhook.namespaceSelector, undefined);
  assert.equal(commentOf(mutating), undefined);
});
