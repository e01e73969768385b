// RoleResolver on EC2 and IAM: the instance must exist in this account and Region and be
// running; its instance profile names the role. Answers are cached per container.

import { DescribeInstancesCommand, EC2Client, type Reservation } from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import type { ExpiringCache } from '../core/cache';
import { invalidCredentials } from '../core/errors';
import type { InstanceIdentity, RoleResolver } from '../ports';
import { dependencyError, errorName } from './aws-errors';

export { EC2Client, IAMClient };

export class Ec2RoleResolver implements RoleResolver {
  constructor(
    private readonly ec2: Pick<EC2Client, 'send'>,
    private readonly iam: Pick<IAMClient, 'send'>,
    private readonly cache: ExpiringCache<string>,
  ) {}

  async resolveRole(identity: InstanceIdentity): Promise<string> {
    const cached = this.cache.get(identity.instanceId);
    if (cached !== undefined) return cached;

    let reservation: Reservation | undefined;
    try {
      const out = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [identity.instanceId] }));
      reservation = out.Reservations?.[0];
    } catch (err) {
      if (errorName(err)?.startsWith('InvalidInstanceID')) throw invalidCredentials('instance not found in this account and Region');
      throw dependencyError(err, 'EC2');
    }
    const instance = reservation?.Instances?.find((i) => i.InstanceId === identity.instanceId);
    if (!instance) throw invalidCredentials('instance not found in this account and Region');
    if (reservation?.OwnerId !== undefined && reservation.OwnerId !== identity.accountId) {
      throw invalidCredentials('the document\'s account is not the instance\'s account');
    }
    if (instance.State?.Name !== 'running') throw invalidCredentials('instance is not running');
    const profileArn = instance.IamInstanceProfile?.Arn;
    if (!profileArn) throw invalidCredentials('instance has no IAM instance profile');

    // arn:aws:iam::ACCOUNT:instance-profile[/path]/NAME: the name is the last segment.
    const profileName = profileArn.slice(profileArn.lastIndexOf('/') + 1);
    let role: string | undefined;
    try {
      const { InstanceProfile } = await this.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: profileName }));
      role = InstanceProfile?.Roles?.[0]?.RoleName;
    } catch (err) {
      if (errorName(err) === 'NoSuchEntityException' || errorName(err) === 'NoSuchEntity') {
        throw invalidCredentials('instance profile not found');
      }
      throw dependencyError(err, 'IAM');
    }
    if (!role) throw invalidCredentials('instance profile has no role');
    this.cache.set(identity.instanceId, role);
    return role;
  }
}
