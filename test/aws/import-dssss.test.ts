// `dssss admin import-dssss` against moto_server: records made exactly as the original Go
// dssss makes them (../shared/reference/dssss-go.md: SecureStrings, a KMS data key as master
// key, nonce || secretbox framing, base64 with padding), read with the operator's AWS
// credentials and written to a local dssss through its API.

import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { serve, type ServerType } from '@hono/node-server';
import { CreateKeyCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DeleteParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tokenKey } from '../../cli/client';
import { main } from '../../cli/main';
import { localFixture, type Fixture } from '../helpers';

Object.assign(process.env, {
  AWS_ENDPOINT_URL: inject('awsEndpoint'),
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

const ssm = new SSMClient({});
let f: Fixture;
let api: ServerType;
let url: string;
let tokenFile: string;

/** The original's Seal: 24 random nonce bytes, then the secretbox. */
function goSeal(key: Uint8Array, message: Uint8Array): Buffer {
  const nonce = nacl.randomBytes(24);
  return Buffer.concat([nonce, nacl.secretbox(message, nonce, key)]);
}

async function putGoSecret(master: Uint8Array, kmsArn: string, name: string, value: string, roles: string[] | null): Promise<void> {
  const key = nacl.randomBytes(32);
  const content = { RoleList: roles, SecretCiphertext: goSeal(key, Buffer.from(value)).toString('base64') };
  const record = { Bytes: goSeal(key, Buffer.from(JSON.stringify(content))).toString('base64'), KeyCiphertext: goSeal(master, key).toString('base64') };
  await ssm.send(new PutParameterCommand({ Name: `.dssss.secret.${name}`, Type: 'SecureString', KeyId: kmsArn, Value: JSON.stringify(record, null, '  ') }));
}

const commandEnv = () => ({ ...process.env, DSSSS_URL: url, DSSSS_TOKEN_FILE: tokenFile, DSSSS_RETRY_FOR: '0' });

async function dssss(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((stderr += chunk.toString()), done()) });
  const code = await main(args, { env: commandEnv(), stdin: Readable.from([]), stdout: new Writable({ write: (_c, _e, done) => done() }), stderr: sink });
  return { code, stderr };
}

beforeAll(async () => {
  f = await localFixture();
  api = serve({ fetch: f.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => api.once('listening', resolve));
  url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  const home = await mkdtemp(join(tmpdir(), 'dssss-import-'));
  tokenFile = join(home, 'token.json');
});

afterAll(() => {
  api.close();
});

async function cacheToken(role: string): Promise<void> {
  const token = await f.login(role);
  const now = Date.now();
  const entry = { token, role, method: 'ec2', expiresAt: new Date(now + 15 * 60_000).toISOString(), obtainedAt: new Date(now).toISOString() };
  // Where the command looks for its token: this server, and the identity its environment selects.
  await writeFile(tokenFile, JSON.stringify({ version: 1, tokens: { [tokenKey(url, commandEnv(), { method: 'auto' })]: entry } }), { mode: 0o600 });
}

describe('dssss admin import-dssss (moto_server as the original deployment\'s account)', () => {
  it('opens every record of the original and writes it here with its roles; run again, it changes nothing', async () => {
    const kms = new KMSClient({});
    const kmsArn = (await kms.send(new CreateKeyCommand({ Description: 'the original dssss' }))).KeyMetadata!.Arn!;
    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: kmsArn, KeySpec: 'AES_256' }));
    const master = dataKey.Plaintext!;
    await ssm.send(
      new PutParameterCommand({
        Name: '.dssss.config.json',
        Type: 'SecureString',
        Value: JSON.stringify({ MasterKeyCiphertext: Buffer.from(dataKey.CiphertextBlob!).toString('base64'), KMSArn: kmsArn, Active: true }),
      }),
    );
    await putGoSecret(master, kmsArn, 'dbpassword', 'hunter2 "quoted" ünïcode', ['web', 'worker']);
    await putGoSecret(master, kmsArn, 'apikey', 'k-123', ['web']);
    await putGoSecret(master, kmsArn, 'orphan', 'no roles', null);
    // A record sealed under another master key: reported, never written.
    await putGoSecret(nacl.randomBytes(32), kmsArn, 'foreign', 'x', ['web']);

    await cacheToken('web');
    expect((await dssss(['admin', 'import-dssss', '--prefix', 'legacy'])).code).toBe(4);

    await cacheToken('dssssadmin');
    const first = await dssss(['admin', 'import-dssss', '--prefix', 'legacy', '--rate', '1000']);
    expect(first.stderr).toMatch(/^imported legacy\/apikey \(version 1, roles web\)$/m);
    expect(first.stderr).toMatch(/^imported legacy\/dbpassword \(version 1, roles web,worker\)$/m);
    expect(first.stderr).toMatch(/^failed foreign: its key does not open with the master key$/m);
    expect(first.stderr).toMatch(/^failed legacy\/orphan: stored without roles; give --roles$/m);
    expect(first.stderr).toMatch(/imported 2, unchanged 0, present 0, skipped 0, failed 2\n$/);
    expect(first.code).toBe(1);
    expect(first.stderr).not.toMatch(/hunter2|k-123|no roles/);

    const web = await f.login('web');
    expect(await (await f.request('GET', '/v1/secret/legacy/dbpassword', { token: web })).json()).toEqual({
      name: 'legacy/dbpassword',
      secret: 'hunter2 "quoted" ünïcode',
      version: 1,
      roles: ['web', 'worker'],
    });
    expect((await f.request('GET', '/v1/secret/legacy/apikey', { token: await f.login('worker') })).status).toBe(404);

    await ssm.send(new DeleteParameterCommand({ Name: '.dssss.secret.foreign' }));
    const again = await dssss(['admin', 'import-dssss', '--prefix', 'legacy', '--roles', 'ops', '--rate', '1000']);
    // The admin's role is not among these secrets' roles: present, not compared, not touched.
    expect(again.stderr).toMatch(/^present legacy\/dbpassword: it exists here/m);
    expect(again.stderr).toMatch(/^imported legacy\/orphan \(version 1, roles ops\)$/m);
    expect(again.stderr).toMatch(/imported 1, unchanged 0, present 2, skipped 0, failed 0\n$/);
    // One the admin may read, changed here since: compared, and left alone.
    await putGoSecret(master, kmsArn, 'shared', 'from the original', ['dssssadmin']);
    await dssss(['admin', 'import-dssss', '--prefix', 'legacy', '--rate', '1000']);
    const admin = await f.login('dssssadmin');
    expect((await f.request('PUT', '/v1/secret/legacy/shared', { token: admin, body: { Secret: 'changed here', Roles: ['dssssadmin'] } })).status).toBe(200);
    const third = await dssss(['admin', 'import-dssss', '--prefix', 'legacy', '--rate', '1000']);
    expect(third.stderr).toMatch(/^skipped legacy\/shared: it exists here with another value or roles; left as it is$/m);
    expect(third.stderr).toMatch(/^present legacy\/orphan: /m);
    expect(third.code).toBe(1);
    expect(await (await f.request('GET', '/v1/secret/legacy/shared', { token: admin })).json()).toMatchObject({ secret: 'changed here', version: 2 });
    expect(again.code).toBe(0);
  });
});
