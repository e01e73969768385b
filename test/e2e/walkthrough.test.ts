// The README walkthrough, run as written: the real local server (`npm start`), real curl,
// real `npx dssss dev identity`. If the README and the product drift apart, this fails.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

let server: ChildProcess;
let dataDir: string;
let url: string;
let banner = '';

/** The fenced sh block that follows `marker` in README.md. */
async function readmeBlock(marker: string): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(marker);
  expect(start, `README.md has ${marker}`).toBeGreaterThanOrEqual(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start));
  expect(block).not.toBeNull();
  return block![1]!;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dssss-e2e-'));
  server = spawn('npm', ['start', '--', '--port', '0'], {
    cwd: root,
    env: { ...process.env, DSSSS_DATA_DIR: dataDir },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${banner}`)), 25_000);
    server.stdout!.on('data', (chunk: Buffer) => {
      banner += chunk.toString();
      // The banner is two lines that may arrive in separate chunks: wait for both.
      const match = /listening on (http:\/\/\S+)[\s\S]*\nnext: .*\n/.exec(banner);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server.stderr!.on('data', (chunk: Buffer) => (banner += chunk.toString()));
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${banner}`)));
  });
});

afterAll(() => {
  if (server.pid) process.kill(-server.pid, 'SIGTERM');
});

describe('the README walkthrough, with curl against npm start', () => {
  it('prints a banner with the URL and the next command', () => {
    expect(banner).toContain(url);
    expect(banner).toMatch(/npx dssss dev identity --role web/);
    expect(banner).toContain(`audit log: ${join(dataDir, 'audit.log')}`);
  });

  it('logs in, puts, gets (JSON and raw), lists, refuses an outsider, and deletes as dssssadmin', async () => {
    const script = (await readmeBlock('<!-- walkthrough -->')).replaceAll('localhost:8000', url.replace('http://', ''));
    const { stdout } = await run(
      'bash',
      ['-c', `set -euo pipefail\n${script}\necho "RESULT DB_PASSWORD=$DB_PASSWORD"`],
      { cwd: root, env: { ...process.env, DSSSS_DATA_DIR: dataDir }, timeout: 60_000 },
    );
    expect(stdout).toContain('{"name":"web/db-password","version":1}');
    expect(stdout).toContain('{"name":"web/db-password","secret":"hunter2","version":1,"roles":["web","worker"]}');
    expect(stdout).toContain('RESULT DB_PASSWORD=hunter2\n');
    expect(stdout).toContain('{"names":["web/db-password"]}');
    expect(stdout).toContain('{"error":{"code":"not_found","message":"secret web/db-password not found"}}');
    expect(stdout).toContain('HTTP/1.1 204');
    expect(stdout).toContain('{"error":{"code":"deleted","message":"secret web/db-password is deleted"}}');
    expect(stdout).toContain('{"name":"web/db-password","version":3,"restoredFrom":1}');

    // Every request of the walkthrough has its audit line in the data dir, and none carries a secret or token.
    const audit = (await readFile(join(dataDir, 'audit.log'), 'utf8')).trimEnd().split('\n').map((line) => JSON.parse(line) as { operation: string });
    expect(audit.map((r) => r.operation)).toEqual(['login', 'put', 'get', 'get', 'list', 'login', 'get', 'login', 'delete', 'get', 'restore']);
    const text = JSON.stringify(audit);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('dssss.v1.');
  });

  it('refuses a dot segment that curl sends as-is, rather than reading the folded name', async () => {
    const { stdout } = await run('curl', ['-sS', '--path-as-is', '-w', '\n%{http_code}', `${url}/v1/secret/app/../db-password`]);
    expect(stdout).toMatch(/"code":"invalid_name"[\s\S]*\n400$/);
  });
});
