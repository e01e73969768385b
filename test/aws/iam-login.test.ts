// IAM login against moto_server as STS: assume a role there, sign GetCallerIdentity with
// those credentials (the `dssss` CLI in a child process does it), log in, read a secret
// scoped to that role. The server runs on the AWS backends, all of them in moto.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateRoleCommand, DeleteRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signGetCallerIdentity } from '../../cli/credentials';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createRuntime } from '../../lambda/runtime';
import { assumeRoleOnMoto, createBookkeepingTable, type SessionCredentials } from './moto';
import { DynamoBookkeeping } from '../../lambda/adapters/dynamo-bookkeeping';
import { recordStateChange } from '../../lambda/instance-events';

const ACCOUNT = '123456789012'; // moto's account
const SERVER_ID = 'dssss-moto';
const endpoint = inject('awsEndpoint');
const base = {
  AWS_ENDPOINT_URL: endpoint,
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};
const testing = { accessKeyId: 'testing', secretAccessKey: 'testing' };
Object.assign(process.env, base, { AWS_ACCESS_KEY_ID: testing.accessKeyId, AWS_SECRET_ACCESS_KEY: testing.secretAccessKey });

type Credentials = SessionCredentials;

let api: ServerType;
let url: string;
let home: string;
let keyArn: string;

/** A role session in moto, as the tests' own credentials. */
const assumeRole = (role: string, session: string): Promise<Credentials> => assumeRoleOnMoto(endpoint, ACCOUNT, role, session, testing);

async function iamLogin(credentials: Credentials | typeof testing): Promise<Response> {
  const payload = await signGetCallerIdentity(SERVER_ID, base, async () => credentials);
  return fetch(`${url}/v1/auth/iam`, { method: 'POST', body: JSON.stringify(payload) });
}

function cli(args: string[], credentials: Credentials, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH!,
    HOME: home,
    ...base,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_SESSION_TOKEN: credentials.sessionToken,
    DSSSS_URL: url,
    DSSSS_SERVER_ID: SERVER_ID,
    DSSSS_TOKEN_FILE: join(home, `${credentials.accessKeyId}.json`),
  };
  return new Promise((resolve) => {
    const child = execFile('node', [join(import.meta.dirname, '..', '..', 'bin', 'dssss.js'), ...args], { env, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

beforeAll(async () => {
  const iam = new IAMClient({});
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }] });
  for (const role of ['worker', 'dssssadmin', 'web']) {
    await iam.send(new CreateRoleCommand({ RoleName: role, AssumeRolePolicyDocument: trust })).catch(() => undefined);
  }
  keyArn = (await new KMSClient({}).send(new CreateKeyCommand({ Description: 'dssss iam test' }))).KeyMetadata!.Arn!;
  const config = loadConfig({
    ...base,
    DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
    DSSSS_KMS_KEY_ID: keyArn,
    DSSSS_PARAMETER_PREFIX: `/dssss-${randomBytes(4).toString('hex')}/`,
    DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
    DSSSS_SERVER_ID: SERVER_ID,
  });
  api = serve({ fetch: createApp(await createRuntime(config)).fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => api.once('listening', resolve));
  url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  home = await mkdtemp(join(tmpdir(), 'dssss-iam-'));
});

afterAll(() => {
  api.close();
});

describe('IAM login with moto_server as STS', () => {
  it('logs in an assumed role with the CLI, and reads a secret scoped to that role', async () => {
    const admin = await iamLogin(await assumeRole('dssssadmin', 'ops'));
    expect(admin.status).toBe(200);
    const adminToken = ((await admin.json()) as { token: string; role: string }).token;
    for (const [name, value, roles] of [['app/queue', 'amqp://q', ['worker']], ['app/db', 'hunter2', ['web']]] as const) {
      const put = await fetch(`${url}/v1/secret/${name}`, {
        method: 'PUT',
        headers: { Reauthentication: adminToken },
        body: JSON.stringify({ Secret: value, Roles: roles }),
      });
      expect(put.status).toBe(200);
    }

    const worker = await assumeRole('worker', 'ecs-task-1');
    const login = await cli(['login', '--method', 'iam'], worker);
    expect(login.stderr).toMatch(/logged in as role worker \(iam\)/);
    expect(login.code).toBe(0);
    expect(await cli(['get', 'app/queue'], worker)).toMatchObject({ code: 0, stdout: 'amqp://q' });
    // Not its secret: the not-found of a missing name.
    expect(await cli(['get', 'app/db'], worker)).toMatchObject({ code: 5, stdout: '' });
    expect((await cli(['ls', 'app/'], worker)).stdout).toBe('app/queue\n');
  });

  it('a role deleted and created again under the same name does not inherit its secrets (finding 4)', async () => {
    const iam = new IAMClient({});
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }] });
    await iam.send(new CreateRoleCommand({ RoleName: 'reborn', AssumeRolePolicyDocument: trust }));
    const admin = ((await (await iamLogin(await assumeRole('dssssadmin', 'ops'))).json()) as { token: string }).token;
    const put = await fetch(`${url}/v1/secret/app/reborn`, { method: 'PUT', headers: { Reauthentication: admin }, body: JSON.stringify({ Secret: 's', Roles: ['reborn'] }) });
    expect(put.status).toBe(200);
    const read = async () => {
      const token = ((await (await iamLogin(await assumeRole('reborn', 'task'))).json()) as { token: string }).token;
      return (await fetch(`${url}/v1/secret/app/reborn`, { headers: { Reauthentication: token } })).status;
    };
    expect(await read()).toBe(200);
    await iam.send(new DeleteRoleCommand({ RoleName: 'reborn' }));
    await iam.send(new CreateRoleCommand({ RoleName: 'reborn', AssumeRolePolicyDocument: trust }));
    expect(await read()).toBe(404);
    // A role that does not exist cannot be given a secret.
    const ghost = await fetch(`${url}/v1/secret/app/ghost`, { method: 'PUT', headers: { Reauthentication: admin }, body: JSON.stringify({ Secret: 's', Roles: ['no-such-role'] }) });
    expect(await ghost.json()).toMatchObject({ error: { code: 'unknown_role' } });
  });

  it('refuses the IAM user that plain credentials stand for', async () => {
    const response = await iamLogin(testing);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: 'invalid_credentials' } });
  });
});

describe('with the bookkeeping table in DynamoDB (moto)', () => {
  const table = `dssss-bookkeeping-${randomBytes(4).toString('hex')}`;
  const prefix = `/dssss-${randomBytes(4).toString('hex')}/`;
  let app: ReturnType<typeof createApp>;
  let bookkeeping: DynamoBookkeeping;

  beforeAll(async () => {
    const dynamo = new DynamoDBClient({});
    await createBookkeepingTable(dynamo, table);
    bookkeeping = new DynamoBookkeeping(dynamo, table);
    const config = loadConfig({
      ...base,
      DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
      DSSSS_KMS_KEY_ID: keyArn,
      DSSSS_PARAMETER_PREFIX: prefix,
      DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
      DSSSS_SERVER_ID: SERVER_ID,
      DSSSS_BOOKKEEPING_TABLE: table,
      DSSSS_LEGACY_NONCE_BINDINGS: 'true',
    });
    app = createApp(await createRuntime(config));
  });

  const login = async (credentials: Credentials, nonce?: string) =>
    app.request('/v1/auth/iam', {
      method: 'POST',
      body: JSON.stringify(await signGetCallerIdentity(SERVER_ID, base, async () => credentials)),
      headers: nonce === undefined ? {} : { 'X-Dssss-Nonce': nonce },
    });

  it('binds conditionally and keeps the newest state report, on the real protocol', async () => {
    expect(await bookkeeping.createIfAbsent('nonce-i-0000000000000000a', 'one')).toBe(true);
    expect(await bookkeeping.createIfAbsent('nonce-i-0000000000000000a', 'two')).toBe(false);
    expect(await bookkeeping.read('nonce-i-0000000000000000a')).toBe('one');
    await bookkeeping.record('i-0000000000000000a', 'stopped', 20);
    await bookkeeping.record('i-0000000000000000a', 'running', 10);
    expect(await bookkeeping.state('i-0000000000000000a')).toBe('stopped');
    await bookkeeping.record('i-0000000000000000a', 'running', 30);
    expect(await bookkeeping.state('i-0000000000000000a')).toBe('running');
  });

  it('logs in an instance role session with no EC2 call, and refuses it once EC2 reports the instance terminated', async () => {
    // moto has no such instance: without the table, the login would look it up in EC2 and be refused.
    const instance = `i-${randomBytes(8).toString('hex')}`;
    const session = await assumeRole('web', instance);
    expect((await login(session)).status).toBe(200);
    // Binding a nonce claims the instance: that takes EC2's word, which has no such instance.
    expect((await login(session, 'n'.repeat(24))).status).toBe(401);
    expect(await bookkeeping.read(`nonce-${instance}`)).toBeUndefined();
    await recordStateChange(
      { source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification', account: ACCOUNT, time: new Date().toISOString(), detail: { 'instance-id': instance, state: 'terminated' } },
      bookkeeping,
      { account: ACCOUNT, nowMs: Date.now() },
    );
    const refused = await login(session);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: 'invalid_credentials', message: 'instance is not running' } });
  });

  it('honours a binding an earlier release kept in Parameter Store, and moves it to the table', async () => {
    const instance = `i-${randomBytes(8).toString('hex')}`;
    const digest = (await import('node:crypto')).createHash('sha256').update('o'.repeat(24)).digest('hex');
    await new SSMClient({}).send(
      new PutParameterCommand({ Name: `${prefix}meta/nonce-${instance}`, Value: JSON.stringify({ v: 1, sha256: digest }), Type: 'String' }),
    );
    const session = await assumeRole('web', instance);
    expect((await login(session, 'z'.repeat(24))).status).toBe(401);
    expect((await login(session, 'o'.repeat(24))).status).toBe(200);
    expect(await bookkeeping.read(`nonce-${instance}`)).toBe(JSON.stringify({ v: 1, sha256: digest }));
  });
});
