import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { Ec2RoleResolver } from '../../lambda/adapters/ec2-roles';
import { ExpiringCache } from '../../lambda/core/cache';

const ec2 = mockClient(EC2Client);
const iam = mockClient(IAMClient);
const clock = { time: 0, now() { return this.time; } };
const identity = { instanceId: 'i-0123456789abcdef0', accountId: '111122223333', region: 'us-east-1' };
const err = (name: string) => Object.assign(new Error(name), { name, $metadata: {} });

function resolver() {
  return new Ec2RoleResolver(new EC2Client({ region: 'us-east-1' }), new IAMClient({ region: 'us-east-1' }), new ExpiringCache(60_000, clock), new ExpiringCache(60_000, clock));
}

function instance(state = 'running', profile: string | null = 'arn:aws:iam::111122223333:instance-profile/team/web-profile') {
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        OwnerId: '111122223333',
        Instances: [{ InstanceId: identity.instanceId, State: { Name: state as 'running' }, IamInstanceProfile: profile ? { Arn: profile } : undefined }],
      },
    ],
  });
}

beforeEach(() => {
  ec2.reset();
  iam.reset();
  clock.time = 0;
  iam.on(GetInstanceProfileCommand).resolves({
    InstanceProfile: { InstanceProfileName: 'web-profile', Roles: [{ RoleName: 'web', RoleId: 'AROAEXAMPLEWEB000001' } as never], Path: '/team/', InstanceProfileId: 'x', Arn: 'a', CreateDate: new Date() },
  });
});

describe('EC2 role resolver', () => {
  it('resolves a running instance to its instance profile\'s role', async () => {
    instance();
    expect(await resolver().resolveRole(identity)).toEqual({ role: 'web', roleId: 'AROAEXAMPLEWEB000001' });
    expect(ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input).toEqual({ InstanceIds: [identity.instanceId] });
    expect(iam.commandCalls(GetInstanceProfileCommand)[0]!.args[0].input).toEqual({ InstanceProfileName: 'web-profile' });
  });

  it('answers a cached instance with no AWS call until the entry expires', async () => {
    instance();
    const r = resolver();
    await r.resolveRole(identity);
    await r.resolveRole(identity);
    expect(ec2.calls()).toHaveLength(1);
    clock.time += 60_000;
    await r.resolveRole(identity);
    expect(ec2.calls()).toHaveLength(2);
  });

  it.each(['stopped', 'pending', 'terminated'])('refuses an instance that is %s', async (state) => {
    instance(state);
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials', message: 'instance is not running' });
  });

  it('asks IAM once per instance profile: a second instance with the same profile costs one DescribeInstances only', async () => {
    instance();
    const r = resolver();
    await r.resolveRole(identity);
    ec2.reset();
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ OwnerId: '111122223333', Instances: [{ InstanceId: 'i-0000000000000000b', State: { Name: 'running' }, IamInstanceProfile: { Arn: 'arn:aws:iam::111122223333:instance-profile/team/web-profile' } }] }],
    });
    expect((await r.resolveRole({ ...identity, instanceId: 'i-0000000000000000b' })).role).toBe('web');
    expect(iam.commandCalls(GetInstanceProfileCommand)).toHaveLength(1);
  });

  it('refuses an instance with no instance profile', async () => {
    instance('running', null);
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials' });
  });

  it('refuses an instance this account does not have', async () => {
    ec2.on(DescribeInstancesCommand).rejects(err('InvalidInstanceID.NotFound'));
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials' });
  });

  it('refuses a document whose account is not the instance owner', async () => {
    instance();
    await expect(resolver().resolveRole({ ...identity, accountId: '444455556666' })).rejects.toMatchObject({ code: 'invalid_credentials' });
  });

  it('does not cache refusals or failures', async () => {
    ec2.on(DescribeInstancesCommand).rejectsOnce(err('RequestLimitExceeded'));
    const r = resolver();
    await expect(r.resolveRole(identity)).rejects.toMatchObject({ code: 'rate_limited' });
    instance();
    expect((await r.resolveRole(identity)).role).toBe('web');
  });

  it('maps an IAM outage to 503', async () => {
    instance();
    iam.on(GetInstanceProfileCommand).rejects(err('ServiceFailure'));
    await expect(resolver().resolveRole(identity)).rejects.toMatchObject({ code: 'unavailable' });
  });
});
