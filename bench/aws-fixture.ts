// dssss on its AWS backends with every SDK client mocked (aws-sdk-client-mock on the client
// classes, so the clients runtime.ts creates are mocked too), over stateful fakes. Each
// `container()` is a fresh createRuntime: a new Lambda container sharing the same account.

import { randomBytes } from 'node:crypto';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { createApp } from '../lambda/app';
import { loadConfig } from '../lambda/config';
import { createDevCa, signIdentityDocument } from '../lambda/identity/dev-ca';
import { createRuntime } from '../lambda/runtime';
import { awsError, FakeKms, FakeParameterStore } from './aws-fakes';
import { ACCOUNT, type App } from './local-fixture';

export const KMS_KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/00000000-0000-4000-8000-000000000000`;
export const PARAMETER_PREFIX = '/dssss/';
/** The id IAM logins must sign for (DSSSS_SERVER_ID). */
export const SERVER_ID = 'dssss-bench';

export type Service = 'ssm' | 'kms' | 'ec2' | 'iam';
export const SERVICES: readonly Service[] = ['ssm', 'kms', 'ec2', 'iam'];

/** Every call made so far, by service, as command names ("GetParameter"). */
export type CallLog = Record<Service, string[]>;

export interface AwsFixture {
  readonly ssm: FakeParameterStore;
  readonly kms: FakeKms;
  /** The environment the function would get (DSSSS_* only). */
  readonly env: Readonly<Record<string, string>>;
  /** A new container; `env` adds to (or overrides) the function's environment. */
  container(env?: Readonly<Record<string, string>>): Promise<App>;
  /** A running instance with an instance profile for `role`, and its signed identity document. */
  identity(role: string): string;
  calls(): CallLog;
  restore(): void;
}

export function awsFixture(): AwsFixture {
  // Belt and braces: the mocks answer every call, but should one slip through, the SDK finds
  // credentials in the environment and never asks the instance metadata service.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'AKIDBENCHMARKONLY';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench-secret-not-a-real-key';

  const ssm = new FakeParameterStore();
  const kms = new FakeKms(KMS_KEY_ARN);
  const roles = new Map<string, string>(); // instance id -> role
  const ca = createDevCa();
  const env = {
    DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
    DSSSS_KMS_KEY_ID: KMS_KEY_ARN,
    DSSSS_PARAMETER_PREFIX: PARAMETER_PREFIX,
    DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
    DSSSS_EXTRA_CERTS: ca.certPem,
    DSSSS_SERVER_ID: SERVER_ID,
    // The audit log makes no AWS call; on stdout it would only interleave with the report.
    DSSSS_AUDIT_LOG: 'off',
  };

  const ssmMock = mockClient(SSMClient);
  ssmMock.on(GetParameterCommand).callsFake((input) => ssm.getParameter(input));
  ssmMock.on(PutParameterCommand).callsFake((input) => ssm.putParameter(input));
  ssmMock.on(DeleteParameterCommand).callsFake((input) => ssm.deleteParameter(input));
  ssmMock.on(GetParametersByPathCommand).callsFake((input) => ssm.getParametersByPath(input));

  const kmsMock = mockClient(KMSClient);
  kmsMock.on(GenerateDataKeyCommand).callsFake((input) => kms.generateDataKey(input));
  kmsMock.on(DecryptCommand).callsFake((input) => kms.decrypt(input));

  const ec2Mock = mockClient(EC2Client);
  ec2Mock.on(DescribeInstancesCommand).callsFake((input) => {
    const instanceId = input.InstanceIds?.[0] ?? '';
    const role = roles.get(instanceId);
    if (role === undefined) throw awsError('InvalidInstanceID.NotFound');
    return {
      Reservations: [
        {
          OwnerId: ACCOUNT,
          Instances: [
            { InstanceId: instanceId, State: { Name: 'running' }, IamInstanceProfile: { Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${role}-profile` } },
          ],
        },
      ],
    };
  });

  const iamMock = mockClient(IAMClient);
  iamMock.on(GetInstanceProfileCommand).callsFake((input) => {
    const role = input.InstanceProfileName?.replace(/-profile$/, '') ?? '';
    return {
      InstanceProfile: {
        InstanceProfileName: input.InstanceProfileName,
        InstanceProfileId: 'AIPABENCHMARK',
        Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${input.InstanceProfileName}`,
        Path: '/',
        CreateDate: new Date(0),
        Roles: [{ RoleName: role, RoleId: 'AROABENCHMARK', Arn: `arn:aws:iam::${ACCOUNT}:role/${role}`, Path: '/', CreateDate: new Date(0) }],
      },
    };
  });

  const mocks: Record<Service, { calls(): readonly { readonly args: readonly unknown[] }[]; restore(): void }> = {
    ssm: ssmMock,
    kms: kmsMock,
    ec2: ec2Mock,
    iam: iamMock,
  };

  return {
    ssm,
    kms,
    env,
    container: async (extra = {}) => createApp(await createRuntime(loadConfig({ ...env, ...extra }))),
    identity: (role) => {
      const instanceId = `i-${randomBytes(8).toString('hex')}`;
      roles.set(instanceId, role);
      return signIdentityDocument({ instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime: new Date().toISOString() }, ca);
    },
    calls: () =>
      Object.fromEntries(
        SERVICES.map((service) => [
          service,
          mocks[service].calls().map((call) => (call.args[0] as object).constructor.name.replace(/Command$/, '')),
        ]),
      ) as CallLog,
    restore: () => SERVICES.forEach((service) => mocks[service].restore()),
  };
}
