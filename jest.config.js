// Jest runs the TypeScript sources directly (ts-jest, ESM). Type checking is
// done once by `tsc -p tsconfig.test.json` in `make test`, not per test file.
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json', diagnostics: false }],
};
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform,
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/tests/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts'],
      slowTestThreshold: 120,
    },
    // The daemon over HTTP and SSH, with the real wiring and the real Docker engine.
    { ...common, displayName: 'api', testMatch: ['<rootDir>/tests/api/**/*.test.ts'], slowTestThreshold: 120 },
    // The pages in Debian's chromium (playwright-core), against a real daemon and real labs.
    { ...common, displayName: 'browser', testMatch: ['<rootDir>/tests/browser/**/*.test.ts'], slowTestThreshold: 120 },
    // Engines stopped and restarted under a running exam: one file at a time, after the others (`make test` runs them last, in band).
    { ...common, displayName: 'engines', testMatch: ['<rootDir>/tests/engines/**/*.test.ts'], slowTestThreshold: 300 },
    // Benchmarks: `make bench` only (figures go to build/bench/ and BENCHMARKS.md), never part of `make test`.
    { ...common, displayName: 'bench', testMatch: ['<rootDir>/tests/bench/**/*.bench.ts'] },
  ],
};
