// A local dssss in a temp dir, driven in-process: documents minted by its dev CA, a clock
// the test controls, and a request helper over the real app.

import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../lambda/app';
import { DEV_CA_FILE, ensureDevCa } from '../lambda/adapters/dev-ca-files';
import { LocalRegistry } from '../lambda/adapters/local-registry';
import { loadConfig } from '../lambda/config';
import { createDevCa, signIdentityDocument, type DevCa } from '../lambda/identity/dev-ca';
import type { AuditRecord } from '../lambda/ports';
import { createRuntime, type Overrides } from '../lambda/runtime';

export const ACCOUNT = '111122223333';

let workerCa: DevCa | undefined;

export interface RequestOptions {
  token?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * `env` as the server would read it. Unless a test says otherwise, the home account is
 * ACCOUNT and any role may create any name (DSSSS_WRITER_ROLES=*): tests of the create
 * rules set their own.
 */
export async function localFixture(env: Record<string, string> = {}, overrides: Omit<Overrides, 'clock'> = {}) {
  // A given DSSSS_DATA_DIR is a restart on existing data. A new one gets this worker's
  // development CA: making an RSA key pair per fixture cost 50 to 250 ms each.
  let dir = env.DSSSS_DATA_DIR;
  if (dir === undefined) {
    dir = await mkdtemp(join(tmpdir(), 'dssss-app-'));
    await writeFile(join(dir, DEV_CA_FILE), JSON.stringify((workerCa ??= createDevCa())), { mode: 0o600 });
  }
  const clock = { time: Date.now(), now(): number { return this.time; } };
  const config = loadConfig({ DSSSS_DATA_DIR: dir, DSSSS_ACCOUNT_ID: ACCOUNT, DSSSS_WRITER_ROLES: '*', ...env });
  // Every request's audit line, for tests to inspect.
  const audit: AuditRecord[] = [];
  const runtime = await createRuntime(config, { ...overrides, clock });
  const app = createApp(runtime, { audit: { write: (record) => audit.push(record) } });
  const registry = new LocalRegistry(dir);
  const ca = await ensureDevCa(dir);

  function document(instanceId: string, account = ACCOUNT, extra: Record<string, unknown> = {}): string {
    return signIdentityDocument({ instanceId, accountId: account, region: 'us-east-1', pendingTime: '2026-11-24T00:00:00Z', ...extra }, ca);
  }

  async function identity(role: string, account = ACCOUNT): Promise<string> {
    const instanceId = `i-${randomBytes(8).toString('hex')}`;
    await registry.register(instanceId, account, role);
    return document(instanceId, account);
  }

  async function request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers.Reauthentication = options.token;
    const body =
      options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    // As the local server passes it: the raw request line, before URL normalisation.
    return app.request(path, { method, headers, body }, { request: { rawPath: path } });
  }

  async function login(role: string): Promise<string> {
    const response = await request('GET', '/v1/auth', { headers: { Authentication: await identity(role) } });
    if (response.status !== 200) throw new Error(`login failed: ${response.status}`);
    return ((await response.json()) as { token: string }).token;
  }

  return { dir, app, runtime, audit, clock, config, registry, ca, document, identity, request, login };
}

export type Fixture = Awaited<ReturnType<typeof localFixture>>;

export async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

/**
 * The server reaches EC2 and IAM over their query protocol, not through SDK clients a mock
 * could patch: this serves `fake`'s world on loopback and points AWS_ENDPOINT_URL_EC2 and
 * _IAM at it for the process (Parameter Store and KMS stay mocked). The returned function
 * puts the environment back and stops the server.
 */
export async function ec2AndIamOnTheWire(fake: { serve(): Promise<{ url: string; close(): Promise<void> }> }): Promise<() => Promise<void>> {
  const server = await fake.serve();
  const saved = { ec2: process.env.AWS_ENDPOINT_URL_EC2, iam: process.env.AWS_ENDPOINT_URL_IAM };
  process.env.AWS_ENDPOINT_URL_EC2 = server.url;
  process.env.AWS_ENDPOINT_URL_IAM = server.url;
  return async () => {
    for (const [name, value] of [['AWS_ENDPOINT_URL_EC2', saved.ec2], ['AWS_ENDPOINT_URL_IAM', saved.iam]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await server.close();
  };
}
