// The audit log: one structured line per request, with who, what, which secret and how it
// went, and never a secret value, token, key, identity document or signed request.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signGetCallerIdentity } from '../cli/credentials';
import { FileAuditSink } from '../lambda/adapters/audit-sinks';
import { loadConfig } from '../lambda/config';
import { localFixture } from './helpers';

describe('audit log', () => {
  it('writes one line per request with who, what, which secret and the outcome', async () => {
    const f = await localFixture();
    const document = await f.identity('web');
    const login = await f.request('GET', '/v1/auth', { headers: { Authentication: document } });
    const token = ((await login.json()) as { token: string }).token;
    await f.request('PUT', '/v1/secret/app/db', { token, body: { Secret: 'hunter2', Roles: ['web'] } });
    const read = await f.request('GET', '/v1/secret/app/db', { token });
    await f.request('GET', '/v1/secret/a//b', { token });
    await f.request('DELETE', '/v1/secret/app/db', { token });
    await f.request('GET', '/v1/secrets?prefix=app/', { token: 'dssss.v1.forged' });

    expect(f.audit.map((r) => [r.operation, r.status, r.outcome, r.code])).toEqual([
      ['login', 200, 'ok', undefined],
      ['put', 200, 'ok', undefined],
      ['get', 200, 'ok', undefined],
      ['get', 400, 'refused', 'invalid_name'],
      ['delete', 403, 'denied', 'forbidden'],
      ['list', 401, 'denied', 'invalid_credentials'],
    ]);
    const instanceId = f.audit[0]!.principal!;
    expect(instanceId).toMatch(/^i-[0-9a-f]+$/);
    expect(f.audit[0]).toMatchObject({ auth: 'ec2', role: 'web' });
    expect(f.audit[2]).toMatchObject({ auth: 'token', role: 'web', principal: instanceId, name: 'app/db' });
    expect(f.audit[3]!.name).toBeUndefined(); // an invalid name stays out of the log
    expect(f.audit[5]).toMatchObject({ name: 'app/', role: undefined });
    for (const record of f.audit) {
      expect(Date.parse(record.time)).not.toBeNaN();
      expect(record.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(new Set(f.audit.map((r) => r.requestId)).size).toBe(f.audit.length);
    expect(read.headers.get('X-Request-Id')).toBe(f.audit[2]!.requestId);
  });

  it('never contains a secret value, token, identity document, nonce or signed request used in the run', async () => {
    const sts = createServer((_req, res) =>
      res.end('<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::111122223333:assumed-role/worker/t</Arn><Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>'),
    );
    await new Promise<void>((resolve) => sts.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(sts.address() as AddressInfo).port}`;
    try {
      const f = await localFixture({ AWS_ENDPOINT_URL_STS: endpoint, DSSSS_ALLOWED_ACCOUNTS: '111122223333' });
      const sensitive: string[] = [];
      const document = await f.identity('web');
      const nonce = 'n0nce-value-that-must-stay-out';
      const login = await f.request('GET', '/v1/auth', { headers: { Authentication: document, 'X-Dssss-Nonce': nonce } });
      const token = ((await login.json()) as { token: string }).token;
      const signed = await signGetCallerIdentity('dssss-local', { AWS_ENDPOINT_URL_STS: endpoint }, async () => ({
        accessKeyId: 'AKIDAUDITTEST',
        secretAccessKey: 'audit-secret-key',
        sessionToken: 'audit-session-token',
      }));
      const iam = await f.request('POST', '/v1/auth/iam', { body: signed });
      const iamToken = ((await iam.json()) as { token: string }).token;
      sensitive.push(document, nonce, token, iamToken, signed.headers.authorization!, 'AKIDAUDITTEST', 'audit-session-token');

      for (const [i, value] of ['hunter2-audit', 'ünïcødé-sëcret', 'x'.repeat(64)].entries()) {
        sensitive.push(value);
        await f.request('PUT', `/v1/secret/app/s${i}`, { token, body: { Secret: value, Roles: ['web', 'worker'] } });
        await f.request('GET', `/v1/secret/app/s${i}`, { token: iamToken });
        await f.request('GET', `/v1/secret/app/s${i}`, { headers: { Authentication: document, 'X-Dssss-Nonce': nonce } });
        // A value in a rejected body, and a token in the wrong place, stay out too.
        await f.request('PUT', `/v1/secret/app/s${i}`, { token, body: { Secret: value, Roles: 'web' } });
      }
      await f.request('GET', '/v1/secret/app/s0', { headers: { Authorization: `Bearer ${token}x` } });

      const log = f.audit.map((record) => JSON.stringify(record)).join('\n');
      expect(f.audit.length).toBe(2 + 3 * 4 + 1);
      for (const value of sensitive) {
        // Not the whole value, nor any 24-character piece of it.
        for (let i = 0; i + 24 <= Math.max(value.length, 24); i += 12) expect(log).not.toContain(value.slice(i, i + 24));
      }
      expect(log).not.toMatch(/dssss\.v1\.|Signature=|BEGIN|MII/);
    } finally {
      sts.close();
    }
  });

  it('goes to <data dir>/audit.log by default in local mode, to stdout on AWS, and is configurable', async () => {
    expect(loadConfig({ DSSSS_DATA_DIR: '/tmp/d' }).auditLog).toEqual({ file: '/tmp/d/audit.log' });
    expect(loadConfig({ DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*', DSSSS_KMS_KEY_ID: 'k', DSSSS_ALLOWED_ACCOUNTS: '111122223333' }).auditLog).toBe('stdout');
    expect(loadConfig({ DSSSS_AUDIT_LOG: 'off' }).auditLog).toBe('off');
    expect(loadConfig({ DSSSS_AUDIT_LOG: '/var/log/dssss.log' }).auditLog).toEqual({ file: '/var/log/dssss.log' });
  });

  it('appends JSON lines to a 0600 file', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'dssss-audit-')), 'logs', 'audit.log');
    const sink = new FileAuditSink(path);
    const record = { time: new Date().toISOString(), requestId: 'r1', operation: 'get', outcome: 'ok', status: 200, latencyMs: 1 } as const;
    sink.write(record);
    sink.write({ ...record, requestId: 'r2' });
    await sink.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n').map((line) => JSON.parse(line) as { requestId: string });
    expect(lines.map((l) => l.requestId)).toEqual(['r1', 'r2']);
  });
});
