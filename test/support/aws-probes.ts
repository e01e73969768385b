// One set of probes of what dssss's adapters rely on, through the real SDK clients: run
// against moto_server and against the stand-in (test/aws/stand-in-parity.test.ts), and
// against the stand-in's mocked clients and its wire (test/support/fake-aws.test.ts), their
// outcomes compared. Each outcome keeps only what the adapters read, or the error's name:
// ids, times and continuation tokens differ between any two AWSes and are never compared.

import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand, EC2Client, type DescribeInstancesCommandInput } from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetInstanceProfileCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  PutParameterCommand,
  SSMClient,
  type ParameterTier,
} from '@aws-sdk/client-ssm';
import { XMLParser } from 'fast-xml-parser';
import type { FakeAws } from './fake-aws';

export type Outcome = unknown;

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

/** How one AWS sets up what the probes need; names are unique per run. */
export interface ProbeTarget {
  /** undefined: the SDK clients are mocked and nothing goes on the wire. */
  readonly endpoint: string | undefined;
  readonly kmsKeyId: string;
  /** The account IAM's and EC2's answers name. */
  readonly account: string;
  /** A role with an instance profile `<role>-profile` holding it, and a running instance using that profile. */
  instanceWithRole(role: string): Promise<string>;
  table(name: string, key: string): Promise<void>;
  /** Session credentials of `role` named `session`, as AssumeRole gives them (undefined: no STS here). */
  session(role: string, session: string): Promise<Credentials | undefined>;
}

/** The stand-in as a probe target: mocked (no endpoint) or served at `endpoint`. */
export function standInTarget(fake: FakeAws, endpoint: string | undefined, kmsKeyId = 'alias/parity'): ProbeTarget {
  return {
    endpoint,
    kmsKeyId,
    account: fake.account,
    instanceWithRole: async (role) => fake.addInstance(fake.newInstanceId(), fake.account, role).instanceId,
    table: async (name, key) => fake.createTable(name, key),
    session: async (role, session) => fake.assumeRole(role, session),
  };
}

const CLIENT = { region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    return await run();
  } catch (err) {
    return { error: (err as Error).name };
  }
}

/** Every probe's outcome, by name. `run` tells the stand-in's names from moto's. */
export async function probe(target: ProbeTarget, run: string): Promise<Record<string, Outcome>> {
  const config = { ...CLIENT, ...(target.endpoint ? { endpoint: target.endpoint } : {}) };
  const out: Record<string, Outcome> = {};
  Object.assign(out, await probeParameterStore(new SSMClient(config), `/parity-${run}`));
  Object.assign(out, await probeKms(new KMSClient(config), target.kmsKeyId, run));
  Object.assign(out, await probeEc2AndIam(new EC2Client(config), new IAMClient(config), target, `parity-${run}`));
  Object.assign(out, await probeDynamoDb(new DynamoDBClient(config), target, `parity-${run}`));
  Object.assign(out, await probeEventBridge(new EventBridgeClient(config)));
  if (target.endpoint) Object.assign(out, await probeSts(target, `parity-${run}`));
  return out;
}

async function probeParameterStore(ssm: SSMClient, root: string): Promise<Record<string, Outcome>> {
  const put = (name: string, value: string, options: { overwrite?: boolean; tier?: ParameterTier } = {}) =>
    ssm.send(new PutParameterCommand({ Name: `${root}/${name}`, Value: value, Type: 'String', Overwrite: options.overwrite ?? false, Tier: options.tier ?? 'Intelligent-Tiering' }));
  const out: Record<string, Outcome> = {};
  out.create = await outcome(async () => (await put('a', 'one')).Version);
  out.createAgain = await outcome(() => put('a', 'two'));
  out.overwrite = await outcome(async () => (await put('a', 'two', { overwrite: true })).Version);
  out.emptyValue = await outcome(() => put('empty', ''));
  out.latest = await outcome(async () => {
    const { Parameter } = await ssm.send(new GetParameterCommand({ Name: `${root}/a` }));
    return [Parameter?.Value, Parameter?.Version, Parameter?.Type];
  });
  out.byVersion = await outcome(async () => (await ssm.send(new GetParameterCommand({ Name: `${root}/a:1` }))).Parameter?.Value);
  out.missingVersion = await outcome(() => ssm.send(new GetParameterCommand({ Name: `${root}/a:9` })));
  out.missing = await outcome(() => ssm.send(new GetParameterCommand({ Name: `${root}/nope` })));

  // Sizes and tiers: what the store's choice of Intelligent-Tiering over 4 KB rests on.
  out.intelligentSmallTier = await outcome(async () => (await put('small', 'x'.repeat(4096))).Tier);
  out.intelligentLargeTier = await outcome(async () => (await put('large', 'x'.repeat(4097))).Tier);
  out.standardOverLimit = await outcome(() => put('standard', 'x'.repeat(4097), { tier: 'Standard' }));
  out.advancedAtLimit = await outcome(async () => (await put('big', 'x'.repeat(8192), { tier: 'Advanced' })).Version);
  out.overLimit = await outcome(() => put('bigger', 'x'.repeat(8193)));

  out.history = await outcome(async () => (await ssm.send(new GetParameterHistoryCommand({ Name: `${root}/a` }))).Parameters?.map((p) => [p.Value, p.Version]));
  out.historyMissing = await outcome(() => ssm.send(new GetParameterHistoryCommand({ Name: `${root}/nope` })));
  out.historyPageTooBig = await outcome(() => ssm.send(new GetParameterHistoryCommand({ Name: `${root}/a`, MaxResults: 51 })));
  await put('a', 'three', { overwrite: true });
  out.historyPages = await outcome(() => pages((next) => ssm.send(new GetParameterHistoryCommand({ Name: `${root}/a`, MaxResults: 2, NextToken: next })), (p) => p.Version));
  // Parameter Store keeps 100 versions: the 101st put drops the first.
  for (let i = 0; i < 101; i++) await put('many', `v${i}`, { overwrite: i > 0 });
  out.historyKeeps100 = await outcome(async () => {
    const versions = (await pages((next) => ssm.send(new GetParameterHistoryCommand({ Name: `${root}/many`, NextToken: next })), (p) => p.Version)).flat() as number[];
    return [versions.length, versions[0], versions.at(-1)];
  });

  out.batchMissing = await outcome(async () => {
    const r = await ssm.send(new GetParametersCommand({ Names: [`${root}/a`, `${root}/nope`] }));
    return [r.Parameters?.map((p) => p.Value), r.InvalidParameters?.map((n) => n.slice(root.length))];
  });
  out.batchTooMany = await outcome(() => ssm.send(new GetParametersCommand({ Names: Array.from({ length: 11 }, (_, i) => `${root}/n${i}`) })));

  for (let i = 0; i < 12; i++) await put(`tree/p${String(i).padStart(2, '0')}`, `v${i}`);
  for (let i = 0; i < 10; i++) await put(`ten/p${i}`, `v${i}`);
  await put('tree/deep/leaf', 'leaf');
  const byPath = (path: string, recursive: boolean) =>
    pages((next) => ssm.send(new GetParametersByPathCommand({ Path: `${root}/${path}`, Recursive: recursive, NextToken: next })), (p) => p.Name!.slice(root.length));
  // Pages as the adapters see them: names and sizes. An empty last page with a NextToken is
  // as valid an answer as none (AWS returns "between zero and MaxResults" items a page); moto
  // gives one after a full last page, the stand-in does not; empty pages are not compared.
  const shape = (names: unknown[][]) => [names.map((n) => n.length).filter((n) => n > 0), names.flat().sort()];
  out.pathPagesRecursive = await outcome(async () => shape(await byPath('tree', true)));
  out.pathPagesOneLevel = await outcome(async () => shape(await byPath('tree', false)));
  out.pathPagesExactlyFull = await outcome(async () => shape(await byPath('ten', true)));
  out.pathPageTooBig = await outcome(() => ssm.send(new GetParametersByPathCommand({ Path: `${root}/tree`, Recursive: true, MaxResults: 11 })));
  out.pathBadToken = await outcome(() => ssm.send(new GetParametersByPathCommand({ Path: `${root}/tree`, Recursive: true, NextToken: 'not-a-token' })));

  out.delete = await outcome(async () => (await ssm.send(new DeleteParameterCommand({ Name: `${root}/a` }))) && 'deleted');
  out.deleteMissing = await outcome(() => ssm.send(new DeleteParameterCommand({ Name: `${root}/a` })));
  out.afterDelete = await outcome(async () => (await put('a', 'fresh')).Version);
  return out;
}

interface Listed {
  Name?: string;
  Version?: number;
}

/** Every page of a listing, as what `pick` keeps of each item. */
async function pages(
  call: (next: string | undefined) => Promise<{ Parameters?: Listed[]; NextToken?: string }>,
  pick: (p: Listed) => unknown,
): Promise<unknown[][]> {
  const out: unknown[][] = [];
  let next: string | undefined;
  for (let page = 0; page < 50; page++) {
    const answer = await call(next);
    out.push((answer.Parameters ?? []).map(pick));
    next = answer.NextToken || undefined;
    if (next === undefined) return out;
  }
  throw new Error('more than 50 pages');
}

async function probeKms(kms: KMSClient, keyId: string, run: string): Promise<Record<string, Outcome>> {
  const context = { 'dssss:prefix': `/parity-${run}/` };
  const out: Record<string, Outcome> = {};
  out.dataKey = await outcome(async () => {
    const key = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
    const back = await kms.send(new DecryptCommand({ CiphertextBlob: key.CiphertextBlob, KeyId: keyId, EncryptionContext: context }));
    const wrong = await outcome(() => kms.send(new DecryptCommand({ CiphertextBlob: key.CiphertextBlob, EncryptionContext: { 'dssss:prefix': '/other/' } })));
    const none = await outcome(() => kms.send(new DecryptCommand({ CiphertextBlob: key.CiphertextBlob })));
    return [key.Plaintext?.length, Buffer.from(back.Plaintext!).equals(Buffer.from(key.Plaintext!)), wrong, none];
  });
  out.decryptGarbage = await outcome(() => kms.send(new DecryptCommand({ CiphertextBlob: new Uint8Array(64), EncryptionContext: context })));
  return out;
}

async function probeEc2AndIam(ec2: EC2Client, iam: IAMClient, target: ProbeTarget, role: string): Promise<Record<string, Outcome>> {
  const instanceId = await target.instanceWithRole(role);
  const out: Record<string, Outcome> = {};
  const described = async (input: DescribeInstancesCommandInput) => {
    const { Reservations } = await ec2.send(new DescribeInstancesCommand(input));
    return (Reservations ?? []).map((r) => ({
      owner: r.OwnerId === target.account,
      instances: (r.Instances ?? []).map((i) => [i.InstanceId === instanceId, i.State?.Name, i.IamInstanceProfile?.Arn === `arn:aws:iam::${target.account}:instance-profile/${role}-profile`]),
    }));
  };
  out.describe = await outcome(() => described({ InstanceIds: [instanceId] }));
  out.describeRunning = await outcome(() => described({ InstanceIds: [instanceId], Filters: [{ Name: 'instance-state-name', Values: ['running'] }] }));
  out.describeStopped = await outcome(() => described({ InstanceIds: [instanceId], Filters: [{ Name: 'instance-state-name', Values: ['stopped'] }] }));
  out.describeUnknown = await outcome(() => described({ InstanceIds: ['i-0123456789abcdef0'] }));
  out.describeMalformed = await outcome(() => described({ InstanceIds: ['i-zz'] }));

  const roleId = await outcome(async () => (await iam.send(new GetRoleCommand({ RoleName: role }))).Role?.RoleId);
  out.getRole = await outcome(async () => {
    const { Role } = await iam.send(new GetRoleCommand({ RoleName: role }));
    return [Role?.RoleName === role, /^AROA[A-Z0-9]{16,}$/.test(Role?.RoleId ?? ''), Role?.Arn === `arn:aws:iam::${target.account}:role/${role}`];
  });
  out.getRoleMissing = await outcome(() => iam.send(new GetRoleCommand({ RoleName: `${role}-nope` })));
  out.getInstanceProfile = await outcome(async () => {
    const { InstanceProfile } = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: `${role}-profile` }));
    return [InstanceProfile?.InstanceProfileName === `${role}-profile`, InstanceProfile?.Roles?.map((r) => [r.RoleName === role, r.RoleId === roleId])];
  });
  out.getInstanceProfileMissing = await outcome(() => iam.send(new GetInstanceProfileCommand({ InstanceProfileName: `${role}-nope` })));
  return out;
}

async function probeDynamoDb(dynamo: DynamoDBClient, target: ProbeTarget, table: string): Promise<Record<string, Outcome>> {
  await target.table(table, 'k');
  const newer = (t: number) => ({
    TableName: table,
    Item: { k: { S: 'a' }, t: { N: String(t) } },
    ConditionExpression: 'attribute_not_exists(#k) OR #t < :t',
    ExpressionAttributeNames: { '#k': 'k', '#t': 't' },
    ExpressionAttributeValues: { ':t': { N: String(t) } },
  });
  const item = async (consistent: boolean) => (await dynamo.send(new GetItemCommand({ TableName: table, Key: { k: { S: 'a' } }, ConsistentRead: consistent }))).Item ?? null;
  const out: Record<string, Outcome> = {};
  out.dynamoCreate = await outcome(async () => (await dynamo.send(new PutItemCommand({ TableName: table, Item: { k: { S: 'a' }, t: { N: '5' } }, ConditionExpression: 'attribute_not_exists(k)' }))) && 'put');
  out.dynamoCreateAgain = await outcome(() => dynamo.send(new PutItemCommand({ TableName: table, Item: { k: { S: 'a' }, t: { N: '6' } }, ConditionExpression: 'attribute_not_exists(k)' })));
  out.dynamoCreateAgainOld = await outcome(async () => {
    try {
      await dynamo.send(new PutItemCommand({ TableName: table, Item: { k: { S: 'a' }, t: { N: '6' } }, ConditionExpression: 'attribute_not_exists(k)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }));
      return 'put';
    } catch (err) {
      return [(err as Error).name, (err as { Item?: unknown }).Item];
    }
  });
  out.dynamoNewer = await outcome(async () => (await dynamo.send(new PutItemCommand(newer(9)))) && 'put');
  out.dynamoOlder = await outcome(() => dynamo.send(new PutItemCommand(newer(7))));
  out.dynamoSame = await outcome(() => dynamo.send(new PutItemCommand(newer(9))));
  out.dynamoConsistentRead = await outcome(() => item(true));
  out.dynamoEventualRead = await outcome(() => item(false));
  out.dynamoMissingItem = await outcome(async () => (await dynamo.send(new GetItemCommand({ TableName: table, Key: { k: { S: 'none' } }, ConsistentRead: true }))).Item ?? null);
  out.dynamoWrongKey = await outcome(() => dynamo.send(new GetItemCommand({ TableName: table, Key: { x: { S: 'a' } } })));
  out.dynamoMissingTable = await outcome(() => dynamo.send(new GetItemCommand({ TableName: `${table}-nope`, Key: { k: { S: 'a' } } })));
  out.dynamoUnusedName = await outcome(async () =>
    (await dynamo.send(new PutItemCommand({ TableName: table, Item: { k: { S: 'b' } }, ConditionExpression: 'attribute_not_exists(k)', ExpressionAttributeNames: { '#x': 'x' } }))) && 'put',
  );
  out.dynamoUnusedValue = await outcome(async () =>
    (await dynamo.send(new PutItemCommand({ TableName: table, Item: { k: { S: 'c' } }, ConditionExpression: 'attribute_not_exists(k)', ExpressionAttributeValues: { ':x': { N: '1' } } }))) && 'put',
  );
  out.dynamoDelete = await outcome(async () => (await dynamo.send(new DeleteItemCommand({ TableName: table, Key: { k: { S: 'a' } } }))) && (await item(true)));
  return out;
}

async function probeEventBridge(events: EventBridgeClient): Promise<Record<string, Outcome>> {
  const entry = { Source: 'dssss', DetailType: 'dssss change', Detail: '{"name":"app/db"}' };
  const out: Record<string, Outcome> = {};
  out.putEvents = await outcome(async () => {
    const r = await events.send(new PutEventsCommand({ Entries: [entry, { ...entry, Detail: 'not json' }, { Source: 'dssss', DetailType: 'x' }] }));
    return [r.FailedEntryCount, r.Entries?.map((e) => (e.EventId ? 'id' : e.ErrorCode))];
  });
  out.putEventsTooMany = await outcome(() => events.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry) })));
  return out;
}

async function probeSts(target: ProbeTarget, role: string): Promise<Record<string, Outcome>> {
  const credentials = await target.session(role, 'probe-session');
  const out: Record<string, Outcome> = {};
  if (!credentials) return out;
  out.callerIdentity = await outcome(async () => {
    const identity = await getCallerIdentity(target.endpoint!, credentials);
    return [
      identity.Arn === `arn:aws:sts::${target.account}:assumed-role/${role}/probe-session`,
      new RegExp('^AROA[A-Z0-9]{16,}:probe-session$').test(identity.UserId),
      identity.Account === target.account,
    ];
  });
  return out;
}

/** sts:GetCallerIdentity, signed by hand as the dssss client signs it: Arn, UserId, Account, or the error code. */
export async function getCallerIdentity(endpoint: string, credentials: Credentials): Promise<{ Arn: string; UserId: string; Account: string }> {
  const { status, xml } = await signedStsCall(endpoint, credentials, { Action: 'GetCallerIdentity', Version: '2011-06-15' });
  const result = (xml as { GetCallerIdentityResponse?: { GetCallerIdentityResult?: { Arn: string; UserId: string; Account: string } } }).GetCallerIdentityResponse?.GetCallerIdentityResult;
  if (status !== 200 || !result) {
    const code = (xml as { ErrorResponse?: { Error?: { Code?: string } } }).ErrorResponse?.Error?.Code;
    throw Object.assign(new Error(`STS answered ${status}`), { name: code ?? 'UnknownError', status });
  }
  return result;
}

/** A POSTed STS query call signed with `credentials`: its status and parsed XML. */
export async function signedStsCall(endpoint: string, credentials: Credentials, params: Record<string, string>): Promise<{ status: number; xml: unknown }> {
  const url = new URL(endpoint);
  const body = new URLSearchParams(params).toString();
  const signer = new SignatureV4({ credentials, region: 'us-east-1', service: 'sts', sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const response = await fetch(new URL('/', url), { method: 'POST', headers: signed.headers, body });
  return { status: response.status, xml: new XMLParser({ parseTagValue: false }).parse(await response.text()) };
}
