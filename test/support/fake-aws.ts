// The shared AWS stand-in for the tests, the security suites, the benchmark and the fleet
// simulation: one account's Parameter Store, KMS, EC2, IAM, STS, DynamoDB and EventBridge
// (aws-world.ts), reached two ways with the same state, counts, quotas, latency and faults:
// - the SDK clients mocked at the class (aws-sdk-client-mock), so every client in the process
//   answers from it without a network (the default; `{ mock: false }` leaves them alone);
// - `await fake.serve()`: one loopback HTTP server speaking each service's wire protocol, and
//   every instance's IMDS (aws-wire.ts, imds.ts), for AWS_ENDPOINT_URL.
//
//   const fake = new FakeAws({ mock: false });
//   const instance = fake.addInstance(fake.newInstanceId(), fake.account, 'web');  // EC2, IAM, IMDS, STS
//   fake.detachRole(instanceId);  // as if launched without a role: IMDS answers 404 for one
//   const task = fake.assumeRole('billing', 'task-1');  // credentials STS knows
//   fake.createTable('bookkeeping', 'k');
//   fake.setQuotas(AWS_DEFAULT_QUOTAS, { scale: 10 });  // aws-quotas.ts: token buckets
//   fake.setLatency('SSM', { ms: 2, jitterMs: 1 });      // real ms: divide AWS's by the scale
//   const aws = await fake.serve();  // aws.url; aws.imdsUrl(instance.instanceId)
//   fake.imds.fault(instance.instanceId, { kind: 'error', status: 503, count: 2 });
//   ... fake.counts()['SSM.GetParameter'] -> { requests, throttled }
//   ... fake.stsKeys -> the access key id each STS call was signed with
//   ... fake.imds.requestLog(instance.instanceId) -> ['PUT /latest/api/token', 'GET /latest/...']
//
// Every call lands in `calls` ("SSM.GetParameter", ...) and `counts()`; `arm` fails a call
// of your choosing, mocked or on the wire. Identity documents are signed by the stand-in's
// own CA, or by one given (`ca`: a local dssss server's development CA, say).

import { randomBytes } from 'node:crypto';
import { createDevCa, type DevCa } from '../../lambda/identity/dev-ca';
import { DynamoDBClient, DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
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
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { Quotas, type QuotaOptions, type QuotaTable } from './aws-quotas';
import { serveAws, TransportFault, type AwsServer } from './aws-wire';
import { AwsError, AwsWorld, type CallContext, type InstanceRecord, type ParameterVersion, type Service, type StandInCredentials, type World } from './aws-world';
import { Imds } from './imds';

export { AWS_DEFAULT_QUOTAS, AWS_HIGHER_THROUGHPUT_QUOTAS, type QuotaTable } from './aws-quotas';
export type { AwsServer } from './aws-wire';
export type { Service, StandInCredentials, World } from './aws-world';
export type { ImdsFault } from './imds';

/** Credentials and Region for the SDK clients the runtime builds; the mocks answer before any network. */
export const AWS_TEST_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

/**
 * throttle: the service's throttling error (on the wire the SDK may retry it; a mocked
 * client does not). failure: a 5xx from the service. network: the connection is reset.
 * timeout: the request never reaches the service; the SDK's deadline fires (TimeoutError).
 * hang: the service acts, but the answer never comes back; the SDK's deadline ends the wait.
 */
export type FaultKind = 'throttle' | 'failure' | 'network' | 'timeout' | 'hang';
export const FAULT_KINDS: readonly FaultKind[] = ['throttle', 'failure', 'network', 'timeout', 'hang'];

/** Each service's throttling error and the status it comes with (EC2's is a 503). */
const THROTTLE: Record<Service, { code: string; status: number; message: string }> = {
  SSM: { code: 'ThrottlingException', status: 400, message: 'Rate exceeded' },
  KMS: { code: 'ThrottlingException', status: 400, message: 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.' },
  EC2: { code: 'RequestLimitExceeded', status: 503, message: 'Request limit exceeded.' },
  IAM: { code: 'Throttling', status: 400, message: 'Rate exceeded' },
  STS: { code: 'Throttling', status: 400, message: 'Rate exceeded' },
  // On-demand tables over their quota: DynamoDB names the reason (TableReadAccountLimitExceeded,
  // ...) inside a ThrottlingException; provisioned tables get ProvisionedThroughputExceededException.
  DynamoDB: { code: 'ThrottlingException', status: 400, message: 'Throughput exceeds the current throughput limit for your account.' },
  EventBridge: { code: 'ThrottlingException', status: 400, message: 'Rate exceeded' },
};
const FAILURE: Record<Service, string> = {
  SSM: 'InternalServerError',
  KMS: 'KMSInternalException',
  EC2: 'InternalError',
  IAM: 'ServiceFailure',
  STS: 'InternalFailure',
  DynamoDB: 'InternalServerError',
  EventBridge: 'InternalException',
};
/** Where a mocked client's error name is not the wire code: the SDK names IAM's modelled errors by their shape. */
const SDK_ERROR_NAMES: Record<string, string> = {
  'IAM.NoSuchEntity': 'NoSuchEntityException',
  'IAM.ServiceFailure': 'ServiceFailureException',
};

/** The mocked commands, by the operation each stands for. */
const MOCKED = [
  [SSMClient, { GetParameter: GetParameterCommand, GetParameters: GetParametersCommand, GetParameterHistory: GetParameterHistoryCommand, GetParametersByPath: GetParametersByPathCommand, PutParameter: PutParameterCommand, DeleteParameter: DeleteParameterCommand }, 'SSM'],
  [KMSClient, { GenerateDataKey: GenerateDataKeyCommand, Decrypt: DecryptCommand }, 'KMS'],
  [EC2Client, { DescribeInstances: DescribeInstancesCommand }, 'EC2'],
  [IAMClient, { GetInstanceProfile: GetInstanceProfileCommand, GetRole: GetRoleCommand }, 'IAM'],
  [DynamoDBClient, { GetItem: GetItemCommand, PutItem: PutItemCommand, DeleteItem: DeleteItemCommand }, 'DynamoDB'],
  [EventBridgeClient, { PutEvents: PutEventsCommand }, 'EventBridge'],
] as const;

/** A quota's price for one call: an eventually consistent DynamoDB read costs half a unit. */
export function quotaCost(op: string, input: Record<string, unknown>): number {
  return op === 'DynamoDB.GetItem' && input.ConsistentRead !== true ? 0.5 : 1;
}

export interface Latency {
  readonly ms: number;
  /** Added at random, from 0 to this. */
  readonly jitterMs?: number;
}

export interface CallCount {
  /** Requests received, the throttled and faulted ones included. */
  requests: number;
  /** Answered with the service's throttling error (a quota, or an armed throttle). */
  throttled: number;
}

/** An instance as `addInstance` registered it: in EC2, with its profile, role, IMDS and credentials. */
export interface StandInInstance {
  readonly instanceId: string;
  readonly account: string;
  readonly region: string;
  readonly role: string;
  readonly roleId: string;
  readonly profileArn: string;
  /** The instance role's session: arn:aws:sts::ACCOUNT:assumed-role/ROLE/INSTANCE-ID. */
  readonly credentials: StandInCredentials;
  /** The rsa2048 document IMDS serves, on one line as the Authentication header takes it (signed on first use). */
  signedDocument(): string;
}

export interface FakeAwsOptions {
  /** The account IAM's ARNs name; default 111122223333. */
  readonly account?: string;
  /** Mock the SDK clients at the class (default true). Off for a process that talks to `serve()` only. */
  readonly mock?: boolean;
  /** Keep every call's name in `calls` (default true); a long simulation may only want `counts()`. */
  readonly callLog?: boolean;
  /**
   * The CA that signs identity documents; default a new development CA, made on first use. A
   * function is asked on first use: a local dssss server's development CA, for a server made
   * after `serve()` (it needs the stand-in's URL for STS).
   */
  readonly ca?: DevCa | (() => DevCa);
}

export class FakeAws {
  /** The account the IAM ARNs name. */
  readonly account: string;
  /** Every call made, in order: "SSM.GetParameter", "KMS.Decrypt", ... (unless `callLog: false`). */
  readonly calls: string[] = [];
  /** The access key id each STS call was signed with, in order, refused ones included ('' unsigned; unless `callLog: false`). */
  readonly stsKeys: string[] = [];
  /** Every instance's IMDS: `imds.fault(id, ...)` makes its next requests (of one path, if given) slow, 4xx/5xx or refused; `imds.requests(id)` counts them, `imds.requestLog(id)` lists them. */
  readonly imds: Imds;
  private readonly world: AwsWorld;
  private readonly callLog: boolean;
  private readonly mocks: { restore(): void }[] = [];
  private requestCount = 0;
  private callCounts = new Map<string, CallCount>();
  private fault: { at: number; kind: FaultKind; count: number } | undefined;
  private quotas: Quotas | undefined;
  private readonly latency = new Map<Service, Latency>();
  private devCa: DevCa | (() => DevCa) | undefined;

  constructor(options: FakeAwsOptions = {}) {
    this.account = options.account ?? '111122223333';
    this.callLog = options.callLog ?? true;
    this.devCa = options.ca;
    this.world = new AwsWorld(this.account);
    this.imds = new Imds(
      {
        instance: (id) => this.world.state.instances.get(id),
        credentials: (key) => this.world.state.credentials.get(key),
        profileId: (arn) => this.world.state.profiles.get(arn.slice(arn.lastIndexOf('/') + 1))?.id,
        ca: () => this.ca,
      },
      this.callLog,
    );
    if (options.mock ?? true) {
      for (const [client, commands, service] of MOCKED) {
        const mock = mockClient(client as typeof SSMClient);
        for (const [operation, command] of Object.entries(commands)) {
          mock.on(command as never).callsFake((input: Record<string, unknown>) => this.mocked(`${service}.${operation}`, input));
        }
        this.mocks.push(mock);
      }
    }
  }

  /** The CA whose certificate a server must trust (DSSSS_EXTRA_CERTS) to accept the instances' documents. */
  get ca(): DevCa {
    const ca = typeof this.devCa === 'function' ? this.devCa() : (this.devCa ?? createDevCa());
    this.devCa = ca;
    return ca;
  }

  /** Undoes the mocks (a server from `serve` keeps serving until closed). */
  restore(): void {
    for (const mock of this.mocks) mock.restore();
    this.mocks.length = 0;
  }

  /** The world on one loopback port: every service's wire protocol, and each instance's IMDS. */
  serve(): Promise<AwsServer> {
    return serveAws({ invoke: (op, input, context) => this.invoke(op, input, context), credentials: (key) => this.world.state.credentials.get(key), imds: this.imds });
  }

  // ---- the one path every call takes ----

  /** One call of `op` ("SSM.GetParameter"), counted, delayed, faulted and throttled as configured. */
  async invoke(op: string, input: Record<string, unknown>, context: CallContext = {}): Promise<Record<string, unknown>> {
    const service = op.slice(0, op.indexOf('.')) as Service;
    const index = this.requestCount++;
    if (this.callLog) this.calls.push(op);
    if (this.callLog && service === 'STS') this.stsKeys.push(context.accessKeyId ?? '');
    const count = this.countOf(op);
    count.requests++;
    await this.delay(service);
    const fault = this.fault && index >= this.fault.at && index < this.fault.at + this.fault.count ? this.fault.kind : undefined;
    if (fault === 'hang') {
      try {
        this.world.handle(op, input, context); // it happened; the caller just never hears about it
      } catch {
        // the service's own refusal is lost along with the answer
      }
    }
    if (fault === 'throttle' || (fault === undefined && this.quotas && !this.quotas.take(op, quotaCost(op, input)))) {
      count.throttled++;
      const { code, status, message } = THROTTLE[service];
      throw new AwsError(code, message, status);
    }
    if (fault === 'failure') throw new AwsError(FAILURE[service], 'We encountered an internal error. Please try again.', 500);
    if (fault !== undefined) throw new TransportFault(fault);
    return this.world.handle(op, input, context);
  }

  /** A mocked client's call: the SDK's output, or the error the SDK would have raised. */
  private async mocked(op: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    try {
      return { ...(await this.invoke(op, input)), $metadata: {} };
    } catch (err) {
      if (err instanceof AwsError) {
        const name = SDK_ERROR_NAMES[`${op.slice(0, op.indexOf('.'))}.${err.code}`] ?? err.code;
        throw Object.assign(new Error(err.message), err.extra, {
          name,
          $fault: err.status >= 500 ? 'server' : 'client',
          $metadata: { httpStatusCode: err.status },
        });
      }
      if (err instanceof TransportFault && err.kind === 'network') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      if (err instanceof TransportFault) {
        // What @smithy/node-http-handler rejects with when a deadline passes.
        throw Object.assign(new Error('@smithy/node-http-handler - request timed out (test)'), { name: 'TimeoutError', code: 'ETIMEDOUT' });
      }
      throw err;
    }
  }

  private async delay(service: Service): Promise<void> {
    const latency = this.latency.get(service);
    const ms = latency ? latency.ms + Math.random() * (latency.jitterMs ?? 0) : 0;
    // Even at no latency, let other requests interleave, as real network calls would.
    await new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
  }

  private countOf(op: string): CallCount {
    let count = this.callCounts.get(op);
    if (!count) this.callCounts.set(op, (count = { requests: 0, throttled: 0 }));
    return count;
  }

  // ---- counts, quotas, latency, faults ----

  /** Requests and throttled answers by API ("SSM.GetParameter"), since the start or `resetCounts`. */
  counts(): Record<string, CallCount> {
    return Object.fromEntries([...this.callCounts].map(([op, count]) => [op, { ...count }]));
  }

  resetCounts(): void {
    this.callCounts = new Map();
  }

  /** Quotas as token buckets (aws-quotas.ts), or none (the default: nothing is throttled). */
  setQuotas(table: QuotaTable | undefined, options: QuotaOptions = {}): void {
    this.quotas = table === undefined ? undefined : new Quotas(table, options);
  }

  /** A delay before each answer of `service` (or every service); 0 by default. */
  setLatency(service: Service | 'all', latency: Latency | undefined): void {
    const services: Service[] = service === 'all' ? ['SSM', 'KMS', 'EC2', 'IAM', 'STS', 'DynamoDB', 'EventBridge'] : [service];
    for (const s of services) {
      if (latency === undefined) this.latency.delete(s);
      else this.latency.set(s, latency);
    }
  }

  /** Fails `count` calls (default 1) from `step` calls from now (0: the next one) with `kind`. */
  arm(kind: FaultKind, step: number, count = 1): void {
    this.fault = { at: this.requestCount + step, kind, count };
  }

  disarm(): void {
    this.fault = undefined;
  }

  // ---- the world ----

  /**
   * A running instance of `owner` with the instance profile `<role>-profile` (role created if
   * need be), its identity document signed by `ca`, and its role's session credentials known
   * to STS and served by its IMDS: one call for a test or a simulation.
   */
  addInstance(instanceId: string, owner: string, role: string, state = 'running', region = 'us-east-1'): StandInInstance {
    const profileArn = this.world.ensureProfile(role, owner);
    const credentials = this.world.sessionCredentials(role, instanceId, owner);
    const launched = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    this.world.state.instances.set(instanceId, { owner, state, region, launched, profile: { arn: profileArn, role, accessKeyId: credentials.accessKeyId } });
    return {
      instanceId,
      account: owner,
      region,
      role,
      roleId: this.world.roleId(role)!,
      profileArn,
      credentials,
      signedDocument: () => this.imds.signedDocument(instanceId).replace(/\s+/g, ''),
    };
  }

  /** A fresh instance id: i- and 17 hex digits, as EC2 mints them. */
  newInstanceId(): string {
    return `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
  }

  setInstanceState(instanceId: string, state: string): void {
    this.instance(instanceId).state = state;
  }

  /**
   * Takes the instance's profile away, as DisassociateIamInstanceProfile does: EC2 shows none,
   * and its IMDS answers 404 for the role and its credentials, as on an instance launched
   * without a role. The role's session credentials it held stay valid until they expire.
   */
  detachRole(instanceId: string): void {
    this.instance(instanceId).profile = undefined;
  }

  private instance(instanceId: string): InstanceRecord {
    const instance = this.world.state.instances.get(instanceId);
    if (!instance) throw new Error(`no instance ${instanceId}`);
    return instance;
  }

  /** Creates (or, called again, deletes and recreates) a role: a new unique id each time. */
  addRole(role: string): string {
    return this.world.addRole(role);
  }

  roleId(role: string): string | undefined {
    return this.world.roleId(role);
  }

  /** Credentials STS will know: GetCallerIdentity signed with them answers `arn`, `userId`, `account`. */
  addCredentials(credentials: StandInCredentials): void {
    this.world.addCredentials(credentials);
  }

  /** Session credentials for `role` (created if need be), as an ECS task or a Lambda function holds them. */
  assumeRole(role: string, session: string, account = this.account): StandInCredentials {
    return this.world.sessionCredentials(role, session, account);
  }

  /** A DynamoDB table whose partition key is the attribute `key`. */
  createTable(name: string, key: string): void {
    this.world.createTable(name, key);
  }

  /** The events PutEvents accepted, oldest first. */
  events(): World['events'] {
    return structuredClone(this.world.state.events);
  }

  snapshot(): World {
    return structuredClone(this.world.state);
  }

  /** The world as `snapshot` saw it; the call log and the armed fault are cleared. */
  reset(world: World): void {
    this.world.state = structuredClone(world);
    this.calls.length = 0;
    this.stsKeys.length = 0;
    this.fault = undefined;
  }

  /** The stored versions of a parameter, oldest first. */
  versions(name: string): ParameterVersion[] {
    return structuredClone(this.world.state.parameters.get(name)?.versions ?? []);
  }

  /** Replaces the stored value of a parameter's latest version (someone with ssm:PutParameter but no KMS). */
  tamper(name: string, change: (value: string) => string): void {
    const latest = this.world.state.parameters.get(name)?.versions.at(-1);
    if (!latest) throw new Error(`no parameter ${name}`);
    latest.value = change(latest.value);
  }
}

export interface LoopbackAws {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL. */
  readonly url: string;
  close(): Promise<void>;
}

/** `fake.serve()`, for the callers that predate it. */
export function serveLoopbackAws(fake: FakeAws): Promise<AwsServer> {
  return fake.serve();
}
