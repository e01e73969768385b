// Secrets that follow changes: `dssss exec --watch` and `dssss get --output --watch` as users
// run them (the bundle, in its own process), with real child processes, against a local
// dssss (test/cli/harness.ts). Waits are bounded polls, never speed targets.

import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readText, startHarness, until, type CommandOptions, type Harness } from './harness';

let h: Harness;
let home: string;
const dssss = (args: string[], options?: CommandOptions) => h.dssss(args, options);
const running = (args: string[], env?: Record<string, string>) => h.running(args, env);

beforeAll(async () => {
  // On an instance of web (the harness's first) with no role attached: logins use its document.
  h = await startHarness();
  ({ home } = h);
});

afterAll(() => h.close());

describe('secrets that follow changes: exec --watch, get --output --watch', () => {
  it('exec --watch restarts the child with the new environment on a change, and passes on its status when it stops', async () => {
    await dssss(['put', 'follow/token', '--roles', 'web'], { input: 'v1' });
    const log = join(home, 'follow.log');
    const script = `require("fs").appendFileSync(${JSON.stringify(log)}, process.env.TOKEN + "\\n"); setInterval(() => {}, 1000)`;
    const exec = running(['exec', '--prefix', 'follow', '--watch', '--interval', '0.2', '--grace', '5', '--', process.execPath, '-e', script]);
    try {
      await until(async () => (await readText(log)) === 'v1\n');
      await dssss(['put', 'follow/token', '--roles', 'web'], { input: 'v2' });
      await until(async () => (await readText(log)) === 'v1\nv2\n');
      expect(exec.out.stderr).toMatch(/changed: restarting/);
      expect(exec.out.stderr).not.toContain('v2');
    } finally {
      exec.child.kill('SIGTERM');
    }
    // SIGTERM goes to the child; exec ends with its status (killed by SIGTERM: 143).
    expect(await exec.exited).toBe(143);
  });

  it('exec --watch --on-change signal:NAME signals the child; when the child exits by itself, exec exits with its status', async () => {
    await dssss(['put', 'sig/token', '--roles', 'web'], { input: 'a' });
    const log = join(home, 'sig.log');
    const script = `const fs = require("fs"); fs.appendFileSync(${JSON.stringify(log)}, "start\\n"); process.on("SIGUSR2", () => { fs.appendFileSync(${JSON.stringify(log)}, "SIGUSR2\\n"); process.exit(3); }); setInterval(() => {}, 1000)`;
    const exec = running(['exec', '--prefix', 'sig/', '--watch', '--interval', '0.2', '--on-change', 'signal:SIGUSR2', '--', process.execPath, '-e', script]);
    await until(async () => (await readText(log)) === 'start\n');
    await dssss(['put', 'sig/token', '--roles', 'web'], { input: 'b' });
    expect(await exec.exited).toBe(3);
    expect(await readText(log)).toBe('start\nSIGUSR2\n');
  });

  it('exec --watch keeps the child running through failed re-reads, and still follows the next change', async () => {
    await dssss(['put', 'flaky/token', '--roles', 'web'], { input: 'one' });
    const state = { failing: false };
    const front = await h.front(() => (state.failing ? { status: 503, body: '{"error":{"code":"unavailable","message":"down for a moment"}}' } : undefined));
    const log = join(home, 'flaky.log');
    const script = `require("fs").appendFileSync(${JSON.stringify(log)}, process.env.TOKEN + "\\n"); setInterval(() => {}, 1000)`;
    const exec = running(['exec', '--prefix', 'flaky', '--watch', '--interval', '0.2', '--', process.execPath, '-e', script], { DSSSS_URL: front.url });
    try {
      await until(async () => (await readText(log)) === 'one\n');
      state.failing = true;
      await until(() => /re-reading flaky\/ failed: down for a moment \(unavailable\)/.test(exec.out.stderr));
      expect(await readText(log)).toBe('one\n');
      state.failing = false;
      await dssss(['put', 'flaky/token', '--roles', 'web'], { input: 'two' });
      await until(async () => (await readText(log)) === 'one\ntwo\n');
    } finally {
      exec.child.kill('SIGTERM');
      await exec.exited;
      front.close();
    }
  });

  it('get --output writes a 0600 file; with --watch it rewrites it on a change and signals the process', async () => {
    await dssss(['put', 'tls/key', '--roles', 'web'], { input: 'key-1' });
    const file = join(home, 'tls', 'key.pem');
    expect(await dssss(['get', 'tls/key', '--output', file])).toMatchObject({ code: 0, stdout: '' });
    expect(await readText(file)).toBe('key-1');
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const hups = join(home, 'hups.log');
    const server = spawn(process.execPath, ['-e', `process.on("SIGHUP", () => require("fs").appendFileSync(${JSON.stringify(hups)}, "HUP\\n")); setInterval(() => {}, 1000)`], { stdio: 'ignore' });
    await until(async () => server.pid !== undefined);
    const watcher = running(['get', 'tls/key', '--output', file, '--watch', '--interval', '0.2', '--pid', String(server.pid)]);
    try {
      await until(() => /watching every 0.2 s/.test(watcher.out.stderr));
      await dssss(['put', 'tls/key', '--roles', 'web'], { input: 'key-2' });
      await until(async () => (await readText(file)) === 'key-2' && (await readText(hups)) === 'HUP\n');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(watcher.out.stderr).not.toContain('key-2');
    } finally {
      watcher.child.kill('SIGTERM');
      server.kill('SIGKILL');
    }
    expect(await watcher.exited).toBe(0);
    expect((await dssss(['get', 'tls/key', '--watch'])).code).toBe(2);
  });
});

describe('exec --watch when the child or the change misbehaves', () => {
  it('SIGKILLs a child that ignores SIGTERM once the grace period is over, then starts it again', async () => {
    await dssss(['put', 'stubborn/token', '--roles', 'web'], { input: 'v1' });
    const log = join(home, 'stubborn.log');
    const script = `process.on("SIGTERM", () => {}); require("fs").appendFileSync(${JSON.stringify(log)}, process.env.TOKEN + "\\n"); setInterval(() => {}, 1000)`;
    const exec = running(['exec', '--prefix', 'stubborn', '--watch', '--interval', '0.2', '--grace', '0.3', '--', process.execPath, '-e', script]);
    try {
      await until(async () => (await readText(log)) === 'v1\n');
      await dssss(['put', 'stubborn/token', '--roles', 'web'], { input: 'v2' });
      await until(async () => (await readText(log)) === 'v1\nv2\n');
      expect(exec.out.stderr).toMatch(/did not exit within 0.3 s of SIGTERM: SIGKILL/);
    } finally {
      exec.child.kill('SIGINT');
    }
    // SIGINT goes to the child, which does not ignore it: 128 + 2.
    expect(await exec.exited).toBe(130);
  });

  it('does not apply a change that would set a refused variable, and keeps the child running', async () => {
    await dssss(['put', 'guarded/token', '--roles', 'web'], { input: 'v1' });
    const log = join(home, 'guarded.log');
    const script = `require("fs").appendFileSync(${JSON.stringify(log)}, process.env.TOKEN + "\\n"); setInterval(() => {}, 1000)`;
    const exec = running(['exec', '--prefix', 'guarded', '--watch', '--interval', '0.2', '--', process.execPath, '-e', script]);
    try {
      await until(async () => (await readText(log)) === 'v1\n');
      await dssss(['put', 'guarded/node-options', '--roles', 'web'], { input: '--require=/tmp/planted.js' });
      await until(() => /would set NODE_OPTIONS, which dssss exec does not override: not applied/.test(exec.out.stderr));
      expect(await readText(log)).toBe('v1\n');
      expect(exec.out.stderr).not.toContain('planted');
      expect(exec.child.exitCode).toBeNull();
    } finally {
      exec.child.kill('SIGTERM');
      await exec.exited;
    }
  });
});
