// The Lambda artifact, built by esbuild for `cdk synth` (and `npm run bench`): everything
// bundled, the AWS SDK clients included at the versions package-lock.json pins, ESM,
// minified, no source map, and split into chunks. Splitting is what keeps cold starts
// short: the runtime's dynamic imports become separate files, so a token-authenticated GET
// loads Parameter Store and KMS code and never parses the EC2/IAM clients, the STS gateway
// or the local adapters. It also lets esbuild tree-shake each dynamically imported module.

import { buildSync, type BuildOptions, type Metafile } from 'esbuild';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Lambda's handler setting for the artifact: `index.mjs`, export `handler`. */
export const LAMBDA_HANDLER = 'index.handler';
/** The instance-events function's handler, in the same artifact. */
export const INSTANCE_EVENTS_HANDLER = 'instance-events.handler';
/** The Node.js of the function's runtime (nodejs24.x). */
export const LAMBDA_NODE_TARGET = 'node24';
/** Bundled CommonJS dependencies expect `require`; ESM has none, so each output file gets one. */
export const REQUIRE_BANNER = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export function lambdaBuildOptions(outdir: string): BuildOptions {
  return {
    absWorkingDir: PROJECT_ROOT,
    entryPoints: { index: 'lambda/handler.ts', 'instance-events': 'lambda/instance-events.ts' },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: LAMBDA_NODE_TARGET,
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    banner: { js: REQUIRE_BANNER },
    logLevel: 'error',
  };
}

/** Builds the artifact into `outdir`; the metafile says what went where. */
export function bundleLambda(outdir: string): Metafile {
  return buildSync({ ...lambdaBuildOptions(outdir), metafile: true }).metafile!;
}

/** The local server's module in the build `bundleLocalServer` writes (`npm start` runs it). */
export const LOCAL_SERVER_FILE = 'server.mjs';

/**
 * The local server (`npm start`): the Lambda artifact's own build, with lambda/server.ts as
 * one more entry, so the server runs the very chunks the function runs, not the sources
 * through tsx (which costs a start about half a second and a heap of transpiled modules).
 */
export function bundleLocalServer(outdir: string, { minify = true }: { minify?: boolean } = {}): Metafile {
  const options = lambdaBuildOptions(outdir);
  const entryPoints = { ...(options.entryPoints as Record<string, string>), server: 'lambda/server.ts' };
  // Unminified only for profiling (bench --profile): the same code, with its names and module markers.
  return buildSync({ ...options, entryPoints, minify, metafile: true }).metafile!;
}
