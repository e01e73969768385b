// The AWS backends end to end against moto_server: real SSM, KMS, EC2 and IAM protocol,
// the whole HTTP API on top, identity documents signed by a test CA given in DSSSS_EXTRA_CERTS.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand, EC2Client, RunInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetParameterCommand, GetParameterHistoryCommand, SSMClient } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createDevCa, signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import { createRuntime } from '../../lambda/runtime';
import { SsmSecretStore } from '../../lambda/adapters/ssm-store';
import { AwsQueryClient } from '../../lambda/adapters/aws-query';
import { Ec2RoleResolver, IamRoleDirectory } from '../../lambda/adapters/ec2-roles';
import { ExpiringCache } from '../../lambda/core/cache';
import { storeContract } from '../support/store-contract';

const ACCOUNT = '123456789012'; // moto's account
const awsEnv = {
  AWS_ENDPOINT_URL: inject('awsEndpoint'),
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};
Object.assign(process.env, awsEnv);

const ssm = new SSMClient({});
const kms = new KMSClient({});
const ec2 = new EC2Client({});
const iam = new IAMClient({});

let ca: DevCa;
let certFile: string;
let keyArn: string;
const instances: Record<string, string> = {};

async function launch(role: string): Promise<string> {
  const profile = `${role}-profile-${randomBytes(3).toString('hex')}`;
  await iam.send(new CreateRoleCommand({ RoleName: role, AssumeRolePolicyDocument: '{}' })).catch(() => undefined);
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: profile }));
  await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: profile, RoleName: role }));
  const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  const run = await ec2.send(
    new RunInstancesCommand({ ImageId: Images![0]!.ImageId!, MinCount: 1, MaxCount: 1, IamInstanceProfile: { Name: profile } }),
  );
  return run.Instances![0]!.InstanceId!;
}

function document(instanceId: string, account = ACCOUNT): string {
  return signIdentityDocument({ instanceId, accountId: account, region: 'us-east-1', pendingTime: '2026-11-24T00:00:00Z' }, ca);
}

async function awsApp(prefix: string) {
  const config = loadConfig({
    DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
    DSSSS_KMS_KEY_ID: keyArn,
    DSSSS_PARAMETER_PREFIX: prefix,
    DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
    DSSSS_EXTRA_CERTS: certFile,
  });
  return createApp(await createRuntime(config));
}

async function login(app: Awaited<ReturnType<typeof awsApp>>, instanceId: string): Promise<string> {
  const response = await app.request('/v1/auth', { headers: { Authentication: document(instanceId), Accept: 'text/plain' } });
  expect(response.status).toBe(200);
  return response.text();
}

beforeAll(async () => {
  ca = createDevCa();
  certFile = join(await mkdtemp(join(tmpdir(), 'dssss-aws-')), 'extra-certs.pem');
  await writeFile(certFile, ca.certPem);
  keyArn = (await kms.send(new CreateKeyCommand({ Description: 'dssss test' }))).KeyMetadata!.Arn!;
  instances.web = await launch('web');
  instances.admin = await launch('dssssadmin');
  instances.stopped = await launch('web');
  await ec2.send(new StopInstancesCommand({ InstanceIds: [instances.stopped] }));
});

describe('AWS backends against moto_server', () => {
  it('logs in, puts, gets, lists and deletes through the HTTP API', async () => {
    const prefix = `/dssss-${randomBytes(4).toString('hex')}/`;
    const app = await awsApp(prefix);
    const web = await login(app, instances.web!);
    const put = await app.request('/v1/secret/app/db', {
      method: 'PUT',
      headers: { Reauthentication: web },
      body: JSON.stringify({ Secret: 'hunter2', Roles: ['web'] }),
    });
    expect(await put.json()).toEqual({ name: 'app/db', version: 1 });
    const again = await app.request('/v1/secret/app/db', {
      method: 'PUT',
      headers: { Reauthentication: web },
      body: JSON.stringify({ Secret: 'hunter3', Roles: ['web'] }),
    });
    expect(await again.json()).toEqual({ name: 'app/db', version: 2 });

    const get = await app.request('/v1/secret/app/db', { headers: { Reauthentication: web } });
    expect(await get.json()).toEqual({ name: 'app/db', secret: 'hunter3', version: 2, roles: ['web'] });
    const old = await app.request('/v1/secret/app/db?version=1', { headers: { Reauthentication: web, Accept: 'text/plain' } });
    expect(await old.text()).toBe('hunter2');

    const list = await app.request('/v1/secrets?prefix=app/', { headers: { Reauthentication: web } });
    expect(await list.json()).toEqual({ names: ['app/db'] });

    const admin = await login(app, instances.admin!);
    expect((await app.request('/v1/secret/app/db', { method: 'DELETE', headers: { Reauthentication: web } })).status).toBe(403);
    expect((await app.request('/v1/secret/app/db', { method: 'DELETE', headers: { Reauthentication: admin } })).status).toBe(204);
    expect((await app.request('/v1/secret/app/db', { headers: { Reauthentication: web } })).status).toBe(404);
  });

  it('stores the sealed record in Parameter Store under the prefix, with no plaintext in any version', async () => {
    const prefix = `/dssss-${randomBytes(4).toString('hex')}/`;
    const app = await awsApp(prefix);
    const web = await login(app, instances.web!);
    await app.request('/v1/secret/team/api-key', {
      method: 'PUT',
      headers: { Reauthentication: web },
      body: JSON.stringify({ Secret: 'plaintext-canary', Roles: ['web', 'dssssadmin'] }),
    });
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: `${prefix}secrets/team/api-key` }));
    expect(Parameter?.Type).toBe('String');
    expect(JSON.parse(Parameter!.Value!)).toMatchObject({ v: 2, kid: expect.any(String) });
    const history = await ssm.send(new GetParameterHistoryCommand({ Name: `${prefix}secrets/team/api-key` }));
    for (const p of history.Parameters ?? []) {
      expect(p.Value).not.toContain('plaintext-canary');
      expect(p.Value).not.toContain('dssssadmin');
    }
  });

  it('keeps the seal key wrapped by KMS under the deployment\'s encryption context', async () => {
    const prefix = `/dssss-${randomBytes(4).toString('hex')}/`;
    const app = await awsApp(prefix);
    await login(app, instances.web!);
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: `${prefix}meta/seal-key` }));
    const stored = JSON.parse(Parameter!.Value!) as { v: number; kid: string; wrapped: string };
    const blob = Buffer.from(stored.wrapped, 'base64');
    const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { 'dssss:prefix': prefix } }));
    expect(Plaintext).toHaveLength(32);
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { 'dssss:prefix': '/other/' } }))).rejects.toThrow();
  });

  it('many concurrent cold starts converge on one seal key', async () => {
    const prefix = `/dssss-${randomBytes(4).toString('hex')}/`;
    const apps = await Promise.all(Array.from({ length: 8 }, () => awsApp(prefix)));
    const tokens = await Promise.all(apps.map((app) => login(app, instances.web!)));
    // Every container accepts every other container's tokens: they share one seal key.
    const reads = await Promise.all(apps.map((app, i) => app.request('/v1/secrets', { headers: { Reauthentication: tokens[(i + 1) % tokens.length]! } })));
    expect(reads.map((r) => r.status)).toEqual(apps.map(() => 200));
    const history = await ssm.send(new GetParameterHistoryCommand({ Name: `${prefix}meta/seal-key` }));
    expect(history.Parameters).toHaveLength(1);
  });

  it('refuses a stopped instance, an unknown instance, and a document from an account that is not allowed', async () => {
    const app = await awsApp(`/dssss-${randomBytes(4).toString('hex')}/`);
    for (const doc of [document(instances.stopped!), document('i-0123456789abcdef0'), document(instances.web!, '999999999999')]) {
      const response = await app.request('/v1/auth', { headers: { Authentication: doc } });
      expect(response.status).toBe(401);
    }
  });

  it("reaches EC2 and IAM over their query protocol: an instance's role and its id, a role's id, NoSuchEntity", async () => {
    const clock = { now: () => 0 };
    const query = (service: 'ec2' | 'iam') => new AwsQueryClient({ service, region: async () => 'us-east-1', credentials: async () => ({ accessKeyId: 'testing', secretAccessKey: 'testing' }) });
    const resolver = new Ec2RoleResolver(query('ec2'), query('iam'), new ExpiringCache(0, clock), new ExpiringCache(0, clock));
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: 'web' }));
    expect(await resolver.resolveRole({ instanceId: instances.web!, accountId: ACCOUNT, region: 'us-east-1' })).toEqual({ role: 'web', roleId: Role!.RoleId });
    await expect(resolver.resolveRole({ instanceId: instances.stopped!, accountId: ACCOUNT, region: 'us-east-1' })).rejects.toMatchObject({ message: 'instance is not running' });
    await expect(resolver.resolveRole({ instanceId: 'i-0123456789abcdef0', accountId: ACCOUNT, region: 'us-east-1' })).rejects.toMatchObject({ code: 'invalid_credentials' });
    const directory = new IamRoleDirectory(query('iam'), clock);
    expect(await directory.roleId(ACCOUNT, 'web')).toBe(Role!.RoleId);
    expect(await directory.roleId(ACCOUNT, 'nobody-here')).toBeUndefined();
  });

  it('serves the same API from `DSSSS_BACKEND=aws npm start`', async () => {
    const server = spawn('npm', ['start', '--', '--port', '0'], {
      cwd: join(import.meta.dirname, '..', '..'),
      env: {
        ...process.env,
        ...awsEnv,
        DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
        DSSSS_KMS_KEY_ID: keyArn,
        DSSSS_PARAMETER_PREFIX: `/dssss-${randomBytes(4).toString('hex')}/`,
        DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
        DSSSS_EXTRA_CERTS: certFile,
      },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        server.on('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      expect((await fetch(`${url}/v1/health`)).status).toBe(200);
      const response = await fetch(`${url}/v1/auth`, { headers: { Authentication: document(instances.web!) } });
      expect(await response.json()).toMatchObject({ role: 'web' });
    } finally {
      process.kill(-server.pid!, 'SIGTERM');
    }
  });
});

describe('SsmSecretStore against moto_server: the store contract', () => {
  storeContract(async () => new SsmSecretStore(new SSMClient({}), `/dssss-${randomBytes(4).toString('hex')}/`));
});
