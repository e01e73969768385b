// A local dssss in a temp dir, driven in-process through the real app (built as `npm start`
// builds it, audit log included): what the in-process suite measures, and how the cold-start
// and HTTP suites prepare a data dir (a secret stored and a token minted beforehand) for a
// process of their own.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevCa } from '../lambda/adapters/dev-ca-files';
import { LocalRegistry } from '../lambda/adapters/local-registry';
import { createApp } from '../lambda/app';
import { loadConfig } from '../lambda/config';
import type { SecretService } from '../lambda/core/service';
import { signIdentityDocument, type DevCa } from '../lambda/identity/dev-ca';
import { createAuditSink, createRuntime } from '../lambda/runtime';

export const ACCOUNT = '123456789012';

/** The HTTP app, as both the Lambda handler and the local server serve it. */
export type App = ReturnType<typeof createApp>;

export interface LocalFixture {
  readonly dir: string;
  readonly service: SecretService;
  readonly app: App;
  readonly ca: DevCa;
  /** A freshly registered instance's RSA-2048 identity document, signed by the dev CA. */
  identity(role: string): Promise<string>;
  /** Logs in through the app; returns the token. */
  login(role: string): Promise<string>;
  /** PUT through the app; throws unless 200. */
  put(token: string, name: string, secret: string, roles: readonly string[]): Promise<void>;
  request(method: string, path: string, headers?: Record<string, string>, body?: string): Promise<Response>;
  /** Removes the data dir. */
  dispose(): Promise<void>;
}

export async function localFixture(label: string): Promise<LocalFixture> {
  const dir = await mkdtemp(join(tmpdir(), `dssss-bench-${label}-`));
  const config = loadConfig({ DSSSS_BACKEND: 'local', DSSSS_DATA_DIR: dir, DSSSS_WRITER_ROLES: '*' });
  const runtime = await createRuntime(config);
  const service = runtime.service;
  // As `npm start` builds it: local mode appends an audit line per request to a file in the data dir.
  const audit = await createAuditSink(config);
  const app = createApp(runtime, { audit });
  const ca = await ensureDevCa(dir);
  const registry = new LocalRegistry(dir);

  const request = (method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    Promise.resolve(app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }));

  const identity = async (role: string): Promise<string> => {
    const instanceId = `i-${randomBytes(8).toString('hex')}`;
    await registry.register(instanceId, ACCOUNT, role);
    return signIdentityDocument({ instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime: new Date().toISOString() }, ca);
  };

  const login = async (role: string): Promise<string> => {
    const response = await request('GET', '/v1/auth', { Authentication: await identity(role), Accept: 'text/plain' });
    if (response.status !== 200) throw new Error(`bench setup: login as ${role} answered ${response.status}: ${await response.text()}`);
    return response.text();
  };

  const put = async (token: string, name: string, secret: string, roles: readonly string[]): Promise<void> => {
    const response = await request('PUT', `/v1/secret/${name}`, { Reauthentication: token }, JSON.stringify({ Secret: secret, Roles: roles }));
    if (response.status !== 200) throw new Error(`bench setup: PUT ${name} answered ${response.status}: ${await response.text()}`);
  };

  const dispose = async () => {
    const closable = audit as { close?: () => Promise<void> } | undefined;
    await closable?.close?.();
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, service, app, ca, identity, login, put, request, dispose };
}
