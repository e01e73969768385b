// The EC2 role resolver and the IAM role directory over the wire: their query-protocol
// clients (aws-query.ts) against the shared stand-in's EC2 and IAM on 127.0.0.1, as they
// reach AWS, retries and deadlines included. moto_server runs the same in `npm run test:aws`.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AwsQueryClient } from '../../lambda/adapters/aws-query';
import { Ec2RoleResolver, IamRoleDirectory } from '../../lambda/adapters/ec2-roles';
import { ExpiringCache } from '../../lambda/core/cache';
import { FakeAws, type AwsServer } from '../support/fake-aws';

const ACCOUNT = '111122223333';
const fake = new FakeAws({ mock: false, account: ACCOUNT });
const world = fake.snapshot();
let aws: AwsServer;
const clock = { time: 0, now() { return this.time; } };

/** A client as the runtime builds one, with deadlines and backoff short enough for a test of them. */
function client(service: 'ec2' | 'iam') {
  return new AwsQueryClient({
    service,
    region: async () => 'us-east-1',
    credentials: async () => ({ accessKeyId: 'test', secretAccessKey: 'test' }),
    env: { AWS_ENDPOINT_URL: aws.url },
    connectionTimeoutMs: 200,
    requestTimeoutMs: 300,
    backoffScale: 0.01,
  });
}

function resolver() {
  return new Ec2RoleResolver(client('ec2'), client('iam'), new ExpiringCache(60_000, clock), new ExpiringCache(60_000, clock));
}

function launch(state = 'running') {
  const instance = fake.addInstance(fake.newInstanceId(), ACCOUNT, 'web', state);
  return { instance, identity: { instanceId: instance.instanceId, accountId: ACCOUNT, region: 'us-east-1' } };
}

/** Changes what the stand-in's world holds for an instance's profile (a path in its ARN). */
function editProfile(instanceId: string, change: (profile: { arn: string }) => void) {
  const state = fake.snapshot();
  change(state.instances.get(instanceId)!.profile!);
  fake.reset(state);
}

beforeAll(async () => {
  aws = await fake.serve();
});

afterAll(() => aws.close());

beforeEach(() => {
  fake.reset(world);
  fake.resetCounts();
  clock.time = 0;
});

describe('EC2 role resolver', () => {
  it("resolves a running instance to its instance profile's role", async () => {
    const { instance, identity } = launch();
    expect(await resolver().resolveRole(identity)).toEqual({ role: 'web', roleId: instance.roleId });
    expect(fake.calls).toEqual(['EC2.DescribeInstances', 'IAM.GetInstanceProfile']);
  });

  it('reads the profile name after a path', async () => {
    const { instance, identity } = launch();
    editProfile(instance.instanceId, (profile) => (profile.arn = `arn:aws:iam::${ACCOUNT}:instance-profile/team/web-profile`));
    expect(await resolver().resolveRole(identity)).toEqual({ role: 'web', roleId: instance.roleId });
  });

  it('answers a cached instance with no AWS call until the entry expires', async () => {
    const { identity } = launch();
    const r = resolver();
    await r.resolveRole(identity);
    await r.resolveRole(identity);
    expect(fake.counts()['EC2.DescribeInstances']?.requests).toBe(1);
    clock.time += 60_000;
    await r.resolveRole(identity);
    expect(fake.counts()['EC2.DescribeInstances']?.requests).toBe(2);
  });

  it.each(['stopped', 'pending', 'terminated'])('refuses an instance that is %s', async (state) => {
    const { identity } = launch(state);
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials', message: 'instance is not running' });
  });

  it('asks IAM once per instance profile: a second instance with the same profile costs one DescribeInstances only', async () => {
    const r = resolver();
    await r.resolveRole(launch().identity);
    expect((await r.resolveRole(launch().identity)).role).toBe('web');
    expect(fake.counts()['EC2.DescribeInstances']?.requests).toBe(2);
    expect(fake.counts()['IAM.GetInstanceProfile']?.requests).toBe(1);
  });

  it('refuses an instance with no instance profile', async () => {
    const { instance, identity } = launch();
    fake.detachRole(instance.instanceId);
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials', message: 'instance has no IAM instance profile' });
  });

  it('refuses an instance this account does not have', async () => {
    await expect(resolver().resolveRole({ instanceId: 'i-0000000000000000f', accountId: ACCOUNT, region: 'us-east-1' })).rejects.toMatchObject({
      code: 'invalid_credentials',
      message: 'instance not found in this account and Region',
    });
  });

  it('refuses a document whose account is not the instance owner', async () => {
    const { identity } = launch();
    await expect(resolver().resolveRole({ ...identity, accountId: '444455556666' })).rejects.toMatchObject({ code: 'invalid_credentials' });
  });

  it('refuses another account claiming an instance this container has cached: the cache never skips the owner check', async () => {
    const { identity } = launch();
    const r = resolver();
    await r.resolveRole(identity);
    await expect(r.resolveRole({ ...identity, accountId: '444455556666' })).rejects.toMatchObject({ code: 'invalid_credentials', detail: { reason: 'account_mismatch' } });
  });

  it('leaves a throttle to the caller at once: a 429, one request, and the refusal is not cached', async () => {
    const { identity } = launch();
    fake.arm('throttle', 0);
    const r = resolver();
    await expect(r.resolveRole(identity)).rejects.toMatchObject({ code: 'rate_limited', status: 429 });
    expect(fake.counts()['EC2.DescribeInstances']).toEqual({ requests: 1, throttled: 1 });
    expect((await r.resolveRole(identity)).role).toBe('web');
  });

  it('rides out a 5xx with a retry, as the SDK clients do', async () => {
    const { identity } = launch();
    fake.arm('failure', 0);
    expect((await resolver().resolveRole(identity)).role).toBe('web');
    expect(fake.counts()['EC2.DescribeInstances']?.requests).toBe(2);
  });

  it('maps an IAM outage to 503', async () => {
    const { identity } = launch();
    fake.arm('failure', 1, 3);
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'unavailable', status: 503 });
    expect(fake.counts()['IAM.GetInstanceProfile']?.requests).toBe(3);
  });

  it.each(['timeout', 'hang', 'network'] as const)('cuts off a %s within its deadlines, three attempts in all: a 503', async (kind) => {
    const { identity } = launch();
    fake.arm(kind, 0, 3);
    const started = Date.now();
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'unavailable', status: 503 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(fake.counts()['EC2.DescribeInstances']?.requests).toBe(3);
  });
});

describe('IAM role directory', () => {
  it("gives a role's unique id, kept a minute", async () => {
    const id = fake.addRole('billing');
    const directory = new IamRoleDirectory(client('iam'), clock);
    expect(await directory.roleId(ACCOUNT, 'billing')).toBe(id);
    expect(await directory.roleId(ACCOUNT, 'billing')).toBe(id);
    expect(fake.counts()['IAM.GetRole']?.requests).toBe(1);
  });

  it('answers undefined for a role that does not exist (NoSuchEntity)', async () => {
    expect(await new IamRoleDirectory(client('iam'), clock).roleId(ACCOUNT, 'nobody')).toBeUndefined();
  });
});
