// RoleResolver on EC2 and IAM: the instance must exist in this account and Region and be
// running; its instance profile names the role. Answers are cached per container: instance
// -> role, and instance profile -> role, so a fleet of instances sharing one profile costs
// one GetInstanceProfile per container. Also the role directory (iam:GetRole) that pins a
// secret's roles to their unique ids. EC2 and IAM are reached over their query protocol
// (aws-query.ts): ec2:DescribeInstances, iam:GetInstanceProfile and iam:GetRole, nothing else.

import { ExpiringCache } from '../core/cache';
import { invalidCredentials } from '../core/errors';
import type { Clock, InstanceIdentity, ResolvedRole, RoleDirectory, RoleResolver } from '../ports';
import { dependencyError, errorName } from './aws-errors';
import { at, items, text, type AwsQueryClient } from './aws-query';

/** The one call each client makes here: an action with its parameters, an answer as XML. */
export type QueryApi = Pick<AwsQueryClient, 'call'>;

const isNoSuchEntity = (err: unknown) => errorName(err) === 'NoSuchEntityException' || errorName(err) === 'NoSuchEntity';

export class Ec2RoleResolver implements RoleResolver {
  constructor(
    private readonly ec2: QueryApi,
    private readonly iam: QueryApi,
    private readonly instances: ExpiringCache<ResolvedRole>,
    private readonly profiles: ExpiringCache<ResolvedRole>,
  ) {}

  async resolveRole(identity: InstanceIdentity): Promise<ResolvedRole> {
    // Keyed by the account the caller claims too: a hit must never skip the owner check below.
    const key = `${identity.accountId}:${identity.instanceId}`;
    const cached = this.instances.get(key);
    if (cached !== undefined) return cached;

    let reservation: Record<string, unknown> | undefined;
    try {
      const out = await this.ec2.call('DescribeInstances', { 'InstanceId.1': identity.instanceId });
      reservation = items(at(out, 'DescribeInstancesResponse', 'reservationSet'), 'item')[0];
    } catch (err) {
      if (errorName(err)?.startsWith('InvalidInstanceID')) throw invalidCredentials('instance not found in this account and Region', 'unknown_instance');
      throw dependencyError(err, 'EC2', 'ec2');
    }
    const instance = items(reservation?.instancesSet, 'item').find((i) => text(i.instanceId) === identity.instanceId);
    if (!instance) throw invalidCredentials('instance not found in this account and Region', 'unknown_instance');
    if (text(reservation?.ownerId) !== identity.accountId) {
      throw invalidCredentials('the document\'s account is not the instance\'s account', 'account_mismatch');
    }
    if (text(at(instance, 'instanceState', 'name')) !== 'running') throw invalidCredentials('instance is not running', 'instance_not_running');
    const profileArn = text(at(instance, 'iamInstanceProfile', 'arn'));
    if (!profileArn) throw invalidCredentials('instance has no IAM instance profile', 'no_instance_profile');

    const role = this.profiles.get(profileArn) ?? (await this.profileRole(profileArn));
    this.profiles.set(profileArn, role);
    this.instances.set(key, role);
    return role;
  }

  private async profileRole(profileArn: string): Promise<ResolvedRole> {
    // arn:aws:iam::ACCOUNT:instance-profile[/path]/NAME: the name is the last segment.
    const profileName = profileArn.slice(profileArn.lastIndexOf('/') + 1);
    let role: Record<string, unknown> | undefined;
    try {
      const out = await this.iam.call('GetInstanceProfile', { InstanceProfileName: profileName });
      role = items(at(out, 'GetInstanceProfileResponse', 'GetInstanceProfileResult', 'InstanceProfile', 'Roles'), 'member')[0];
    } catch (err) {
      if (isNoSuchEntity(err)) throw invalidCredentials('instance profile not found', 'no_instance_profile');
      throw dependencyError(err, 'IAM', 'iam');
    }
    const roleName = text(role?.RoleName);
    if (!roleName) throw invalidCredentials('instance profile has no role', 'no_instance_profile');
    return { role: roleName, roleId: text(role?.RoleId) };
  }
}

/** iam:GetRole, for the deployment's own account; answers kept a minute. */
export class IamRoleDirectory implements RoleDirectory {
  private readonly ids: ExpiringCache<string>;

  constructor(
    private readonly iam: QueryApi,
    clock: Clock,
  ) {
    this.ids = new ExpiringCache<string>(60_000, clock);
  }

  async roleId(account: string, name: string): Promise<string | undefined> {
    const key = `${account}:${name}`;
    const cached = this.ids.get(key);
    if (cached !== undefined) return cached;
    try {
      const out = await this.iam.call('GetRole', { RoleName: name });
      const roleId = text(at(out, 'GetRoleResponse', 'GetRoleResult', 'Role', 'RoleId'));
      if (!roleId) return undefined;
      this.ids.set(key, roleId);
      return roleId;
    } catch (err) {
      if (isNoSuchEntity(err)) return undefined;
      throw dependencyError(err, 'IAM', 'iam');
    }
  }
}
