// An AWS account on moto_server (on a free 127.0.0.1 port, as `npm run test:aws` starts it)
// for the suites that run the server, or a cold container, on the AWS backends over the
// wire: a KMS key, the bookkeeping table, roles, an instance profile, running instances, a
// development CA for their identity documents, and an assumed role for IAM logins. Nothing
// leaves 127.0.0.1.

import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeImagesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { signGetCallerIdentity, type IamLoginBody } from '../cli/credentials';
import { createDevCa, signIdentityDocument } from '../lambda/identity/dev-ca';
import { assumeRoleOnMoto, createBookkeepingTable, startMotoServer } from '../test/aws/moto';

/** moto's own account. */
export const MOTO_ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const TESTING = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** One request moto received, as its recorder wrote it down. */
export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface MotoAccount {
  readonly endpoint: string;
  /** The AWS_* settings of a process that talks to moto (Region, credentials, endpoint). */
  readonly awsEnv: Readonly<Record<string, string>>;
  /** The environment of a dssss server on this account, as the stack configures the function (DSSSS_*). */
  serverEnv(prefix: string): Record<string, string>;
  /** A running instance whose instance profile carries `role`, launched in moto, and its signed identity document. */
  launch(role: string): Promise<string>;
  /** Credentials of an assumed-role session of `role` (moto as STS). */
  assumeRole(role: string, session: string): Promise<AwsCredentials>;
  /** A GetCallerIdentity request signed with `credentials` for the server id, as `dssss login --method iam` sends it. */
  iamLoginBody(credentials: AwsCredentials): Promise<IamLoginBody>;
  /** Records what moto receives while `action` runs. */
  record(action: () => Promise<void>): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

export const BENCH_SERVER_ID = 'dssss-bench';
export const BENCH_ROLES = ['web', 'worker', 'dssssadmin'] as const;

export async function motoAccount(): Promise<MotoAccount> {
  const work = await mkdtemp(join(tmpdir(), 'dssss-bench-moto-'));
  const recording = join(work, 'recording.jsonl');
  const moto = await startMotoServer({ MOTO_RECORDER_FILEPATH: recording });
  try {
    const endpoint = moto.endpoint;
    const clientConfig = { endpoint, region: REGION, credentials: TESTING };
    const kms = new KMSClient(clientConfig);
    const ec2 = new EC2Client(clientConfig);
    const iam = new IAMClient(clientConfig);
    const dynamo = new DynamoDBClient(clientConfig);

    const keyArn = (await kms.send(new CreateKeyCommand({ Description: 'dssss bench' }))).KeyMetadata!.Arn!;
    const table = `dssss-bench-${randomBytes(3).toString('hex')}`;
    await createBookkeepingTable(dynamo, table);
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: MOTO_ACCOUNT }, Action: 'sts:AssumeRole' }] });
    const profiles = new Map<string, string>();
    for (const role of BENCH_ROLES) {
      await iam.send(new CreateRoleCommand({ RoleName: role, AssumeRolePolicyDocument: trust }));
      const profile = `${role}-profile`;
      await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: profile }));
      await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: profile, RoleName: role }));
      profiles.set(role, profile);
    }
    const imageId = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images![0]!.ImageId!;
    const ca = createDevCa();
    const awsEnv = {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: TESTING.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TESTING.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const motoApi = async (action: string) => {
      const response = await fetch(`${endpoint}/moto-api/recorder/${action}`, { method: 'POST' });
      const text = await response.text();
      if (!response.ok) throw new Error(`moto recorder ${action}: ${response.status}`);
      return text;
    };

    return {
      endpoint,
      awsEnv,
      serverEnv: (prefix) => ({
        DSSSS_BACKEND: 'aws',
        DSSSS_KMS_KEY_ID: keyArn,
        DSSSS_PARAMETER_PREFIX: prefix,
        DSSSS_ALLOWED_ACCOUNTS: MOTO_ACCOUNT,
        DSSSS_DISTINGUISHED_ROLES: 'dssssadmin',
        DSSSS_WRITER_ROLES: '*',
        DSSSS_BOOKKEEPING_TABLE: table,
        DSSSS_SERVER_ID: BENCH_SERVER_ID,
        DSSSS_EXTRA_CERTS: ca.certPem,
      }),
      launch: async (role) => {
        const profile = profiles.get(role);
        if (profile === undefined) throw new Error(`bench: no instance profile for ${role}`);
        const run = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, IamInstanceProfile: { Name: profile } }));
        const instanceId = run.Instances![0]!.InstanceId!;
        return signIdentityDocument({ instanceId, accountId: MOTO_ACCOUNT, region: REGION, pendingTime: new Date().toISOString() }, ca);
      },
      assumeRole: (role, session) => assumeRoleOnMoto(endpoint, MOTO_ACCOUNT, role, session, TESTING),
      iamLoginBody: (credentials) => signGetCallerIdentity(BENCH_SERVER_ID, awsEnv, async () => credentials),
      record: async (action) => {
        await motoApi('reset-recording');
        await motoApi('start-recording');
        try {
          await action();
        } finally {
          await motoApi('stop-recording');
        }
        const text = await readFile(recording, 'utf8');
        return text
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => {
            const entry = JSON.parse(line) as { method: string; url: string; headers: Record<string, string>; body: string | null; body_encoded: boolean };
            return {
              method: entry.method,
              url: entry.url,
              headers: entry.headers,
              body: Buffer.from(entry.body ?? '', entry.body_encoded ? 'base64' : 'utf8'),
            };
          });
      },
      close: async () => {
        for (const client of [kms, ec2, iam, dynamo]) client.destroy();
        moto.stop();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    moto.stop();
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/** What a recorded request did, for reports: "SSM.GetParameter", "EC2.DescribeInstances", "STS.GetCallerIdentity". */
export function describeRequest(request: RecordedRequest): string {
  const header = (name: string) => Object.entries(request.headers).find(([key]) => key.toLowerCase() === name)?.[1];
  const target = header('x-amz-target');
  const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(header('authorization') ?? '')?.[1] ?? '?';
  const service = { ssm: 'SSM', kms: 'KMS', dynamodb: 'DynamoDB', ec2: 'EC2', iam: 'IAM', sts: 'STS' }[scope] ?? scope;
  if (target) return `${service}.${target.split('.').at(-1)}`;
  const action = new URLSearchParams(request.body.toString('utf8')).get('Action') ?? new URL(request.url).searchParams.get('Action');
  return `${service}.${action ?? request.method}`;
}
