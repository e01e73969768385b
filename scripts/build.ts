// `npm run build`: the client as one file. esbuild bundles cli/ (and the few lambda/ modules
// it shares: names, file writes, the development CA) into dist/dssss.mjs, an ES module that
// needs Node.js and nothing else; dist/package.json makes `npm pack ./dist` a tarball whose
// install pulls no dependencies.

import { buildSync } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REQUIRE_BANNER } from '../infra/bundle';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DIST = join(ROOT, 'dist');
export const CLIENT_FILE = join(DIST, 'dssss.mjs');
/** The oldest Node.js the client supports (package.json engines). */
const CLIENT_NODE_TARGET = 'node20';
/** The most the bundle may weigh (issue 13). */
export const CLIENT_MAX_BYTES = 1024 * 1024;

export function buildClient(): { file: string; bytes: number } {
  mkdirSync(DIST, { recursive: true });
  buildSync({
    absWorkingDir: ROOT,
    entryPoints: ['cli/bin.ts'],
    outfile: CLIENT_FILE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: CLIENT_NODE_TARGET,
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    banner: { js: `#!/usr/bin/env node\n${REQUIRE_BANNER}` },
    logLevel: 'error',
  });
  chmodSync(CLIENT_FILE, 0o755);
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string; description: string; engines: unknown };
  const manifest = {
    name: 'dssss',
    version: root.version,
    description: root.description,
    license: root.license,
    type: 'module',
    bin: { dssss: 'dssss.mjs' },
    files: ['dssss.mjs'],
    engines: root.engines,
  };
  writeFileSync(join(DIST, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const bytes = statSync(CLIENT_FILE).size;
  if (bytes > CLIENT_MAX_BYTES) throw new Error(`dist/dssss.mjs is ${bytes} bytes, over ${CLIENT_MAX_BYTES}`);
  return { file: CLIENT_FILE, bytes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { bytes } = buildClient();
  process.stdout.write(`wrote dist/dssss.mjs (${bytes.toLocaleString('en-US')} bytes) and dist/package.json\n`);
}
