// The stand-in's own behaviour that tests and the fleet simulation lean on: quotas as token
// buckets, the throttling errors on the wire and the SDK's retry of them, counts, latency,
// faults on the wire, the query protocols through the real clients and by hand, STS's
// signature check, and each instance's IMDS. Nothing here patches the SDK (mock: false):
// every call goes over 127.0.0.1.

import { fromInstanceMetadata } from '@smithy/credential-provider-imds';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { RetryStrategyV2, StandardRetryToken } from '@smithy/types';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signGetCallerIdentity } from '../../cli/credentials';
import { Imds } from '../../cli/imds';
import { Backoff } from '../../cli/retry';
import { AwsQueryClient } from '../../lambda/adapters/aws-query';
import { Ec2RoleResolver } from '../../lambda/adapters/ec2-roles';
import { ExpiringCache } from '../../lambda/core/cache';
import { TrustStore } from '../../lambda/identity/certs';
import { verifyIdentityDocument } from '../../lambda/identity/pkcs7';
import { errorOf, localFixture } from '../helpers';
import { AWS_DEFAULT_QUOTAS, AWS_HIGHER_THROUGHPUT_QUOTAS, Quotas, type QuotaTable } from './aws-quotas';
import { getCallerIdentity, signedStsCall } from './aws-probes';
import { FakeAws, quotaCost, type AwsServer } from './fake-aws';

/** The client's IMDS reader, retrying within `backoff` (none by default). */
const identityDocument = (url: string, backoff = new Backoff({ forMs: 0 })) => new Imds(url).identityDocument(backoff);

const ACCOUNT = '111122223333';
const INSTANCE = 'i-0123456789abcdef0';

let fake: FakeAws;
let aws: AwsServer;
const config = () => ({ endpoint: aws.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

beforeAll(async () => {
  fake = new FakeAws({ mock: false, account: ACCOUNT });
  aws = await fake.serve();
});

afterAll(() => aws.close());

beforeEach(() => {
  fake.setQuotas(undefined);
  fake.setLatency('all', undefined);
  fake.disarm();
  fake.resetCounts();
});

/** A retry strategy that retries at once, and first says what the SDK classified the error as. */
function retrying(onRetry: (errorType: string) => void, maxAttempts = 3): RetryStrategyV2 {
  let count = 0;
  const token = (): StandardRetryToken => ({ getRetryCount: () => count, getRetryDelay: () => 0, getRetryTokenCount: () => 0 }) as unknown as StandardRetryToken;
  return {
    acquireInitialRetryToken: async () => ((count = 0), token()),
    refreshRetryTokenForRetry: async (_token, info) => {
      if (count + 1 >= maxAttempts || (info.errorType !== 'THROTTLING' && info.errorType !== 'TRANSIENT')) throw new Error('no retry');
      count++;
      onRetry(info.errorType);
      return token();
    },
    recordSuccess: () => undefined,
  };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: Error & { $metadata?: { httpStatusCode?: number } }) => ({ name: err.name, status: err.$metadata?.httpStatusCode }),
  );

describe('quotas', () => {
  const table: QuotaTable = { reads: { rate: 2, burst: 3, apis: ['SSM.GetParameter', 'SSM.GetParameters'] } };

  it('a bucket refills at its rate, up to its burst; APIs of one group share it', () => {
    let now = 0;
    const quotas = new Quotas(table, { now: () => now });
    expect([quotas.take('SSM.GetParameter'), quotas.take('SSM.GetParameters'), quotas.take('SSM.GetParameter')]).toEqual([true, true, true]);
    expect(quotas.take('SSM.GetParameters')).toBe(false);
    now = 499;
    expect(quotas.take('SSM.GetParameter')).toBe(false);
    now = 500; // 2 a second: one token in half a second
    expect(quotas.take('SSM.GetParameter')).toBe(true);
    now = 3_600_000;
    expect(quotas.available('reads')).toBe(3);
    expect(quotas.take('SSM.PutParameter')).toBe(true); // in no group: never throttled
  });

  it('the time scale multiplies the refill rate, not the burst', () => {
    let now = 0;
    const quotas = new Quotas(table, { now: () => now, scale: 10 });
    for (let i = 0; i < 3; i++) expect(quotas.take('SSM.GetParameter')).toBe(true);
    expect(quotas.take('SSM.GetParameter')).toBe(false);
    now = 50; // 20 a second
    expect(quotas.take('SSM.GetParameter')).toBe(true);
    now = 3_600_000;
    expect(quotas.available('reads')).toBe(3);
  });

  it('higher throughput: 3,000 reads a second, GetParametersByPath held to 100 of them', () => {
    const now = () => 0;
    const standard = new Quotas(AWS_DEFAULT_QUOTAS, { now });
    for (let i = 0; i < 40; i++) expect(standard.take('SSM.GetParametersByPath')).toBe(true);
    expect([standard.take('SSM.GetParametersByPath'), standard.take('SSM.GetParameter')]).toEqual([false, false]);
    const higher = new Quotas(AWS_HIGHER_THROUGHPUT_QUOTAS, { now });
    for (let i = 0; i < 100; i++) expect(higher.take('SSM.GetParametersByPath')).toBe(true);
    expect(higher.take('SSM.GetParametersByPath')).toBe(false);
    expect(higher.take('SSM.GetParameter')).toBe(true);
    expect(higher.available('ssm-read')).toBe(2_899);
  });

  it('an eventually consistent DynamoDB read costs half a read unit', () => {
    expect(quotaCost('DynamoDB.GetItem', { ConsistentRead: true })).toBe(1);
    expect(quotaCost('DynamoDB.GetItem', {})).toBe(0.5);
    expect(quotaCost('SSM.GetParameter', {})).toBe(1);
  });
});

describe('on the wire, over quota', () => {
  let now = 0;
  /** One token in every bucket, refilled at one a second. */
  const oneEach = Object.fromEntries(Object.entries(AWS_DEFAULT_QUOTAS).map(([group, rule]) => [group, { ...rule, rate: 1, burst: 1 }]));

  beforeEach(() => {
    now = 0;
    fake.setQuotas(oneEach, { now: () => now });
    fake.addInstance(INSTANCE, ACCOUNT, 'web');
    fake.createTable('quota-table', 'k');
  });

  it("answers each service's throttling error in its status", async () => {
    const ssm = new SSMClient(config());
    const kms = new KMSClient(config());
    const ec2 = new EC2Client(config());
    const iam = new IAMClient(config());
    const dynamo = new DynamoDBClient(config());
    const calls = {
      SSM: () => ssm.send(new PutParameterCommand({ Name: '/quota/a', Value: 'v', Type: 'String', Overwrite: true })),
      KMS: () => kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/test', KeySpec: 'AES_256' })),
      EC2: () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [INSTANCE] })),
      IAM: () => iam.send(new GetRoleCommand({ RoleName: 'web' })),
      DynamoDB: () => dynamo.send(new GetItemCommand({ TableName: 'quota-table', Key: { k: { S: 'a' } }, ConsistentRead: true })),
    };
    const answers: Record<string, unknown> = {};
    for (const [service, call] of Object.entries(calls)) {
      await call();
      answers[service] = await failure(call());
    }
    expect(answers).toEqual({
      SSM: { name: 'ThrottlingException', status: 400 },
      KMS: { name: 'ThrottlingException', status: 400 },
      EC2: { name: 'RequestLimitExceeded', status: 503 },
      IAM: { name: 'Throttling', status: 400 },
      DynamoDB: { name: 'ThrottlingException', status: 400 },
    });
    const credentials = fake.assumeRole('worker', 'task-1');
    await getCallerIdentity(aws.url, credentials);
    const { status, xml } = await signedStsCall(aws.url, credentials, { Action: 'GetCallerIdentity', Version: '2011-06-15' });
    expect([status, (xml as { ErrorResponse: { Error: { Code: string } } }).ErrorResponse.Error.Code]).toEqual([400, 'Throttling']);
    expect(fake.counts()).toMatchObject({
      'SSM.PutParameter': { requests: 2, throttled: 1 },
      'EC2.DescribeInstances': { requests: 2, throttled: 1 },
      'STS.GetCallerIdentity': { requests: 2, throttled: 1 },
    });
  });

  it('the SDK classifies it as throttling and retries; the retry gets through once the bucket refills', async () => {
    const seen: string[] = [];
    const retryStrategy = retrying((errorType) => {
      seen.push(errorType);
      now += 1000; // the SDK's backoff, in the stand-in's time
    });
    const ssm = new SSMClient({ ...config(), retryStrategy });
    const ec2 = new EC2Client({ ...config(), retryStrategy });
    await ssm.send(new PutParameterCommand({ Name: '/quota/b', Value: 'v', Type: 'String' }));
    const second = await ssm.send(new PutParameterCommand({ Name: '/quota/b', Value: 'w', Type: 'String', Overwrite: true }));
    await ec2.send(new DescribeInstancesCommand({ InstanceIds: [INSTANCE] }));
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [INSTANCE] }));
    expect(second.Version).toBe(2);
    expect(described.Reservations).toHaveLength(1);
    expect(seen).toEqual(['THROTTLING', 'THROTTLING']);
    expect(fake.counts()).toMatchObject({ 'SSM.PutParameter': { requests: 3, throttled: 1 }, 'EC2.DescribeInstances': { requests: 3, throttled: 1 } });
  });
});

describe('on the wire', () => {
  it('counts every call by API', async () => {
    const ssm = new SSMClient(config());
    await ssm.send(new PutParameterCommand({ Name: '/count/a', Value: 'v', Type: 'String' }));
    await ssm.send(new GetParameterCommand({ Name: '/count/a' }));
    await failure(ssm.send(new GetParameterCommand({ Name: '/count/none' })));
    expect(fake.counts()).toEqual({ 'SSM.PutParameter': { requests: 1, throttled: 0 }, 'SSM.GetParameter': { requests: 2, throttled: 0 } });
    expect(fake.calls.slice(-3)).toEqual(['SSM.PutParameter', 'SSM.GetParameter', 'SSM.GetParameter']);
    fake.resetCounts();
    expect(fake.counts()).toEqual({});
  });

  it('delays the answers of a service given a latency', async () => {
    fake.setLatency('SSM', { ms: 120 });
    const ssm = new SSMClient(config());
    const started = performance.now();
    await failure(ssm.send(new GetParameterCommand({ Name: '/latency/none' })));
    expect(performance.now() - started).toBeGreaterThanOrEqual(115);
  });

  it('acts out an armed fault: a 5xx, a reset, an answer that never comes (after acting, for a hang)', async () => {
    const ssm = new SSMClient({ ...config(), requestHandler: { requestTimeout: 200, throwOnRequestTimeout: true } });
    const put = (name: string) => ssm.send(new PutParameterCommand({ Name: name, Value: 'v', Type: 'String' }));
    fake.arm('failure', 0);
    expect(await failure(put('/fault/failure'))).toEqual({ name: 'InternalServerError', status: 500 });
    fake.arm('network', 0);
    const reset = await put('/fault/network').catch((err: Error & { code?: string }) => err);
    expect(reset).toMatchObject({ code: 'ECONNRESET' });
    fake.arm('timeout', 0);
    expect(await failure(put('/fault/timeout'))).toMatchObject({ name: 'TimeoutError' });
    fake.arm('hang', 0);
    expect(await failure(put('/fault/hang'))).toMatchObject({ name: 'TimeoutError' });
    expect(fake.versions('/fault/timeout')).toEqual([]);
    expect(fake.versions('/fault/hang')).toHaveLength(1);
    expect(fake.versions('/fault/failure')).toEqual([]);
  });

  it('retries a faulted call through the SDK as it would a real one', async () => {
    const seen: string[] = [];
    const ssm = new SSMClient({ ...config(), retryStrategy: retrying((type) => seen.push(type)) });
    fake.arm('failure', 0, 2);
    expect((await ssm.send(new PutParameterCommand({ Name: '/fault/retried', Value: 'v', Type: 'String' }))).Version).toBe(1);
    expect(seen).toEqual(['TRANSIENT', 'TRANSIENT']);
  });

  it('refuses a DynamoDB condition it does not evaluate, loudly', async () => {
    fake.createTable('conditions', 'k');
    const dynamo = new DynamoDBClient(config());
    const put = (ConditionExpression: string) =>
      dynamo.send(new PutItemCommand({ TableName: 'conditions', Item: { k: { B: new Uint8Array([1, 2]) }, t: { N: '1' } }, ConditionExpression, ExpressionAttributeValues: { ':t': { N: '1' } } }));
    expect(await failure(put('attribute_exists(k) OR t < :t'))).toEqual({ name: 'ValidationException', status: 400 });
    expect(await failure(put('attribute_not_exists(k) OR t > :t'))).toEqual({ name: 'ValidationException', status: 400 });
    await put('attribute_not_exists(k) OR t < :t');
    const { Item } = await dynamo.send(new GetItemCommand({ TableName: 'conditions', Key: { k: { B: new Uint8Array([1, 2]) } }, ConsistentRead: true }));
    expect(Item).toEqual({ k: { B: new Uint8Array([1, 2]) }, t: { N: '1' } });
  });
});

describe('the query protocols', () => {
  beforeAll(() => {
    fake.addInstance(INSTANCE, ACCOUNT, 'web');
  });

  it('EC2 through @aws-sdk/client-ec2: an instance, its state and profile, filters, and EC2-style errors', async () => {
    const ec2 = new EC2Client(config());
    const { Reservations } = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [INSTANCE] }));
    expect(Reservations).toMatchObject([
      { OwnerId: ACCOUNT, Instances: [{ InstanceId: INSTANCE, State: { Name: 'running', Code: 16 }, IamInstanceProfile: { Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/web-profile` } }] },
    ]);
    const filtered = async (Name: string, value: string) =>
      (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [INSTANCE], Filters: [{ Name, Values: [value] }] }))).Reservations?.length;
    expect(await filtered('iam-instance-profile.arn', `arn:aws:iam::${ACCOUNT}:instance-profile/web-profile`)).toBe(1);
    expect(await filtered('iam-instance-profile.arn', `arn:aws:iam::${ACCOUNT}:instance-profile/other-profile`)).toBe(0);
    fake.setInstanceState(INSTANCE, 'stopped');
    expect(await filtered('instance-state-name', 'running')).toBe(0);
    fake.setInstanceState(INSTANCE, 'running');
    expect(await filtered('instance-state-name', 'running')).toBe(1);
    expect(await failure(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-00000000000000000'] })))).toEqual({ name: 'InvalidInstanceID.NotFound', status: 400 });
  });

  it('IAM through @aws-sdk/client-iam: a role, an instance profile, NoSuchEntity with 404', async () => {
    const iam = new IAMClient(config());
    expect((await iam.send(new GetRoleCommand({ RoleName: 'web' }))).Role).toMatchObject({ RoleName: 'web', RoleId: fake.roleId('web'), Arn: `arn:aws:iam::${ACCOUNT}:role/web` });
    expect((await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: 'web-profile' }))).InstanceProfile?.Roles).toMatchObject([{ RoleName: 'web', RoleId: fake.roleId('web') }]);
    expect(await failure(iam.send(new GetRoleCommand({ RoleName: 'nobody' })))).toEqual({ name: 'NoSuchEntityException', status: 404 });
  });

  it("the server's EC2 role resolver, over the wire", async () => {
    const clock = { now: () => 0 };
    const query = (service: 'ec2' | 'iam') =>
      new AwsQueryClient({ service, region: async () => 'us-east-1', credentials: async () => config().credentials, env: { AWS_ENDPOINT_URL: aws.url }, maxAttempts: 1 });
    const resolver = new Ec2RoleResolver(query('ec2'), query('iam'), new ExpiringCache(60_000, clock), new ExpiringCache(60_000, clock));
    expect(await resolver.resolveRole({ instanceId: INSTANCE, accountId: ACCOUNT, region: 'us-east-1' })).toEqual({ role: 'web', roleId: fake.roleId('web') });
    expect(fake.counts()).toMatchObject({ 'EC2.DescribeInstances': { requests: 1 }, 'IAM.GetInstanceProfile': { requests: 1 } });
  });

  it('a hand-signed request gets the XML EC2 sends', async () => {
    const url = new URL(aws.url);
    const call = async (body: string) => {
      const signer = new SignatureV4({ credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, region: 'us-east-1', service: 'ec2', sha256: Hash.bind(null, 'sha256') });
      const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {}, headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded' }, body });
      const response = await fetch(aws.url, { method: 'POST', headers: signed.headers, body });
      return { status: response.status, xml: new XMLParser({ parseTagValue: false }).parse(await response.text()) as Record<string, any> };
    };
    const found = await call(`Action=DescribeInstances&Version=2016-11-15&InstanceId.1=${INSTANCE}`);
    expect(found.status).toBe(200);
    expect(found.xml.DescribeInstancesResponse.reservationSet.item).toMatchObject({ ownerId: ACCOUNT, instancesSet: { item: { instanceId: INSTANCE, instanceState: { name: 'running' } } } });
    const missing = await call('Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-zz');
    expect([missing.status, missing.xml.Response.Errors.Error.Code]).toEqual([400, 'InvalidInstanceID.Malformed']);
  });
});

describe("STS's signature check", () => {
  it('answers the registered caller only for a request signed with its secret key', async () => {
    const credentials = fake.assumeRole('worker', 'task-7');
    expect(await getCallerIdentity(aws.url, credentials)).toEqual({
      Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/worker/task-7`,
      UserId: `${fake.roleId('worker')}:task-7`,
      Account: ACCOUNT,
    });
    const refused = (c: typeof credentials) => getCallerIdentity(aws.url, c).then(() => 'accepted', (err: Error & { status: number }) => [err.name, err.status]);
    expect(await refused({ ...credentials, secretAccessKey: `${credentials.secretAccessKey.slice(1)}x` })).toEqual(['SignatureDoesNotMatch', 403]);
    expect(await refused({ ...credentials, accessKeyId: 'ASIAUNKNOWNUNKNOWN00' })).toEqual(['InvalidClientTokenId', 403]);
    expect(await refused({ ...credentials, sessionToken: 'another-token' })).toEqual(['InvalidClientTokenId', 403]);
    expect(await refused({ ...credentials, sessionToken: undefined })).toEqual(['InvalidClientTokenId', 403]);
  });

  it('logs the access key each call was signed with, refused ones included', async () => {
    const credentials = fake.assumeRole('worker', 'task-keys');
    const from = fake.stsKeys.length;
    await getCallerIdentity(aws.url, credentials);
    await getCallerIdentity(aws.url, { ...credentials, accessKeyId: 'ASIANOBODYNOBODY0000' }).catch(() => undefined);
    expect(fake.stsKeys.slice(from)).toEqual([credentials.accessKeyId, 'ASIANOBODYNOBODY0000']);
  });

  it('refuses a body other than the one signed', async () => {
    const credentials = fake.assumeRole('worker', 'task-8');
    const login = await signGetCallerIdentity('any', { AWS_ENDPOINT_URL_STS: aws.url }, async () => credentials);
    const send = (body: string) => fetch(login.url, { method: 'POST', headers: login.headers, body }).then((r) => r.status);
    expect(await send(Buffer.from(login.body, 'base64').toString())).toBe(200);
    expect(await send('Action=GetCallerIdentity&Version=2011-06-16')).toBe(403);
  });

  it("serves a dssss server's IAM login: the client's signed request, forwarded", async () => {
    const server = await localFixture({ AWS_ENDPOINT_URL_STS: aws.url, DSSSS_SERVER_ID: 'dssss-stand-in', DSSSS_ALLOWED_ACCOUNTS: ACCOUNT });
    const credentials = fake.assumeRole('worker', 'task-9');
    const login = async (c: typeof credentials) =>
      server.request('POST', '/v1/auth/iam', { body: await signGetCallerIdentity('dssss-stand-in', { AWS_ENDPOINT_URL_STS: aws.url }, async () => c) });
    const accepted = await login(credentials);
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ role: 'worker' });
    expect(await errorOf(await login({ ...credentials, secretAccessKey: 'wrong' }))).toMatchObject({ status: 401, code: 'invalid_credentials' });
  });
});

describe("each instance's IMDS", () => {
  const id = 'i-0aaaaaaaaaaaaaaa1';
  let instance: ReturnType<FakeAws['addInstance']>;
  beforeAll(() => {
    instance = fake.addInstance(id, ACCOUNT, 'web');
  });
  beforeEach(() => fake.imds.fault(id, undefined));

  const token = async (instanceId = id, ttl: string | null = '60') =>
    fetch(`${aws.imdsUrl(instanceId)}/latest/api/token`, { method: 'PUT', headers: ttl === null ? {} : { 'X-aws-ec2-metadata-token-ttl-seconds': ttl } });
  const get = async (path: string, session?: string) => fetch(`${aws.imdsUrl(id)}${path}`, { headers: session === undefined ? {} : { 'X-aws-ec2-metadata-token': session } });

  it('is IMDSv2 only: a GET without a token, or with another instance\'s, is a 401; a token needs its TTL', async () => {
    expect((await get('/latest/meta-data/instance-id')).status).toBe(401);
    expect((await token(id, null)).status).toBe(400);
    expect((await token(id, '21601')).status).toBe(400);
    const other = fake.addInstance('i-0bbbbbbbbbbbbbbb2', ACCOUNT, 'web').instanceId;
    expect((await get('/latest/meta-data/instance-id', await (await token(other)).text())).status).toBe(401);
    const mine = await (await token()).text();
    expect(await (await get('/latest/meta-data/instance-id', mine)).text()).toBe(id);
  });

  it("serves the identity document, signed by the test's CA, as the dssss client fetches it", async () => {
    const document = await identityDocument(aws.imdsUrl(id));
    expect(document).toBe(instance.signedDocument());
    expect(verifyIdentityDocument(document, TrustStore.fromPems([fake.ca.certPem]))).toMatchObject({ instanceId: id, accountId: ACCOUNT, region: 'us-east-1' });
    const plain = await get('/latest/dynamic/instance-identity/document', await (await token()).text());
    expect(await plain.json()).toMatchObject({ instanceId: id, accountId: ACCOUNT });
  });

  it("serves the role's credentials, which STS knows as the instance's session of that role", async () => {
    const session = await (await token()).text();
    expect(await (await get('/latest/meta-data/iam/security-credentials/', session)).text()).toBe('web');
    const served = (await (await get('/latest/meta-data/iam/security-credentials/web', session)).json()) as Record<string, string>;
    expect(served).toMatchObject({ Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: instance.credentials.accessKeyId, Expiration: expect.stringMatching(/Z$/) });
    const identity = await getCallerIdentity(aws.url, { accessKeyId: served.AccessKeyId!, secretAccessKey: served.SecretAccessKey!, sessionToken: served.Token });
    expect(identity).toEqual({ Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/web/${id}`, UserId: `${instance.roleId}:${id}`, Account: ACCOUNT });
  });

  it("the SDK's credential provider reads them from the instance's own port", async () => {
    const saved = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = await aws.listenImds(id);
    try {
      expect(await fromInstanceMetadata()()).toMatchObject({ accessKeyId: instance.credentials.accessKeyId, sessionToken: instance.credentials.sessionToken });
    } finally {
      if (saved === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = saved;
    }
  });

  it('fails the first requests of an instance as told, and the client retries past them', async () => {
    const backoff = () => new Backoff({ forMs: 60_000, sleep: async () => undefined });
    for (const fault of [{ kind: 'error', status: 503, count: 2 }, { kind: 'refuse', count: 2 }] as const) {
      fake.imds.fault(id, fault);
      const before = fake.imds.requests(id);
      await expect(identityDocument(aws.imdsUrl(id)), fault.kind).rejects.toThrow(/IMDS/);
      expect(await identityDocument(aws.imdsUrl(id), backoff())).toBe(instance.signedDocument());
      expect(fake.imds.requests(id) - before, fault.kind).toBe(4); // the failed token request, one more, then token and document
    }
    fake.imds.fault(id, { kind: 'slow', delayMs: 150, count: 1 });
    const started = performance.now();
    expect(await identityDocument(aws.imdsUrl(id))).toBe(instance.signedDocument());
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
  });

  it('fails only the requests for a path when given one, and logs each request', async () => {
    const before = fake.imds.requestLog(id).length;
    fake.imds.fault(id, { kind: 'error', status: 403, count: 1, path: '/latest/dynamic/instance-identity/rsa2048' });
    await expect(identityDocument(aws.imdsUrl(id), new Backoff({ forMs: 60_000, sleep: async () => undefined }))).rejects.toThrow(/status 403/);
    expect(await identityDocument(aws.imdsUrl(id))).toBe(instance.signedDocument());
    expect(fake.imds.requestLog(id).slice(before)).toEqual([
      'PUT /latest/api/token',
      'GET /latest/dynamic/instance-identity/rsa2048', // 403, final: no retry however long the budget
      'PUT /latest/api/token',
      'GET /latest/dynamic/instance-identity/rsa2048',
    ]);
  });

  it('an instance whose role is detached: no profile in EC2, and a 404 for its role, as where none was attached', async () => {
    const bare = fake.addInstance('i-0ccccccccccccccc3', ACCOUNT, 'web');
    fake.detachRole(bare.instanceId);
    const { Reservations } = await new EC2Client(config()).send(new DescribeInstancesCommand({ InstanceIds: [bare.instanceId] }));
    expect(Reservations?.[0]?.Instances?.[0]).toMatchObject({ InstanceId: bare.instanceId, State: { Name: 'running' } });
    expect(Reservations?.[0]?.Instances?.[0]?.IamInstanceProfile).toBeUndefined();
    const imds = new Imds(aws.imdsUrl(bare.instanceId));
    expect(await imds.roleName(new Backoff({ forMs: 0 }))).toBeUndefined();
    const session = await (await fetch(`${aws.imdsUrl(bare.instanceId)}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    const status = (path: string) => fetch(`${aws.imdsUrl(bare.instanceId)}${path}`, { headers: { 'X-aws-ec2-metadata-token': session } }).then((r) => r.status);
    expect([await status('/latest/meta-data/iam/info'), await status('/latest/meta-data/iam/security-credentials/web')]).toEqual([404, 404]);
    expect(await identityDocument(aws.imdsUrl(bare.instanceId))).toBe(bare.signedDocument());
    // What it held is still a valid session until it expires, as AWS's credentials are.
    expect((await getCallerIdentity(aws.url, bare.credentials)).Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/web/${bare.instanceId}`);
  });

  it("signs documents with a CA given on first use: a local dssss server's, made after serve()", async () => {
    let server: Awaited<ReturnType<typeof localFixture>> | undefined;
    const local = new FakeAws({ mock: false, account: ACCOUNT, ca: () => server!.ca });
    const served = await local.serve();
    try {
      server = await localFixture({ AWS_ENDPOINT_URL_STS: served.url });
      const booted = local.addInstance(local.newInstanceId(), ACCOUNT, 'web');
      await server.registry.register(booted.instanceId, ACCOUNT, 'web');
      const login = await server.request('GET', '/v1/auth', { headers: { Authentication: await identityDocument(served.imdsUrl(booted.instanceId)) } });
      expect([login.status, ((await login.json()) as { role: string }).role]).toEqual([200, 'web']);
      expect(local.ca).toBe(server.ca);
    } finally {
      await served.close();
    }
  });
});
