/**
 * Dependencies point inward: cli/http -> features -> ledger/lightning interfaces -> domain.
 * Only the composition root (src/main.ts) wires concrete implementations; infrastructure
 * libraries stay in the modules that adapt them.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-imports-nothing',
      comment: 'src/domain is pure: no other module of ours, no npm package.',
      severity: 'error',
      from: { path: '^src/domain' },
      to: { pathNot: ['^src/domain', '^node:', '^(crypto|events)$'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'records-import-domain-only',
      comment: 'The table of record prefixes and the record codecs depend on the domain and TypeBox only.',
      severity: 'error',
      from: { path: '^src/records' },
      to: {
        pathNot: ['^src/(domain|records)/', 'node_modules/@sinclair/typebox/'],
        dependencyTypesNot: ['core'],
      },
    },
    {
      name: 'lightning-interface-is-pure',
      comment: 'The LightningBackend interface depends on the domain only; implementations live in lnd/.',
      severity: 'error',
      from: { path: '^src/lightning/[^/]+\\.ts$' },
      to: { path: '^src/(?!domain|lightning/[^/]+\\.ts$)' },
    },
    {
      name: 'ln-service-only-in-adapters',
      comment:
        'ln-service/lightning are used by the LND adapter and the regtest harness only (and the L402 client SDK, for its offline invoice parser).',
      severity: 'error',
      from: { pathNot: ['^src/lightning/lnd', '^src/regtest', '^src/l402/client\\.ts$'] },
      to: { path: 'node_modules/(ln-service|lightning)/' },
    },
    {
      name: 'fastify-only-in-http',
      severity: 'error',
      from: { pathNot: ['^src/http'] },
      to: { path: 'node_modules/(fastify|@fastify)/' },
    },
    {
      name: 'level-only-in-storage',
      severity: 'error',
      from: { pathNot: ['^src/storage'] },
      to: { path: 'node_modules/(level|classic-level|abstract-level)/' },
    },
    {
      name: 'postgres-only-in-storage',
      severity: 'error',
      from: { pathNot: ['^src/storage'] },
      to: { path: 'node_modules/postgres/' },
    },
    {
      name: 'inner-layers-do-not-import-outer',
      comment: 'Nothing imports the http or cli layers, or the composition root, except the cli.',
      severity: 'error',
      from: { pathNot: ['^src/cli', '^src/main\\.ts$'] },
      to: { path: ['^src/cli', '^src/main\\.ts$'] },
    },
    {
      name: 'http-not-from-features',
      severity: 'error',
      from: { path: '^src/(?!http|cli|main\\.ts)' },
      to: { path: '^src/http' },
    },
    {
      name: 'only-root-wires-lnd',
      comment: 'Concrete backends are chosen by the composition root; http sees the interface only.',
      severity: 'error',
      from: { path: '^src/http' },
      to: { path: ['^src/lightning/lnd', '^src/regtest', '^src/storage'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
