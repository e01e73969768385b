// The client as users install it: dist/dssss.mjs (built by the global setup) runs alone,
// with no node_modules anywhere near it, and the package ships it and the library with no
// dependencies. (`npm run test:dist` packs, installs and runs the tarball and the executables.)

import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLIENT_FILE, CLIENT_MAX_BYTES, LIBRARY_FILE } from '../../scripts/build';

const run = promisify(execFile);

describe('dist/dssss.mjs', () => {
  it('is one executable file under 1 MB that runs from a directory with nothing else in it', async () => {
    const { size, mode } = await stat(CLIENT_FILE);
    expect(size).toBeLessThanOrEqual(CLIENT_MAX_BYTES);
    expect((await stat(LIBRARY_FILE)).size).toBeLessThanOrEqual(CLIENT_MAX_BYTES);
    expect(mode & 0o111).not.toBe(0);
    expect((await readFile(CLIENT_FILE, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const alone = await mkdtemp(join(tmpdir(), 'dssss-alone-'));
    await copyFile(CLIENT_FILE, join(alone, 'dssss.mjs'));
    const env = { PATH: process.env.PATH!, AWS_EC2_METADATA_DISABLED: 'true' };
    const { stdout } = await run(process.execPath, [join(alone, 'dssss.mjs'), 'help'], { cwd: alone, env });
    expect(stdout).toMatch(/^usage: dssss COMMAND/);
    const { stdout: version } = await run(process.execPath, [join(alone, 'dssss.mjs'), '--version'], { cwd: alone, env });
    const { version: expected } = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(version).toBe(`dssss ${expected}\n`);
  });

  it('ships in a package whose bin is that file, whose exports are the library, and which depends on nothing', async () => {
    const manifest = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      name: 'dssss',
      type: 'module',
      bin: { dssss: 'dist/dssss.mjs' },
      exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
      files: ['dist/dssss.mjs', 'dist/index.js', 'dist/index.d.ts'],
    });
    // Everything shipped is bundled: an install pulls nothing.
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.peerDependencies).toBeUndefined();
    expect(manifest.optionalDependencies).toBeUndefined();
    expect((manifest.scripts as Record<string, string>).prepack).toMatch(/scripts\/build\.ts/);
  });
});
