// dssss on its AWS backends over the shared stand-in (test/support/fake-aws.ts): Parameter
// Store and KMS through the SDK clients mocked at the class (so the clients runtime.ts
// creates are mocked too), EC2 and IAM over their query protocol to the same stand-in on
// loopback (AWS_ENDPOINT_URL_EC2 and _IAM, for this process), and STS there too (the
// function's AWS_ENDPOINT_URL_STS). Each `container()` is a fresh createRuntime: a new
// Lambda container sharing the same account.

import { randomBytes } from 'node:crypto';
import { createApp } from '../lambda/app';
import { loadConfig } from '../lambda/config';
import { createDevCa, signIdentityDocument } from '../lambda/identity/dev-ca';
import { createRuntime } from '../lambda/runtime';
import { FakeAws } from '../test/support/fake-aws';
import { ACCOUNT, type App } from './local-fixture';

export const KMS_KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/00000000-0000-4000-8000-000000000000`;
export const PARAMETER_PREFIX = '/dssss/';
/** The id IAM logins must sign for (DSSSS_SERVER_ID). */
export const SERVER_ID = 'dssss-bench';

export type Service = 'ssm' | 'kms' | 'ec2' | 'iam' | 'sts';
export const SERVICES: readonly Service[] = ['ssm', 'kms', 'ec2', 'iam', 'sts'];

/** Every call made so far, by service, as command names ("GetParameter"). */
export type CallLog = Record<Service, string[]>;

export interface AwsFixture {
  readonly aws: FakeAws;
  /** The stand-in on loopback: EC2, IAM and STS for the containers. */
  readonly url: string;
  /** The environment the function would get (DSSSS_* only). */
  readonly env: Readonly<Record<string, string>>;
  /** A new container; `env` adds to (or overrides) the function's environment. */
  container(env?: Readonly<Record<string, string>>): Promise<App>;
  /** A running instance with an instance profile for `role`, and its signed identity document. */
  identity(role: string): string;
  calls(): CallLog;
  /** Undoes the mocks, stops the loopback server and puts the environment back. */
  restore(): Promise<void>;
}

export async function awsFixture(): Promise<AwsFixture> {
  // Belt and braces: the mocks answer every call, but should one slip through, the SDK finds
  // credentials in the environment and never asks the instance metadata service.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'AKIDBENCHMARKONLY';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench-secret-not-a-real-key';

  const aws = new FakeAws({ account: ACCOUNT });
  const wire = await aws.serve();
  const saved = { AWS_ENDPOINT_URL_EC2: process.env.AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL_IAM: process.env.AWS_ENDPOINT_URL_IAM };
  Object.assign(process.env, { AWS_ENDPOINT_URL_EC2: wire.url, AWS_ENDPOINT_URL_IAM: wire.url });
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
    // IAM logins are forwarded to the stand-in's STS, which checks their signatures.
    AWS_ENDPOINT_URL_STS: wire.url,
  };

  return {
    aws,
    url: wire.url,
    env,
    container: async (extra = {}) => createApp(await createRuntime(loadConfig({ ...env, ...extra }))),
    identity: (role) => {
      const instanceId = `i-${randomBytes(8).toString('hex')}`;
      aws.addInstance(instanceId, ACCOUNT, role);
      return signIdentityDocument({ instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime: new Date().toISOString() }, ca);
    },
    calls: () => {
      const log: CallLog = { ssm: [], kms: [], ec2: [], iam: [], sts: [] };
      for (const call of aws.calls) {
        const [service = '', command = ''] = call.split('.');
        const calls = log[service.toLowerCase() as Service] as string[] | undefined;
        if (calls === undefined) throw new Error(`the benchmark's fixture made an unexpected ${call} call`);
        calls.push(command);
      }
      return log;
    },
    restore: async () => {
      aws.restore();
      await wire.close();
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    },
  };
}
