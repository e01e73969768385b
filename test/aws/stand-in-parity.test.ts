// The shared AWS stand-in (test/support/fake-aws.ts), served on the wire, answers as
// moto_server does for every behaviour the adapters rely on: the same probes
// (test/support/aws-probes.ts), through the same SDK clients, against both, outcomes
// compared. Where moto and AWS disagree the stand-in follows AWS; each such probe is listed
// below with what each answers and why, and moto is held to its own answer, so a moto
// upgrade that closes the gap shows here.

import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { probe, signedStsCall, standInTarget, type Outcome, type ProbeTarget } from '../support/aws-probes';
import { FakeAws, type AwsServer } from '../support/fake-aws';

const endpoint = inject('awsEndpoint');
const MOTO_ACCOUNT = '123456789012';
const client = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };

/**
 * Probes where moto is not AWS. `aws` is what AWS answers (and the stand-in with it), `moto`
 * what moto_server 5.2.1 answers.
 */
const MOTO_IS_NOT_AWS: Record<string, { aws: Outcome; moto: Outcome; why: string }> = {
  intelligentSmallTier: {
    aws: 'Standard',
    moto: 'Intelligent-Tiering',
    why: 'PutParameter answers the tier the parameter landed in; moto echoes the one requested',
  },
  intelligentLargeTier: {
    aws: 'Advanced',
    moto: 'Intelligent-Tiering',
    why: 'Intelligent-Tiering stores a value over 4 KB as Advanced (Parameter Store, "Managing parameter tiers")',
  },
  standardOverLimit: {
    aws: { error: 'ValidationException' },
    moto: expect.objectContaining({ Version: 1, Tier: 'Standard' }),
    why: 'Standard parameters hold at most 4 KB; moto has no size limits',
  },
  overLimit: {
    aws: { error: 'ValidationException' },
    moto: expect.objectContaining({ Version: 1 }),
    why: 'Advanced parameters hold at most 8 KB',
  },
  pathBadToken: {
    aws: { error: 'InvalidNextToken' },
    moto: { error: 'SyntaxError' },
    why: 'Parameter Store refuses a token it did not issue (InvalidNextToken); moto fails with a 500 page the SDK cannot parse',
  },
  decryptGarbage: {
    aws: { error: 'InvalidCiphertextException' },
    moto: { error: 'AccessDeniedException' },
    why: 'KMS names a blob it cannot open InvalidCiphertextException',
  },
  describeMalformed: {
    aws: { error: 'InvalidInstanceID.Malformed' },
    moto: { error: 'InvalidInstanceID.NotFound' },
    why: 'EC2 tells a malformed id from an unknown one',
  },
  dynamoUnusedValue: {
    aws: { error: 'ValidationException' },
    moto: 'put',
    why: 'DynamoDB refuses ExpressionAttributeValues the expressions do not use, as it does unused names (moto checks only names)',
  },
};

let keyId: string;
let standIn: FakeAws;
let server: AwsServer;

beforeAll(async () => {
  keyId = (await new KMSClient(client).send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  standIn = new FakeAws({ mock: false, account: MOTO_ACCOUNT });
  server = await standIn.serve();
});

afterAll(() => server.close());

const motoTarget: ProbeTarget = {
  endpoint,
  kmsKeyId: '',
  account: MOTO_ACCOUNT,
  async instanceWithRole(role) {
    const iam = new IAMClient(client);
    await createRole(role);
    await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: `${role}-profile` }));
    await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: `${role}-profile`, RoleName: role }));
    // moto takes any well-formed image id.
    const run = await new EC2Client(client).send(new RunInstancesCommand({ ImageId: 'ami-12c6146b', MinCount: 1, MaxCount: 1, IamInstanceProfile: { Name: `${role}-profile` } }));
    return run.Instances![0]!.InstanceId!;
  },
  async table(name, key) {
    await new DynamoDBClient(client).send(
      new CreateTableCommand({ TableName: name, BillingMode: 'PAY_PER_REQUEST', KeySchema: [{ AttributeName: key, KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }] }),
    );
  },
  async session(role, session) {
    await createRole(role);
    const { status, xml } = await signedStsCall(endpoint, client.credentials, {
      Action: 'AssumeRole',
      Version: '2011-06-15',
      RoleArn: `arn:aws:iam::${MOTO_ACCOUNT}:role/${role}`,
      RoleSessionName: session,
    });
    expect(status).toBe(200);
    const c = (xml as { AssumeRoleResponse: { AssumeRoleResult: { Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string } } } }).AssumeRoleResponse.AssumeRoleResult.Credentials;
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  },
};

async function createRole(role: string): Promise<void> {
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: MOTO_ACCOUNT }, Action: 'sts:AssumeRole' }] });
  await new IAMClient(client).send(new CreateRoleCommand({ RoleName: role, AssumeRolePolicyDocument: trust })).catch((err: Error) => {
    if (err.name !== 'EntityAlreadyExistsException') throw err;
  });
}

describe('the shared AWS stand-in against moto_server', () => {
  it('answers every probe as moto does, or as AWS does where moto does not', async () => {
    const run = randomBytes(4).toString('hex');
    const motoOutcomes = await probe({ ...motoTarget, kmsKeyId: keyId }, `moto-${run}`);
    const standInOutcomes = await probe(standInTarget(standIn, server.url, keyId), `stand-in-${run}`);
    expect(Object.keys(standInOutcomes).sort()).toEqual(Object.keys(motoOutcomes).sort());
    // Every probe's pair side by side, so one failure shows all the differences.
    const expected: Record<string, Outcome> = {};
    const moto: Record<string, Outcome> = {};
    for (const key of Object.keys(motoOutcomes)) {
      const known = MOTO_IS_NOT_AWS[key];
      expected[key] = known ? known.aws : motoOutcomes[key];
      moto[key] = known ? known.moto : motoOutcomes[key];
    }
    expect(motoOutcomes, 'moto, where it is not AWS, as listed').toEqual(moto);
    expect(standInOutcomes, 'the stand-in: as moto, or as AWS where moto is not').toEqual(expected);
    // And the probes mean something: the outcomes the adapters rely on.
    expect(standInOutcomes).toMatchObject({
      createAgain: { error: 'ParameterAlreadyExists' },
      missing: { error: 'ParameterNotFound' },
      missingVersion: { error: 'ParameterVersionNotFound' },
      pathPagesRecursive: [[10, 3], expect.any(Array)],
      pathPagesOneLevel: [[10, 2], expect.any(Array)],
      historyPages: expect.any(Array),
      historyKeeps100: [100, 2, 101],
      dataKey: [32, true, { error: 'InvalidCiphertextException' }, { error: 'InvalidCiphertextException' }],
      describe: [{ owner: true, instances: [[true, 'running', true]] }],
      describeUnknown: { error: 'InvalidInstanceID.NotFound' },
      getRoleMissing: { error: 'NoSuchEntityException' },
      dynamoCreateAgain: { error: 'ConditionalCheckFailedException' },
      dynamoOlder: { error: 'ConditionalCheckFailedException' },
      callerIdentity: [true, true, true],
    });
  });
});
