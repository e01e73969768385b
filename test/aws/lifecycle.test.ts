// Nothing lost, on the AWS store against moto_server: history through soft delete and restore,
// seal-key rotation and rewrap, backup and restore-backup, and change events on a real
// EventBridge bus (delivered by a rule to an SQS queue, where the test reads them).

import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateEventBusCommand, EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { recordKid } from '../../lambda/core/envelope';
import { createDevCa, signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import { createRuntime, type Overrides } from '../../lambda/runtime';

const ACCOUNT = '123456789012'; // moto's account
Object.assign(process.env, {
  AWS_ENDPOINT_URL: inject('awsEndpoint'),
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

const ssm = new SSMClient({});
let ca: DevCa;
let certFile: string;
let keyArn: string;
const instances: Record<string, string> = {};

async function launch(role: string): Promise<string> {
  const iam = new IAMClient({});
  const ec2 = new EC2Client({});
  const profile = `${role}-profile-${randomBytes(3).toString('hex')}`;
  await iam.send(new CreateRoleCommand({ RoleName: role, AssumeRolePolicyDocument: '{}' })).catch(() => undefined);
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: profile }));
  await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: profile, RoleName: role }));
  const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  const run = await ec2.send(new RunInstancesCommand({ ImageId: Images![0]!.ImageId!, MinCount: 1, MaxCount: 1, IamInstanceProfile: { Name: profile } }));
  return run.Instances![0]!.InstanceId!;
}

beforeAll(async () => {
  ca = createDevCa();
  certFile = join(await mkdtemp(join(tmpdir(), 'dssss-aws-')), 'extra-certs.pem');
  await writeFile(certFile, ca.certPem);
  keyArn = (await new KMSClient({}).send(new CreateKeyCommand({ Description: 'dssss lifecycle test' }))).KeyMetadata!.Arn!;
  instances.web = await launch('web');
  instances.admin = await launch('dssssadmin');
});

type App = Awaited<ReturnType<typeof awsApp>>;

async function awsApp(prefix: string, env: Record<string, string> = {}, overrides: Overrides = {}) {
  const config = loadConfig({
    DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
    DSSSS_KMS_KEY_ID: keyArn,
    DSSSS_PARAMETER_PREFIX: prefix,
    DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
    DSSSS_EXTRA_CERTS: certFile,
    ...env,
  });
  return createApp(await createRuntime(config, overrides));
}

async function login(app: App, instanceId: string): Promise<string> {
  const doc = signIdentityDocument({ instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime: '2026-11-24T00:00:00Z' }, ca);
  const response = await app.request('/v1/auth', { headers: { Authentication: doc, Accept: 'text/plain' } });
  expect(response.status).toBe(200);
  return response.text();
}

function call(app: App, method: string, path: string, token: string, body?: unknown) {
  return app.request(path, { method, headers: { Reauthentication: token }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

const put = (app: App, token: string, name: string, secret: string) => call(app, 'PUT', `/v1/secret/${name}`, token, { Secret: secret, Roles: ['web'] });
const newPrefix = () => `/dssss-${randomBytes(4).toString('hex')}/`;

async function json(response: Response | Promise<Response>): Promise<any> {
  return (await response).json();
}

describe('history, soft delete, rotation, backups and change events on the AWS store (moto_server)', () => {
  it('keeps every version through a soft delete; restore brings the last live one back; purge destroys it', async () => {
    const app = await awsApp(newPrefix());
    const [web, admin] = [await login(app, instances.web!), await login(app, instances.admin!)];
    for (const v of ['v1', 'v2']) await put(app, web, 'life/db', v);
    expect((await call(app, 'DELETE', '/v1/secret/life/db', admin)).status).toBe(204);
    expect(await json(call(app, 'GET', '/v1/secret/life/db', web))).toMatchObject({ error: { code: 'deleted' } });
    expect(await json(call(app, 'GET', '/v1/secrets?prefix=life/', web))).toEqual({ names: [] });
    expect(await json(call(app, 'GET', '/v1/secrets?prefix=life/&deleted=true', admin))).toMatchObject({ names: ['life/db'] });
    const history = await json(call(app, 'GET', '/v1/secret/life/db/versions', admin));
    expect(history.versions.map((v: { version: number; deleted?: boolean }) => [v.version, v.deleted === true])).toEqual([[3, true], [2, false], [1, false]]);
    expect(await json(call(app, 'POST', '/v1/secret/life/db/restore', admin))).toEqual({ name: 'life/db', version: 4, restoredFrom: 2 });
    expect(await json(call(app, 'GET', '/v1/secret/life/db', web))).toMatchObject({ secret: 'v2', version: 4 });
    expect(await json(call(app, 'GET', '/v1/secret/life/db?version=1', web))).toMatchObject({ secret: 'v1' });
    expect((await call(app, 'DELETE', '/v1/secret/life/db?purge=true', web)).status).toBe(403);
    expect((await call(app, 'DELETE', '/v1/secret/life/db?purge=true', admin)).status).toBe(204);
    expect(await json(call(app, 'GET', '/v1/secret/life/db/versions', admin))).toMatchObject({ error: { code: 'not_found' } });
  });

  it('after rotate and rewrap, every version written before still reads back and no record uses the old key, which may then retire', async () => {
    const prefix = newPrefix();
    const clock = { time: Date.now(), now(): number { return this.time; } };
    const app = await awsApp(prefix, {}, { clock });
    const [web, admin] = [await login(app, instances.web!), await login(app, instances.admin!)];
    for (const name of ['rot/a', 'rot/b', 'rot/c']) for (const v of ['1', '2']) await put(app, web, name, `${name}@${v}`);
    const before = (await json(call(app, 'GET', '/v1/admin/seal-keys', admin))).keys[0].id as string;
    const rotated = await json(call(app, 'POST', '/v1/admin/seal-keys', admin));
    let next: string | undefined;
    let rewrapped = 0;
    do {
      const page = await json(call(app, 'POST', `/v1/admin/rewrap${next ? `?next=${encodeURIComponent(next)}` : ''}`, admin));
      rewrapped += page.rewrapped;
      next = page.next;
    } while (next);
    expect(rewrapped).toBe(3);
    expect((await json(call(app, 'POST', '/v1/admin/rewrap', admin))).rewrapped).toBe(0);
    const { Parameters } = await ssm.send(new GetParametersByPathCommand({ Path: `${prefix}secrets`, Recursive: true }));
    expect(Parameters!.map((p) => recordKid(p.Value!))).toEqual([rotated.id, rotated.id, rotated.id]);
    for (const name of ['rot/a', 'rot/b', 'rot/c']) {
      for (const v of [1, 2]) expect(await json(call(app, 'GET', `/v1/secret/${name}?version=${v}`, web))).toMatchObject({ secret: `${name}@${v}`, version: v });
    }
    clock.time += 66 * 60_000;
    const fresh = await login(app, instances.admin!);
    expect((await call(app, 'DELETE', `/v1/admin/seal-keys/${before}`, fresh)).status).toBe(204);
    const reader = await login(app, instances.web!);
    expect(await json(call(app, 'GET', '/v1/secret/rot/a?version=1', reader))).toMatchObject({ secret: 'rot/a@1' });
  });

  it('backs up every sealed record and puts a purged secret back with every version; again, nothing is doubled', async () => {
    const app = await awsApp(newPrefix());
    const [web, admin] = [await login(app, instances.web!), await login(app, instances.admin!)];
    for (let i = 1; i <= 6; i++) await put(app, web, 'bak/many', `m${i}`);
    const backup = await json(call(app, 'GET', '/v1/admin/backup', admin));
    expect(backup.secrets.map((s: { name: string; records: unknown[] }) => [s.name, s.records.length])).toEqual([['bak/many', 6]]);
    expect(JSON.stringify(backup)).not.toMatch(/"m\d"/);
    await call(app, 'DELETE', '/v1/secret/bak/many?purge=true', admin);
    const body = { sealKeys: backup.sealKeys, ...backup.secrets[0] };
    expect(await json(call(app, 'POST', '/v1/admin/restore-backup', admin, body))).toEqual({ status: 'restored', written: 5, remaining: 1, version: 5 });
    expect(await json(call(app, 'POST', '/v1/admin/restore-backup', admin, body))).toEqual({ status: 'restored', written: 1, remaining: 0, version: 6 });
    expect(await json(call(app, 'POST', '/v1/admin/restore-backup', admin, body))).toEqual({ status: 'unchanged', written: 0, remaining: 0, version: 6 });
    for (let i = 1; i <= 6; i++) expect(await json(call(app, 'GET', `/v1/secret/bak/many?version=${i}`, web))).toMatchObject({ secret: `m${i}` });
    expect((await json(call(app, 'GET', '/v1/secret/bak/many/versions', web))).versions).toHaveLength(6);
  });

  it('publishes one EventBridge event per change, with names and versions and no secret material', async () => {
    const events = new EventBridgeClient({});
    const sqs = new SQSClient({});
    const bus = `dssss-${randomBytes(3).toString('hex')}`;
    await events.send(new CreateEventBusCommand({ Name: bus }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: bus }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    await events.send(new PutRuleCommand({ Name: 'changes', EventBusName: bus, EventPattern: JSON.stringify({ source: ['dssss'], 'detail-type': ['dssss change'] }) }));
    await events.send(new PutTargetsCommand({ Rule: 'changes', EventBusName: bus, Targets: [{ Id: 'queue', Arn: Attributes!.QueueArn! }] }));

    const app = await awsApp(newPrefix(), { DSSSS_EVENT_BUS: bus });
    const [web, admin] = [await login(app, instances.web!), await login(app, instances.admin!)];
    await put(app, web, 'ev/db', 'canary-secret-value');
    await call(app, 'DELETE', '/v1/secret/ev/db', admin);
    await call(app, 'POST', '/v1/secret/ev/db/restore', admin);
    await call(app, 'POST', '/v1/admin/seal-keys', admin);
    await call(app, 'DELETE', '/v1/secret/ev/db?purge=true', admin);

    const bodies: string[] = [];
    for (let i = 0; i < 10 && bodies.length < 5; i++) {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      bodies.push(...(Messages ?? []).map((m) => m.Body!));
    }
    const details = bodies.map((b) => JSON.parse(b) as { source: string; 'detail-type': string; detail: Record<string, unknown> });
    expect(details.map((d) => [d.source, d['detail-type']])).toEqual(Array(5).fill(['dssss', 'dssss change']));
    expect(details.map((d) => [d.detail.operation, d.detail.name, d.detail.version])).toEqual([
      ['put', 'ev/db', 1],
      ['delete', 'ev/db', 2],
      ['restore', 'ev/db', 3],
      ['rotate-seal-key', undefined, undefined],
      ['purge', 'ev/db', undefined],
    ]);
    expect(details[0]!.detail.actor).toMatchObject({ role: 'web', account: ACCOUNT, principal: instances.web });
    expect(bodies.join('\n')).not.toMatch(/canary-secret-value|dssss\.v2\.|"wrapped"|"token"/);
  });
});
