import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/aws/**'],
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
  },
});
