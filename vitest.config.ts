import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/** The moto suite is `npm run test:aws`; the packed package and executables, `npm run test:dist`. */
const EXCLUDE = ['test/aws/**', 'test/dist/**'];
/**
 * Suites that replace modules (vi.mock) or patch the SDK's client classes
 * (aws-sdk-client-mock), or that need the classes unpatched: each runs in a fresh module
 * graph, so nothing it changes reaches another file.
 */
const ISOLATED = [
  'test/security/faults-files.test.ts',
  'test/security/property.test.ts',
  'test/security/faults.test.ts',
  'test/adapters/ssm-retry.test.ts',
  'test/adapters/kms-keys.test.ts',
  'test/adapters/ec2-roles.test.ts',
  'test/adapters/ssm-store.test.ts',
  'test/adapters/read-cache.test.ts',
  'test/adapters/dynamo-bookkeeping.test.ts',
  'test/support/fake-aws-app.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/support/build-client.ts'],
    // Threads start faster than forks; vitest's default leaves a core idle, and much of the
    // suite waits on child processes and sockets.
    pool: 'threads',
    maxWorkers: Math.max(2, availableParallelism()),
    // Node 20 only: the SDK's notice that its releases after January 2027 need Node 22. The
    // README says which Node versions are supported; .ci/run also runs the suite on Node 24.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Every other file shares its worker's modules with the files before it (the SDK
    // clients, aws-cdk-lib and the app load once per worker, not once per file): about a
    // sixth of the suite's CPU.
    projects: [
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: [...EXCLUDE, ...ISOLATED], isolate: false } },
      { extends: true, test: { name: 'isolated', include: ISOLATED } },
    ],
  },
});
