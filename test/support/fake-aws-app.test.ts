// The two ways into the stand-in agree, and the second carries the whole app: the probes of
// aws-probes.ts through the mocked SDK clients and over the wire give the same outcomes; and
// dssss on its AWS backends, with the SDK pointed at the stand-in by AWS_ENDPOINT_URL as the
// fleet simulation points it, logs an instance in with the document its IMDS serves, and
// with that instance's role credentials, publishes its change events to the stand-in's
// EventBridge, and rides out a failed call on the SDK's retry.
// Isolated: it patches the SDK's classes, then sets AWS_ENDPOINT_URL for the process.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signGetCallerIdentity } from '../../cli/credentials';
import { Imds } from '../../cli/imds';
import { Backoff } from '../../cli/retry';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createRuntime } from '../../lambda/runtime';
import { probe, standInTarget } from './aws-probes';
import { FakeAws, type AwsServer } from './fake-aws';

/** The client's IMDS reader, retrying within `backoff` (none by default). */
const identityDocument = (url: string, backoff = new Backoff({ forMs: 0 })) => new Imds(url).identityDocument(backoff);

const ACCOUNT = '111122223333';

describe('the mocked clients and the wire', () => {
  it('give the same outcome for every probe', async () => {
    const mocked = new FakeAws({ account: ACCOUNT });
    let viaMocks: Record<string, unknown>;
    try {
      viaMocks = await probe(standInTarget(mocked, undefined), 'mocked');
    } finally {
      mocked.restore();
    }
    const wired = new FakeAws({ mock: false, account: ACCOUNT });
    const server = await wired.serve();
    try {
      const { callerIdentity, ...viaWire } = await probe(standInTarget(wired, server.url), 'wired');
      expect(callerIdentity).toEqual([true, true, true]); // STS is served on the wire only
      expect(viaMocks).toEqual(viaWire);
      expect(Object.keys(viaWire).length).toBeGreaterThan(50);
    } finally {
      await server.close();
    }
  });
});

describe('dssss on its AWS backends, over the wire', () => {
  const fake = new FakeAws({ mock: false, account: ACCOUNT });
  let aws: AwsServer;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    aws = await fake.serve();
    // As the simulation runs it: every SDK client of the process to the stand-in.
    Object.assign(process.env, { AWS_ENDPOINT_URL: aws.url, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
    const config = loadConfig({
      AWS_ENDPOINT_URL: aws.url,
      DSSSS_BACKEND: 'aws',
      DSSSS_DISTINGUISHED_ROLES: 'dssssadmin',
      DSSSS_WRITER_ROLES: '*',
      DSSSS_KMS_KEY_ID: 'alias/dssss-test',
      DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
      DSSSS_EXTRA_CERTS: fake.ca.certPem,
      DSSSS_SERVER_ID: 'dssss-stand-in',
      DSSSS_AUDIT_LOG: 'off',
      DSSSS_READ_CACHE_SECONDS: '0',
      DSSSS_EVENT_BUS: 'dssss-changes',
    });
    app = createApp(await createRuntime(config));
  });

  afterAll(() => aws.close());

  it('logs an instance in with its IMDS document and its role credentials, and reads and writes', async () => {
    const instance = fake.addInstance(fake.newInstanceId(), ACCOUNT, 'web');
    const document = await identityDocument(aws.imdsUrl(instance.instanceId));
    const ec2Login = await app.request('/v1/auth', { headers: { Authentication: document, Accept: 'text/plain' } });
    expect(ec2Login.status).toBe(200);
    const token = await ec2Login.text();
    const put = await app.request('/v1/secret/app/db', { method: 'PUT', headers: { Reauthentication: token }, body: JSON.stringify({ Secret: 'hunter2', Roles: ['web'] }) });
    expect(put.status).toBe(200);
    expect(fake.events()).toMatchObject([{ EventBusName: 'dssss-changes', Source: 'dssss', DetailType: 'dssss change', Detail: expect.stringContaining('"name":"app/db"') }]);

    const signed = await signGetCallerIdentity('dssss-stand-in', { AWS_ENDPOINT_URL: aws.url }, async () => instance.credentials);
    const iamLogin = await app.request('/v1/auth/iam', { method: 'POST', body: JSON.stringify(signed) });
    expect(iamLogin.status).toBe(200);
    const iamToken = ((await iamLogin.json()) as { token: string; role: string }).token;
    const read = await app.request('/v1/secret/app/db', { headers: { Reauthentication: iamToken } });
    expect(await read.json()).toMatchObject({ secret: 'hunter2', roles: ['web'] });
    expect(fake.counts()).toMatchObject({
      'EC2.DescribeInstances': { requests: expect.any(Number) },
      'IAM.GetInstanceProfile': { requests: 1 },
      'STS.GetCallerIdentity': { requests: 1, throttled: 0 },
      'KMS.GenerateDataKey': { requests: 1 },
    });
  });

  it("rides out a service's 5xx on the SDK's own retry", async () => {
    const instance = fake.addInstance(fake.newInstanceId(), ACCOUNT, 'web');
    const login = await app.request('/v1/auth', { headers: { Authentication: instance.signedDocument(), Accept: 'text/plain' } });
    const token = await login.text();
    const before = fake.counts()['SSM.GetParameter']?.requests ?? 0;
    fake.arm('failure', 0);
    const read = await app.request('/v1/secret/app/db', { headers: { Reauthentication: token } });
    expect(read.status).toBe(200);
    expect(fake.counts()['SSM.GetParameter']!.requests - before).toBe(2);
  });
});
