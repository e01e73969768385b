import { defineConfig } from 'vitest/config';

// `npm run test:dist`: the package as users install it. Packs the tarball (npm pack, which
// builds), installs it into an empty directory, builds the linux-x64 standalone executable,
// and runs both, and the library, against the local server. Outside `npm test`: packing and
// the executable's build take about half a minute.
export default defineConfig({
  test: {
    include: ['test/dist/**/*.test.ts'],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    testTimeout: 60_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
