// The client as users install it: dist/dssss.mjs (built by the global setup) runs alone,
// with no node_modules anywhere near it, and its package pulls no dependencies.

import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLIENT_FILE, CLIENT_MAX_BYTES, DIST } from '../../scripts/build';

const run = promisify(execFile);

describe('dist/dssss.mjs', () => {
  it('is one executable file under 1 MB that runs from a directory with nothing else in it', async () => {
    const { size, mode } = await stat(CLIENT_FILE);
    expect(size).toBeLessThanOrEqual(CLIENT_MAX_BYTES);
    expect(mode & 0o111).not.toBe(0);
    expect((await readFile(CLIENT_FILE, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const alone = await mkdtemp(join(tmpdir(), 'dssss-alone-'));
    await copyFile(CLIENT_FILE, join(alone, 'dssss.mjs'));
    const { stderr } = await run(process.execPath, [join(alone, 'dssss.mjs'), 'help'], { cwd: alone, env: { PATH: process.env.PATH! } });
    expect(stderr).toMatch(/^usage: dssss COMMAND/);
  });

  it('ships in a package whose bin is that file and which depends on nothing', async () => {
    const manifest = JSON.parse(await readFile(join(DIST, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'dssss', type: 'module', bin: { dssss: 'dssss.mjs' }, files: ['dssss.mjs'] });
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.peerDependencies).toBeUndefined();
  });
});
