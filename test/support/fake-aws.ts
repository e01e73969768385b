// A small in-memory AWS behind aws-sdk-client-mock: Parameter Store (versions, history,
// conditional create, paths, batches), KMS (data keys bound to an encryption context), EC2
// and IAM (instance -> profile -> role, roles with unique ids). Every call is recorded, and a fault can be armed for any one of them.
// The tests, the security suites and the benchmark share it; `serveLoopbackAws` serves the
// same state over AWS's JSON protocol on 127.0.0.1 to a process of its own (the bundled artifact).

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
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

/** Credentials and Region for the SDK clients the runtime builds; the mocks answer before any network. */
export const AWS_TEST_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

export type Service = 'SSM' | 'KMS' | 'EC2' | 'IAM';

/**
 * throttle: the service refuses with its throttling error (the SDK has spent its retries).
 * failure: a 5xx from the service. network: the connection is reset.
 * timeout: the request never reaches the service; the SDK's deadline fires (TimeoutError).
 * hang: the service acts, but the answer never comes back; the SDK's deadline ends the wait.
 */
export type FaultKind = 'throttle' | 'failure' | 'network' | 'timeout' | 'hang';
export const FAULT_KINDS: readonly FaultKind[] = ['throttle', 'failure', 'network', 'timeout', 'hang'];

const THROTTLE: Record<Service, string> = {
  SSM: 'ThrottlingException',
  KMS: 'ThrottlingException',
  EC2: 'RequestLimitExceeded',
  IAM: 'Throttling',
};
const FAILURE: Record<Service, string> = {
  SSM: 'InternalServerError',
  KMS: 'KMSInternalException',
  EC2: 'InternalError',
  IAM: 'ServiceFailure',
};

export function awsError(name: string, message = `${name} (test)`): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

function faultError(kind: FaultKind, service: Service): Error {
  switch (kind) {
    case 'throttle':
      return awsError(THROTTLE[service]);
    case 'failure':
      return Object.assign(awsError(FAILURE[service]), { $fault: 'server', $metadata: { httpStatusCode: 500 } });
    case 'network':
      return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    case 'timeout':
    case 'hang':
      // What @smithy/node-http-handler rejects with when a deadline passes.
      return Object.assign(new Error('@smithy/node-http-handler - request timed out (test)'), { name: 'TimeoutError', code: 'ETIMEDOUT' });
  }
}

interface Parameter {
  versions: { version: number; value: string }[];
}

interface World {
  parameters: Map<string, Parameter>;
  dataKeys: Map<string, { plaintext: string; context: string }>;
  instances: Map<string, { owner: string; state: string; profileArn: string }>;
  profiles: Map<string, string>;
  /** Role name -> unique id. */
  roles: Map<string, string>;
}

const MAX_HISTORY = 100;
const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/test';

export class FakeAws {
  private world: World = { parameters: new Map(), dataKeys: new Map(), instances: new Map(), profiles: new Map(), roles: new Map() };
  /** Every call made, in order: "SSM.GetParameter", "KMS.Decrypt", ... */
  readonly calls: string[] = [];
  private fault: { at: number; kind: FaultKind } | undefined;
  private readonly mocks = [mockClient(SSMClient), mockClient(KMSClient), mockClient(EC2Client), mockClient(IAMClient)] as const;
  /** The account the IAM ARNs name. */
  readonly account: string;

  constructor(options: { account?: string } = {}) {
    this.account = options.account ?? '111122223333';
    const [ssm, kms, ec2, iam] = this.mocks;
    ssm.on(GetParameterCommand).callsFake((input) => this.call('SSM.GetParameter', () => this.getParameter(input.Name)));
    ssm.on(PutParameterCommand).callsFake((input) => this.call('SSM.PutParameter', () => this.putParameter(input)));
    ssm.on(DeleteParameterCommand).callsFake((input) => this.call('SSM.DeleteParameter', () => this.deleteParameter(input.Name)));
    ssm.on(GetParametersCommand).callsFake((input) => this.call('SSM.GetParameters', () => this.getParameters(input.Names)));
    ssm.on(GetParameterHistoryCommand).callsFake((input) => this.call('SSM.GetParameterHistory', () => this.history(input)));
    ssm.on(GetParametersByPathCommand).callsFake((input) => this.call('SSM.GetParametersByPath', () => this.byPath(input)));
    kms.on(GenerateDataKeyCommand).callsFake((input) => this.call('KMS.GenerateDataKey', () => this.generateDataKey(input)));
    kms.on(DecryptCommand).callsFake((input) => this.call('KMS.Decrypt', () => this.decrypt(input)));
    ec2.on(DescribeInstancesCommand).callsFake((input) => this.call('EC2.DescribeInstances', () => this.describe(input.InstanceIds)));
    iam.on(GetInstanceProfileCommand).callsFake((input) => this.call('IAM.GetInstanceProfile', () => this.profile(input.InstanceProfileName)));
    iam.on(GetRoleCommand).callsFake((input) => this.call('IAM.GetRole', () => this.role(input.RoleName)));
  }

  restore(): void {
    for (const mock of this.mocks) mock.restore();
  }

  /**
   * One call over AWS's JSON protocol (X-Amz-Target), for `serveLoopbackAws`: the same state,
   * the same recording and faults as the mocked clients. Undefined for a target it does not serve.
   */
  answer(target: string, input: Record<string, unknown>): Promise<unknown> | undefined {
    const blob = (value: unknown) => new Uint8Array(Buffer.from(String(value), 'base64'));
    const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
    switch (target) {
      case 'AmazonSSM.GetParameter':
        return this.call('SSM.GetParameter', () => this.getParameter(input.Name as string | undefined));
      case 'AmazonSSM.GetParameters':
        return this.call('SSM.GetParameters', () => this.getParameters(input.Names as string[] | undefined));
      case 'AmazonSSM.GetParameterHistory':
        return this.call('SSM.GetParameterHistory', () => this.history(input as { Name?: string }));
      case 'AmazonSSM.GetParametersByPath':
        return this.call('SSM.GetParametersByPath', () => this.byPath(input as { Path?: string }));
      case 'AmazonSSM.PutParameter':
        return this.call('SSM.PutParameter', () => this.putParameter(input as { Name?: string }));
      case 'AmazonSSM.DeleteParameter':
        return this.call('SSM.DeleteParameter', () => this.deleteParameter(input.Name as string | undefined));
      case 'TrentService.GenerateDataKey':
        return this.call('KMS.GenerateDataKey', () => {
          const out = this.generateDataKey(input as { EncryptionContext?: Record<string, string> });
          return { ...out, Plaintext: base64(out.Plaintext), CiphertextBlob: base64(out.CiphertextBlob) };
        });
      case 'TrentService.Decrypt':
        return this.call('KMS.Decrypt', () => {
          const out = this.decrypt({ CiphertextBlob: blob(input.CiphertextBlob), EncryptionContext: input.EncryptionContext as Record<string, string> | undefined });
          return { Plaintext: base64(out.Plaintext), KeyId: KEY_ARN, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
        });
      default:
        return undefined;
    }
  }

  // ---- state ----

  addInstance(instanceId: string, owner: string, role: string, state = 'running'): void {
    const profile = `${role}-profile`;
    this.world.profiles.set(profile, role);
    if (!this.world.roles.has(role)) this.addRole(role);
    this.world.instances.set(instanceId, { owner, state, profileArn: `arn:aws:iam::${owner}:instance-profile/${profile}` });
  }

  /** Creates (or, called again, deletes and recreates) a role: a new unique id each time. */
  addRole(role: string): string {
    const id = `AROA${randomBytes(8).toString('hex').toUpperCase()}`;
    this.world.roles.set(role, id);
    return id;
  }

  roleId(role: string): string | undefined {
    return this.world.roles.get(role);
  }

  snapshot(): World {
    return structuredClone(this.world);
  }

  reset(world: World): void {
    this.world = structuredClone(world);
    this.calls.length = 0;
    this.fault = undefined;
  }

  /** The stored versions of a parameter, oldest first. */
  versions(name: string): { version: number; value: string }[] {
    return [...(this.world.parameters.get(name)?.versions ?? [])];
  }

  /** Replaces the stored value of a parameter's latest version (someone with ssm:PutParameter but no KMS). */
  tamper(name: string, change: (value: string) => string): void {
    const latest = this.world.parameters.get(name)?.versions.at(-1);
    if (!latest) throw new Error(`no parameter ${name}`);
    latest.value = change(latest.value);
  }

  // ---- faults ----

  /** Fails the call `step` calls from now (0: the next one) with `kind`. */
  arm(kind: FaultKind, step: number): void {
    this.fault = { at: this.calls.length + step, kind };
  }

  disarm(): void {
    this.fault = undefined;
  }

  private async call<T>(name: string, effect: () => T): Promise<T> {
    const index = this.calls.push(name) - 1;
    // Let other requests interleave, as real network calls would.
    await new Promise((resolve) => setImmediate(resolve));
    const fault = this.fault?.at === index ? this.fault : undefined;
    if (!fault) return effect();
    if (fault.kind === 'hang') {
      try {
        effect(); // it happened; the caller just never hears about it
      } catch {
        // the service's own refusal is lost along with the answer
      }
    }
    throw faultError(fault.kind, name.split('.')[0] as Service);
  }

  // ---- SSM ----

  private getParameter(raw: string | undefined) {
    const [name = '', selector] = (raw ?? '').split(':');
    const parameter = this.world.parameters.get(name);
    if (!parameter) throw awsError('ParameterNotFound');
    const entry = selector === undefined ? parameter.versions.at(-1) : parameter.versions.find((v) => v.version === Number(selector));
    if (!entry) throw awsError('ParameterVersionNotFound');
    return { Parameter: { Name: name, Value: entry.value, Version: entry.version, Type: 'String' }, $metadata: {} };
  }

  /** At most 10 names; the missing ones come back as InvalidParameters. */
  private getParameters(names: string[] | undefined) {
    if (!names || names.length === 0 || names.length > 10) throw awsError('ValidationException');
    const Parameters = [];
    const InvalidParameters = [];
    for (const name of names) {
      const latest = this.world.parameters.get(name)?.versions.at(-1);
      if (latest) Parameters.push({ Name: name, Value: latest.value, Version: latest.version, Type: 'String' });
      else InvalidParameters.push(name);
    }
    return { Parameters, InvalidParameters, $metadata: {} };
  }

  /** Oldest first, MaxResults (at most 50) per page. */
  private history(input: { Name?: string; MaxResults?: number; NextToken?: string }) {
    const parameter = this.world.parameters.get(input.Name ?? '');
    if (!parameter) throw awsError('ParameterNotFound');
    const start = input.NextToken === undefined ? 0 : Number(/^h-(\d+)$/.exec(input.NextToken)?.[1] ?? NaN);
    if (!Number.isInteger(start)) throw awsError('InvalidNextToken');
    const max = input.MaxResults ?? 50;
    if (max < 1 || max > 50) throw awsError('ValidationException');
    const page = parameter.versions.slice(start, start + max).map((v) => ({ Name: input.Name, Value: v.value, Version: v.version, Type: 'String' }));
    return { Parameters: page, NextToken: start + max < parameter.versions.length ? `h-${start + max}` : undefined, $metadata: {} };
  }

  private putParameter(input: { Name?: string; Value?: string; Overwrite?: boolean }) {
    const name = input.Name!;
    const existing = this.world.parameters.get(name);
    if (existing && !input.Overwrite) throw awsError('ParameterAlreadyExists');
    if (input.Value === undefined || input.Value.length > 8192) throw awsError('ValidationException');
    const parameter = existing ?? { versions: [] };
    const version = (parameter.versions.at(-1)?.version ?? 0) + 1;
    parameter.versions = [...parameter.versions, { version, value: input.Value }].slice(-MAX_HISTORY);
    this.world.parameters.set(name, parameter);
    return { Version: version, Tier: 'Standard', $metadata: {} };
  }

  private deleteParameter(name: string | undefined) {
    if (!this.world.parameters.delete(name ?? '')) throw awsError('ParameterNotFound');
    return { $metadata: {} };
  }

  private byPath(input: { Path?: string; MaxResults?: number; NextToken?: string }) {
    const under = `${input.Path!.replace(/\/$/, '')}/`;
    const names = [...this.world.parameters.keys()].filter((n) => n.startsWith(under)).sort();
    const start = input.NextToken === undefined ? 0 : Number(/^page-(\d+)$/.exec(input.NextToken)?.[1] ?? NaN);
    if (!Number.isInteger(start)) throw awsError('InvalidNextToken');
    // AWS refuses more than 10 per page, as it refuses history pages over 50.
    const max = input.MaxResults ?? 10;
    if (max < 1 || max > 10) throw awsError('ValidationException');
    const page = names.slice(start, start + max).map((Name) => {
      const latest = this.world.parameters.get(Name)!.versions.at(-1)!;
      return { Name, Value: latest.value, Version: latest.version, Type: 'String' };
    });
    const next = start + max < names.length ? `page-${start + max}` : undefined;
    return { Parameters: page, NextToken: next, $metadata: {} };
  }

  // ---- KMS ----

  private generateDataKey(input: { EncryptionContext?: Record<string, string> }) {
    const plaintext = randomBytes(32);
    const blob = randomBytes(64);
    this.world.dataKeys.set(blob.toString('base64'), { plaintext: plaintext.toString('base64'), context: JSON.stringify(input.EncryptionContext ?? {}) });
    return { Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob), KeyId: KEY_ARN, $metadata: {} };
  }

  private decrypt(input: { CiphertextBlob?: Uint8Array; EncryptionContext?: Record<string, string> }) {
    const key = this.world.dataKeys.get(Buffer.from(input.CiphertextBlob ?? []).toString('base64'));
    if (!key || key.context !== JSON.stringify(input.EncryptionContext ?? {})) throw awsError('InvalidCiphertextException');
    return { Plaintext: new Uint8Array(Buffer.from(key.plaintext, 'base64')), $metadata: {} };
  }

  // ---- EC2 and IAM ----

  private describe(ids: string[] | undefined) {
    const id = ids?.[0] ?? '';
    const instance = this.world.instances.get(id);
    if (!instance) throw awsError('InvalidInstanceID.NotFound');
    return {
      Reservations: [
        {
          OwnerId: instance.owner,
          Instances: [{ InstanceId: id, State: { Name: instance.state }, IamInstanceProfile: { Arn: instance.profileArn } }],
        },
      ],
      $metadata: {},
    };
  }

  private profile(name: string | undefined) {
    const role = this.world.profiles.get(name ?? '');
    if (!role) throw awsError('NoSuchEntity');
    return { InstanceProfile: { InstanceProfileName: name, Roles: [{ RoleName: role, RoleId: this.world.roles.get(role) }] }, $metadata: {} };
  }

  private role(name: string | undefined) {
    const id = this.world.roles.get(name ?? '');
    if (!id) throw awsError('NoSuchEntity');
    return { Role: { RoleName: name, RoleId: id, Arn: `arn:aws:iam::${this.account}:role/${name}` }, $metadata: {} };
  }
}

export interface LoopbackAws {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * `fake`'s Parameter Store and KMS over AWS's JSON protocol on 127.0.0.1, told apart by
 * X-Amz-Target. A target it does not serve is a 400, so an unexpected call fails the request
 * instead of passing unnoticed; the calls land in `fake.calls` as the mocked ones do.
 */
export async function serveLoopbackAws(fake: FakeAws): Promise<LoopbackAws> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return send(400, { __type: 'SerializationException', message: 'not JSON' });
      }
      const answer = fake.answer(target, input);
      if (!answer) return send(400, { __type: 'UnknownOperationException', message: `the stand-in does not serve ${target}` });
      answer.then(
        (body) => send(200, { ...(body as object), $metadata: undefined }),
        (err: Error & { $fault?: string }) => send(err.$fault === 'server' ? 500 : 400, { __type: err.name, message: err.message }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
