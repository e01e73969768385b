// `npm start`: the local server, run from the Lambda artifact's own build (infra/bundle.ts,
// with lambda/server.ts as one more entry), not from the sources through tsx. The first
// start builds it into build/server/ (a few seconds); later starts check that no input
// changed (project sources, infra/bundle.ts, this file, the installed packages) and start
// straight from the build. Plain JavaScript, so nothing loads before the server but Node.
// package.json runs it as `node --max-semi-space-size=4`: V8's young generation capped at
// 4 MiB a semi-space (16 by default), which keeps about 20 MiB off the server's resident
// memory at no cost the benchmark can see (bench/aws-server.ts, bench/http.ts).

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILDS = join(ROOT, 'build', 'server');
/** Which build is current and what it was built from: { dir, inputs: [[path, size, mtimeMs], ...] }. */
const STAMP = join(BUILDS, 'current.json');
/** Besides the sources the build reads: how it is built, and what npm installed. */
const ALWAYS_CHECKED = ['infra/bundle.ts', 'scripts/start.mjs', 'package-lock.json', 'node_modules/.package-lock.json'];
/** A replaced build is removed once it is this old: a server started from it may still load its chunks lazily. */
const KEEP_REPLACED_MS = 24 * 3600 * 1000;

function fingerprint(path) {
  const stat = statSync(join(ROOT, path), { throwIfNoEntry: false });
  return stat === undefined ? [path, -1, -1] : [path, stat.size, stat.mtimeMs];
}

/** The current build's server module, or undefined when there is none or an input changed. */
function currentBuild() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof stamp?.dir !== 'string' || !Array.isArray(stamp.inputs)) return undefined;
  for (const [path, size, mtimeMs] of stamp.inputs) {
    const [, nowSize, nowMtime] = fingerprint(path);
    if (nowSize !== size || nowMtime !== mtimeMs) return undefined;
  }
  const file = join(BUILDS, stamp.dir, stamp.entry ?? 'server.mjs');
  return statSync(file, { throwIfNoEntry: false }) ? file : undefined;
}

/** Builds into a fresh directory, then points the stamp at it (a rename: a concurrent start sees one or the other). */
async function build() {
  const started = Date.now();
  process.stderr.write('dssss: building the local server (infra/bundle.ts) ...\n');
  const { tsImport } = await import('tsx/esm/api');
  const { bundleLocalServer, LOCAL_SERVER_FILE } = await tsImport('../infra/bundle.ts', import.meta.url);
  mkdirSync(BUILDS, { recursive: true });
  const dir = `${Date.now().toString(36)}-${process.pid}`;
  const metafile = bundleLocalServer(join(BUILDS, dir));
  // Project inputs only: a change under node_modules comes with npm rewriting its .package-lock.json.
  const sources = Object.keys(metafile.inputs).filter((path) => !path.startsWith('node_modules/') && !path.includes('/node_modules/'));
  const inputs = [...new Set([...sources, ...ALWAYS_CHECKED])].sort().map(fingerprint);
  const temp = `${STAMP}.${process.pid}`;
  writeFileSync(temp, `${JSON.stringify({ dir, entry: LOCAL_SERVER_FILE, inputs })}\n`);
  renameSync(temp, STAMP);
  for (const other of readdirSync(BUILDS, { withFileTypes: true })) {
    if (!other.isDirectory() || other.name === dir) continue;
    const path = join(BUILDS, other.name);
    if (Date.now() - statSync(path).mtimeMs > KEEP_REPLACED_MS) rmSync(path, { recursive: true, force: true });
  }
  process.stderr.write(`dssss: built ${relative(ROOT, join(BUILDS, dir))} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return join(BUILDS, dir, LOCAL_SERVER_FILE);
}

const server = currentBuild() ?? (await build());
await import(pathToFileURL(server).href);
