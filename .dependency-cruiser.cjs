/**
 * The framework's layers (docs/architecture.md). Each folder of packages/framework/src may
 * import only the folders listed for it; nothing imports upward, `state/` and `registry/`
 * import nothing of ours, and only `cli/` may import everything (nothing imports `cli/`).
 */
const src = '^packages/framework/src/';
const allowed = {
  kube: ['kube', 'util'],
  watching: ['watching', 'kube', 'util'],
  queueing: ['queueing', 'watching', 'kube', 'util'],
  state: ['state', 'util'],
  registry: ['registry', 'util'],
  api: ['api', 'registry', 'state', 'util'],
  processing: ['processing', 'queueing', 'watching', 'kube', 'state', 'registry', 'util'],
  peering: ['peering', 'kube', 'watching', 'util'],
  activities: ['activities', 'kube', 'registry', 'util'],
  admission: ['admission', 'registry', 'kube', 'state', 'util'],
  metrics: ['metrics', 'util'],
  runtime: [
    'runtime',
    'processing',
    'peering',
    'activities',
    'admission',
    'metrics',
    'queueing',
    'watching',
    'kube',
    'state',
    'registry',
    'util',
  ],
  manifests: ['manifests', 'admission', 'registry', 'state', 'kube', 'util'],
  testing: ['testing', 'runtime', 'registry', 'kube', 'util'],
  cli: [
    'cli',
    'runtime',
    'manifests',
    'peering',
    'activities',
    'admission',
    'registry',
    'kube',
    'api',
    'util',
  ],
  util: ['util'],
};
const layers = Object.keys(allowed);

module.exports = {
  forbidden: [
    ...layers.map((layer) => ({
      name: `layer-${layer}`,
      comment: `${layer}/ may import only: ${allowed[layer].join(', ')}`,
      severity: 'error',
      from: { path: `${src}${layer}/` },
      to: {
        path: `${src}(${layers.join('|')})/`,
        pathNot: `${src}(${allowed[layer].join('|')})/`,
      },
    })),
    {
      name: 'no-unknown-folder',
      comment: 'every module of the framework lives in a declared layer (or is the index)',
      severity: 'error',
      from: { path: src, pathNot: `${src}((${layers.join('|')})/|index\\.ts$)` },
      to: {},
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'packages/framework/tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'default'],
    },
  },
};
