// RoleResolver on EC2 and IAM: the instance must exist in this account and Region and be
// running; its instance profile names the role. Answers are cached per container: instance
// -> role, and instance profile -> role, so a fleet of instances sharing one profile costs
// one GetInstanceProfile per container. Also the role directory (iam:GetRole) that pins a
// secret's roles to their unique ids.

import { DescribeInstancesCommand, EC2Client, type Reservation } from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { ExpiringCache } from '../core/cache';
import { invalidCredentials } from '../core/errors';
import type { Clock, InstanceIdentity, ResolvedRole, RoleDirectory, RoleResolver } from '../ports';
import { dependencyError, errorName } from './aws-errors';

export { EC2Client, IAMClient };

const isNoSuchEntity = (err: unknown) => errorName(err) === 'NoSuchEntityException' || errorName(err) === 'NoSuchEntity';

export class Ec2RoleResolver implements RoleResolver {
  constructor(
    private readonly ec2: Pick<EC2Client, 'send'>,
    private readonly iam: Pick<IAMClient, 'send'>,
    private readonly instances: ExpiringCache<ResolvedRole>,
    private readonly profiles: ExpiringCache<ResolvedRole>,
  ) {}

  async resolveRole(identity: InstanceIdentity): Promise<ResolvedRole> {
    const cached = this.instances.get(identity.instanceId);
    if (cached !== undefined) return cached;

    let reservation: Reservation | undefined;
    try {
      const out = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [identity.instanceId] }));
      reservation = out.Reservations?.[0];
    } catch (err) {
      if (errorName(err)?.startsWith('InvalidInstanceID')) throw invalidCredentials('instance not found in this account and Region', 'unknown_instance');
      throw dependencyError(err, 'EC2', 'ec2');
    }
    const instance = reservation?.Instances?.find((i) => i.InstanceId === identity.instanceId);
    if (!instance) throw invalidCredentials('instance not found in this account and Region', 'unknown_instance');
    if (reservation?.OwnerId !== undefined && reservation.OwnerId !== identity.accountId) {
      throw invalidCredentials('the document\'s account is not the instance\'s account', 'account_mismatch');
    }
    if (instance.State?.Name !== 'running') throw invalidCredentials('instance is not running', 'instance_not_running');
    const profileArn = instance.IamInstanceProfile?.Arn;
    if (!profileArn) throw invalidCredentials('instance has no IAM instance profile', 'no_instance_profile');

    const role = this.profiles.get(profileArn) ?? (await this.profileRole(profileArn));
    this.profiles.set(profileArn, role);
    this.instances.set(identity.instanceId, role);
    return role;
  }

  private async profileRole(profileArn: string): Promise<ResolvedRole> {
    // arn:aws:iam::ACCOUNT:instance-profile[/path]/NAME: the name is the last segment.
    const profileName = profileArn.slice(profileArn.lastIndexOf('/') + 1);
    let role;
    try {
      const { InstanceProfile } = await this.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: profileName }));
      role = InstanceProfile?.Roles?.[0];
    } catch (err) {
      if (isNoSuchEntity(err)) throw invalidCredentials('instance profile not found', 'no_instance_profile');
      throw dependencyError(err, 'IAM', 'iam');
    }
    if (!role?.RoleName) throw invalidCredentials('instance profile has no role', 'no_instance_profile');
    return { role: role.RoleName, roleId: role.RoleId };
  }
}

/** iam:GetRole, for the deployment's own account; answers kept a minute. */
export class IamRoleDirectory implements RoleDirectory {
  private readonly ids: ExpiringCache<string>;

  constructor(
    private readonly iam: Pick<IAMClient, 'send'>,
    clock: Clock,
  ) {
    this.ids = new ExpiringCache<string>(60_000, clock);
  }

  async roleId(account: string, name: string): Promise<string | undefined> {
    const key = `${account}:${name}`;
    const cached = this.ids.get(key);
    if (cached !== undefined) return cached;
    try {
      const { Role } = await this.iam.send(new GetRoleCommand({ RoleName: name }));
      if (!Role?.RoleId) return undefined;
      this.ids.set(key, Role.RoleId);
      return Role.RoleId;
    } catch (err) {
      if (isNoSuchEntity(err)) return undefined;
      throw dependencyError(err, 'IAM', 'iam');
    }
  }
}
