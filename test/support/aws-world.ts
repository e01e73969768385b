// The state of one stand-in AWS account and what each API does to it, written once: the
// mocked SDK clients and the loopback server (aws-wire.ts) both call `AwsWorld.handle` with
// the SDK's input shape and get the SDK's output shape back, or an AwsError carrying the
// service's error code and HTTP status. Where moto_server and AWS differ, this follows AWS
// (test/aws/stand-in-parity.test.ts lists the differences).

import { randomBytes, randomUUID } from 'node:crypto';

export type Service = 'SSM' | 'KMS' | 'EC2' | 'IAM' | 'STS' | 'DynamoDB' | 'EventBridge';

/** A service's refusal: `code` as it goes on the wire, the HTTP status it goes with. */
export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Further fields of the error body (DynamoDB's Item on a failed condition). */
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = code;
  }
}

const validation = (message: string) => new AwsError('ValidationException', message);

/** Credentials the stand-in's STS knows: who signed a request with this access key id. */
export interface StandInCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  /** arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, or arn:aws:iam::ACCOUNT:user/NAME. */
  readonly arn: string;
  /** AROA...:SESSION for a role session, AIDA... for a user. */
  readonly userId: string;
  readonly account: string;
  /** When they expire, as IMDS reports for instance credentials; usable as the SDK's credentials as they are. */
  readonly expiration?: Date | undefined;
}

export interface ParameterVersion {
  version: number;
  value: string;
  /** Epoch ms. */
  modified: number;
}

interface Parameter {
  type: string;
  tier: 'Standard' | 'Advanced';
  versions: ParameterVersion[];
}

export interface InstanceRecord {
  owner: string;
  state: string;
  region: string;
  /** ISO 8601, the identity document's pendingTime. */
  launched: string;
  /** Its instance profile, the profile's role, and that role's session credentials it holds (in `credentials`); undefined: none attached. */
  profile: InstanceProfile | undefined;
}

export interface InstanceProfile {
  arn: string;
  role: string;
  accessKeyId: string;
}

/** DynamoDB's JSON form of a value: { S: "x" }, { N: "1" }, { B: bytes }, { M: {...} }, ... */
export type AttributeValue = Record<string, unknown>;
export type Item = Record<string, AttributeValue>;

interface Table {
  key: string;
  items: Map<string, Item>;
}

export interface PutEventsEntry {
  EventBusName?: string;
  Source?: string;
  DetailType?: string;
  Detail?: string;
  Resources?: string[];
  Time?: Date;
}

/** Everything one account holds; plain data, so `structuredClone` snapshots it. */
export interface World {
  parameters: Map<string, Parameter>;
  dataKeys: Map<string, { plaintext: Uint8Array; context: string; keyId: string }>;
  instances: Map<string, InstanceRecord>;
  /** Instance profile name -> its one role. */
  profiles: Map<string, { role: string; id: string; account: string; created: number }>;
  /** Role name -> unique id (AROA...). */
  roles: Map<string, { id: string; created: number }>;
  tables: Map<string, Table>;
  /** Every event PutEvents accepted, oldest first. */
  events: (PutEventsEntry & { EventId: string })[];
  /** Access key id -> credentials. */
  credentials: Map<string, StandInCredentials>;
}

export function emptyWorld(): World {
  return {
    parameters: new Map(),
    dataKeys: new Map(),
    instances: new Map(),
    profiles: new Map(),
    roles: new Map(),
    tables: new Map(),
    events: [],
    credentials: new Map(),
  };
}

/** What the transport knows about a call beyond its input: STS's caller, once its signature is checked. */
export interface CallContext {
  /** The access key id an STS request's Authorization header names, whether or not the signature holds. */
  readonly accessKeyId?: string | undefined;
  readonly caller?: StandInCredentials | undefined;
  /** Why the signature was refused: STS answers with it. */
  readonly authError?: AwsError | undefined;
}

/** Random upper-case letters and digits, as AWS's ids have. */
export function randomId(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return [...randomBytes(length)].map((b) => alphabet[b % 32]).join('');
}

const REGION = 'us-east-1';
/** Standard-tier values hold 4,096 characters, Advanced 8,192 (Parameter Store's tiers). */
const STANDARD_LIMIT = 4096;
const ADVANCED_LIMIT = 8192;
/** Parameter Store keeps the last 100 versions; a put beyond drops the oldest. */
const MAX_VERSIONS = 100;
const STATE_CODES: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

/** Opaque continuation tokens, resumed from the last item returned (so a concurrent write skips nothing). */
function token(state: object): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

function untoken<T>(raw: string | undefined, check: (state: Record<string, unknown>) => T | undefined): T | undefined {
  if (raw === undefined) return undefined;
  let state: unknown;
  try {
    state = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    state = undefined;
  }
  const checked = state && typeof state === 'object' ? check(state as Record<string, unknown>) : undefined;
  if (checked === undefined) throw new AwsError('InvalidNextToken', 'The specified token isn\'t valid.');
  return checked;
}

function pageSize(max: number | undefined, fallback: number, limit: number): number {
  const size = max ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > limit) {
    throw validation(`1 validation error detected: Value '${size}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to ${limit}`);
  }
  return size;
}

/** A sorted key, so an encryption context matches whatever order its pairs come in. */
function contextKey(context: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export class AwsWorld {
  state: World = emptyWorld();

  constructor(readonly account: string) {}

  /** One call: `op` is "SSM.GetParameter" and the like. Throws AwsError as the service refuses. */
  handle(op: string, input: Record<string, unknown>, context: CallContext = {}): Record<string, unknown> {
    const i = input as never;
    switch (op) {
      case 'SSM.GetParameter':
        return this.getParameter(i);
      case 'SSM.GetParameters':
        return this.getParameters(i);
      case 'SSM.GetParameterHistory':
        return this.history(i);
      case 'SSM.GetParametersByPath':
        return this.byPath(i);
      case 'SSM.PutParameter':
        return this.putParameter(i);
      case 'SSM.DeleteParameter':
        return this.deleteParameter(i);
      case 'KMS.GenerateDataKey':
        return this.generateDataKey(i);
      case 'KMS.Decrypt':
        return this.decrypt(i);
      case 'EC2.DescribeInstances':
        return this.describeInstances(i);
      case 'IAM.GetInstanceProfile':
        return this.instanceProfile(i);
      case 'IAM.GetRole':
        return this.role(i);
      case 'STS.GetCallerIdentity':
        return this.callerIdentity(context);
      case 'DynamoDB.GetItem':
        return this.getItem(i);
      case 'DynamoDB.PutItem':
        return this.putItem(i);
      case 'DynamoDB.DeleteItem':
        return this.deleteItem(i);
      case 'EventBridge.PutEvents':
        return this.putEvents(i);
      default:
        throw new AwsError('UnknownOperationException', `the stand-in does not serve ${op}`);
    }
  }

  // ---- identities ----

  /** Creates (or, called again, deletes and recreates) a role: a new unique id each time. */
  addRole(role: string, now = Date.now()): string {
    const id = `AROA${randomId(17)}`;
    this.state.roles.set(role, { id, created: now });
    return id;
  }

  roleId(role: string): string | undefined {
    return this.state.roles.get(role)?.id;
  }

  /** An instance profile named `<role>-profile` holding `role` (created if need be); its ARN. */
  ensureProfile(role: string, account: string): string {
    const name = `${role}-profile`;
    if (!this.state.roles.has(role)) this.addRole(role);
    const existing = this.state.profiles.get(name);
    if (!existing || existing.role !== role) this.state.profiles.set(name, { role, id: `AIPA${randomId(17)}`, account, created: Date.now() });
    return `arn:aws:iam::${account}:instance-profile/${name}`;
  }

  addCredentials(credentials: StandInCredentials): void {
    this.state.credentials.set(credentials.accessKeyId, { ...credentials });
  }

  /** Fresh session credentials for `role` (created if need be), as AssumeRole would return them. */
  sessionCredentials(role: string, session: string, account: string, lifetimeMs = 6 * 3600_000): StandInCredentials {
    const roleId = this.roleId(role) ?? this.addRole(role);
    const credentials: StandInCredentials = {
      accessKeyId: `ASIA${randomId(16)}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(96).toString('base64'),
      arn: `arn:aws:sts::${account}:assumed-role/${role}/${session}`,
      userId: `${roleId}:${session}`,
      account,
      expiration: new Date(Math.floor((Date.now() + lifetimeMs) / 1000) * 1000),
    };
    this.addCredentials(credentials);
    return credentials;
  }

  // ---- SSM ----

  private getParameter(input: { Name?: string }) {
    const [name = '', selector, ...rest] = (input.Name ?? '').split(':');
    if (rest.length > 0 || (selector !== undefined && !/^\d+$/.test(selector))) {
      throw validation('the stand-in reads a version by number (name:N) only; labels and ARNs are not served');
    }
    const parameter = this.state.parameters.get(name);
    if (!parameter) throw new AwsError('ParameterNotFound', `Parameter ${name} not found.`);
    const entry = selector === undefined ? parameter.versions.at(-1) : parameter.versions.find((v) => v.version === Number(selector));
    if (!entry) throw new AwsError('ParameterVersionNotFound', `Systems Manager could not find version ${selector} of ${name}. Verify the version and try again.`);
    return { Parameter: this.parameterOut(name, parameter, entry) };
  }

  private parameterOut(name: string, parameter: Parameter, entry: ParameterVersion) {
    return {
      Name: name,
      Type: parameter.type,
      Value: entry.value,
      Version: entry.version,
      LastModifiedDate: new Date(entry.modified),
      ARN: `arn:aws:ssm:${REGION}:${this.account}:parameter/${name.replace(/^\//, '')}`,
      DataType: 'text',
    };
  }

  /** At most 10 names; the missing ones come back as InvalidParameters. */
  private getParameters(input: { Names?: string[] }) {
    const names = input.Names ?? [];
    if (names.length === 0 || names.length > 10) {
      throw validation("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10");
    }
    const Parameters = [];
    const InvalidParameters = [];
    for (const name of new Set(names)) {
      const parameter = this.state.parameters.get(name);
      const latest = parameter?.versions.at(-1);
      if (parameter && latest) Parameters.push(this.parameterOut(name, parameter, latest));
      else InvalidParameters.push(name);
    }
    return { Parameters, InvalidParameters };
  }

  /** Oldest first, MaxResults (at most 50, 50 by default) a page. */
  private history(input: { Name?: string; MaxResults?: number; NextToken?: string }) {
    const name = input.Name ?? '';
    const max = pageSize(input.MaxResults, 50, 50);
    const after = untoken(input.NextToken, (s) => (s.n === name && typeof s.v === 'number' ? s.v : undefined)) ?? 0;
    const parameter = this.state.parameters.get(name);
    if (!parameter) throw new AwsError('ParameterNotFound', `Parameter ${name} not found.`);
    const rest = parameter.versions.filter((v) => v.version > after);
    const page = rest.slice(0, max);
    return {
      Parameters: page.map((v) => ({ ...this.parameterOut(name, parameter, v), Tier: parameter.tier, Labels: [], Policies: [] })),
      NextToken: rest.length > max ? token({ n: name, v: page.at(-1)!.version }) : undefined,
    };
  }

  private putParameter(input: { Name?: string; Value?: string; Type?: string; Overwrite?: boolean; Tier?: string }) {
    const name = input.Name ?? '';
    const value = input.Value ?? '';
    const existing = this.state.parameters.get(name);
    if (value.length < 1) throw validation("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.");
    if (value.length > ADVANCED_LIMIT) {
      throw validation(`1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to ${ADVANCED_LIMIT}`);
    }
    const tier = this.tierFor(input.Tier, value, existing?.tier);
    if (existing && !input.Overwrite) {
      throw new AwsError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    }
    if (!existing && !input.Type) throw validation('A parameter type is required when you create a parameter.');
    const parameter = existing ?? { type: input.Type!, tier, versions: [] };
    const version = (parameter.versions.at(-1)?.version ?? 0) + 1;
    parameter.tier = tier;
    parameter.versions = [...parameter.versions, { version, value, modified: Date.now() }].slice(-MAX_VERSIONS);
    this.state.parameters.set(name, parameter);
    return { Version: version, Tier: tier };
  }

  /**
   * The tier a put lands in, as Parameter Store decides it: Intelligent-Tiering picks Advanced
   * only for a value over 4 KB (or a parameter already Advanced); Standard refuses both; no
   * tier means the account's default, Standard.
   */
  private tierFor(requested: string | undefined, value: string, current: Parameter['tier'] | undefined): Parameter['tier'] {
    const wanted = requested ?? 'Standard';
    if (wanted === 'Advanced') return 'Advanced';
    if (wanted === 'Intelligent-Tiering') return value.length > STANDARD_LIMIT || current === 'Advanced' ? 'Advanced' : 'Standard';
    if (wanted !== 'Standard') throw validation(`1 validation error detected: Value '${wanted}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]`);
    if (current === 'Advanced') {
      throw validation("This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.");
    }
    if (value.length > STANDARD_LIMIT) {
      throw validation(`Standard tier parameters support a maximum parameter value of ${STANDARD_LIMIT} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.`);
    }
    return 'Standard';
  }

  private deleteParameter(input: { Name?: string }) {
    if (!this.state.parameters.delete(input.Name ?? '')) throw new AwsError('ParameterNotFound', `Parameter ${input.Name} not found.`);
    return {};
  }

  /** Names in order, MaxResults (at most 10, 10 by default) a page; only direct children unless Recursive. */
  private byPath(input: { Path?: string; Recursive?: boolean; MaxResults?: number; NextToken?: string }) {
    const path = input.Path ?? '';
    if (!path.startsWith('/')) throw validation('The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".');
    const under = path === '/' ? '/' : `${path.replace(/\/$/, '')}/`;
    const recursive = input.Recursive === true;
    const max = pageSize(input.MaxResults, 10, 10);
    const after = untoken(input.NextToken, (s) => (s.p === under && s.r === recursive && typeof s.a === 'string' ? s.a : undefined));
    const names = [...this.state.parameters.keys()]
      .filter((n) => n.startsWith(under) && (recursive || !n.slice(under.length).includes('/')) && (after === undefined || n > after))
      .sort();
    const page = names.slice(0, max);
    return {
      Parameters: page.map((name) => {
        const parameter = this.state.parameters.get(name)!;
        return this.parameterOut(name, parameter, parameter.versions.at(-1)!);
      }),
      NextToken: names.length > max ? token({ p: under, r: recursive, a: page.at(-1) }) : undefined,
    };
  }

  // ---- KMS ----

  private generateDataKey(input: { KeyId?: string; KeySpec?: string; NumberOfBytes?: number; EncryptionContext?: Record<string, string> }) {
    if (!input.KeyId) throw validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    const bytes = input.KeySpec === 'AES_256' ? 32 : input.KeySpec === 'AES_128' ? 16 : input.NumberOfBytes;
    if (bytes === undefined || (input.KeySpec !== undefined && input.NumberOfBytes !== undefined) || bytes < 1 || bytes > 1024) {
      throw validation('Please specify either number of bytes or key spec.');
    }
    const plaintext = new Uint8Array(randomBytes(bytes));
    const blob = new Uint8Array(randomBytes(bytes + 152)); // AWS's blobs carry a header, the key id and a tag besides the key
    const keyId = this.keyArn(input.KeyId);
    this.state.dataKeys.set(Buffer.from(blob).toString('base64'), { plaintext, context: contextKey(input.EncryptionContext), keyId });
    return { Plaintext: plaintext, CiphertextBlob: blob, KeyId: keyId };
  }

  /** The stand-in holds every key: a key ARN is itself, any other key id or alias the account's one test key. */
  private keyArn(keyId: string): string {
    return /^arn:aws[a-z-]*:kms:[^:]+:\d{12}:key\//.test(keyId) ? keyId : `arn:aws:kms:${REGION}:${this.account}:key/test`;
  }

  private decrypt(input: { CiphertextBlob?: Uint8Array; KeyId?: string; EncryptionContext?: Record<string, string> }) {
    const key = this.state.dataKeys.get(Buffer.from(input.CiphertextBlob ?? []).toString('base64'));
    if (!key || key.context !== contextKey(input.EncryptionContext)) throw new AwsError('InvalidCiphertextException', '');
    if (input.KeyId !== undefined && this.keyArn(input.KeyId) !== key.keyId) {
      throw new AwsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    }
    return { Plaintext: new Uint8Array(key.plaintext), KeyId: key.keyId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  }

  // ---- EC2 ----

  private describeInstances(input: { InstanceIds?: string[]; Filters?: { Name?: string; Values?: string[] }[] }) {
    const ids = input.InstanceIds ?? [];
    for (const id of ids) {
      // AWS's ids are i- and 8 or 17 hex digits; the stand-in takes 8 to 17 (the benchmark mints 16).
      if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw new AwsError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
      if (!this.state.instances.has(id)) throw new AwsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    const filters = (input.Filters ?? []).map((f) => ({ name: f.Name ?? '', values: f.Values ?? [] }));
    const matches: Record<string, (i: InstanceRecord, id: string) => string> = {
      'instance-state-name': (i) => i.state,
      'iam-instance-profile.arn': (i) => i.profile?.arn ?? '',
      'instance-id': (_, id) => id,
      'owner-id': (i) => i.owner,
    };
    for (const { name } of filters) {
      if (!matches[name]) throw new AwsError('InvalidParameterValue', `The filter '${name}' is invalid (the stand-in serves ${Object.keys(matches).join(', ')})`);
    }
    const chosen = ids.length > 0 ? ids : [...this.state.instances.keys()];
    const Reservations = chosen
      .map((id) => [id, this.state.instances.get(id)!] as const)
      .filter(([id, i]) => filters.every((f) => f.values.includes(matches[f.name]!(i, id))))
      .map(([id, i]) => ({
        ReservationId: `r-${id.slice(2)}`,
        OwnerId: i.owner,
        Groups: [],
        Instances: [
          {
            InstanceId: id,
            State: { Code: STATE_CODES[i.state] ?? 16, Name: i.state },
            ...(i.profile ? { IamInstanceProfile: { Arn: i.profile.arn, Id: this.state.profiles.get(i.profile.arn.slice(i.profile.arn.lastIndexOf('/') + 1))?.id } } : {}),
            LaunchTime: new Date(i.launched),
            Placement: { AvailabilityZone: `${i.region}a` },
          },
        ],
      }));
    return { Reservations };
  }

  // ---- IAM ----

  private roleOut(name: string) {
    const role = this.state.roles.get(name);
    if (!role) return undefined;
    return {
      Path: '/',
      RoleName: name,
      RoleId: role.id,
      Arn: `arn:aws:iam::${this.account}:role/${name}`,
      CreateDate: new Date(role.created),
      // IAM answers the trust policy URL-encoded.
      AssumeRolePolicyDocument: encodeURIComponent(JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] })),
      MaxSessionDuration: 3600,
    };
  }

  private instanceProfile(input: { InstanceProfileName?: string }) {
    const name = input.InstanceProfileName ?? '';
    const profile = this.state.profiles.get(name);
    if (!profile) throw new AwsError('NoSuchEntity', `Instance Profile ${name} cannot be found.`, 404);
    const role = this.roleOut(profile.role);
    return {
      InstanceProfile: {
        Path: '/',
        InstanceProfileName: name,
        InstanceProfileId: profile.id,
        Arn: `arn:aws:iam::${profile.account}:instance-profile/${name}`,
        CreateDate: new Date(profile.created),
        Roles: role ? [role] : [],
      },
    };
  }

  private role(input: { RoleName?: string }) {
    const role = this.roleOut(input.RoleName ?? '');
    if (!role) throw new AwsError('NoSuchEntity', `The role with name ${input.RoleName} cannot be found.`, 404);
    return { Role: role };
  }

  // ---- STS ----

  private callerIdentity(context: CallContext) {
    if (context.authError) throw context.authError;
    if (!context.caller) throw new AwsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
    return { Arn: context.caller.arn, UserId: context.caller.userId, Account: context.caller.account };
  }

  // ---- DynamoDB ----

  createTable(name: string, key: string): void {
    this.state.tables.set(name, { key, items: new Map() });
  }

  private table(name: string | undefined): Table {
    const table = this.state.tables.get(name ?? '');
    if (!table) throw new AwsError('ResourceNotFoundException', 'Requested resource not found');
    return table;
  }

  /** The item's key as a map key; refuses a key that is not exactly the table's. */
  private keyOf(table: Table, key: Item | undefined): string {
    const names = Object.keys(key ?? {});
    const value = key?.[table.key];
    if (names.length !== 1 || value === undefined) throw validation('The provided key element does not match the schema');
    const [type, raw] = Object.entries(value)[0] ?? [];
    if (!['S', 'N', 'B'].includes(type ?? '') || raw === '' || (raw instanceof Uint8Array && raw.length === 0)) {
      throw validation('One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value.');
    }
    return JSON.stringify([type, raw instanceof Uint8Array ? Buffer.from(raw).toString('base64') : raw]);
  }

  private getItem(input: { TableName?: string; Key?: Item; ConsistentRead?: boolean; ProjectionExpression?: string; AttributesToGet?: string[] }) {
    if (input.ProjectionExpression !== undefined || input.AttributesToGet !== undefined) {
      throw validation('the stand-in returns whole items: ProjectionExpression and AttributesToGet are not served');
    }
    const table = this.table(input.TableName);
    const item = table.items.get(this.keyOf(table, input.Key));
    // Every read is strongly consistent here; an eventually consistent one on AWS may be older.
    return item ? { Item: structuredClone(item) } : {};
  }

  private putItem(input: WriteInput & { Item?: Item }) {
    const table = this.table(input.TableName);
    const item = input.Item ?? {};
    const key = this.keyOf(table, { [table.key]: item[table.key]! });
    if (JSON.stringify(item, (_, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)).length > 400 * 1024) {
      throw validation('Item size has exceeded the maximum allowed size');
    }
    const old = table.items.get(key);
    this.checkCondition(input, old);
    table.items.set(key, structuredClone(item));
    return input.ReturnValues === 'ALL_OLD' && old ? { Attributes: old } : {};
  }

  private deleteItem(input: WriteInput & { Key?: Item }) {
    const table = this.table(input.TableName);
    const key = this.keyOf(table, input.Key);
    const old = table.items.get(key);
    this.checkCondition(input, old);
    table.items.delete(key);
    return input.ReturnValues === 'ALL_OLD' && old ? { Attributes: old } : {};
  }

  /**
   * The two condition forms dssss writes, `attribute_not_exists(k)` and
   * `attribute_not_exists(k) OR #t < :t`; anything else is a ValidationException, so code that
   * grows a third form fails loudly here instead of passing on a condition never evaluated.
   */
  private checkCondition(input: WriteInput, old: Item | undefined): void {
    if (input.ReturnValues !== undefined && !['NONE', 'ALL_OLD'].includes(input.ReturnValues)) {
      throw validation(`the stand-in serves ReturnValues NONE and ALL_OLD, not ${input.ReturnValues}`);
    }
    if (input.Expected !== undefined) throw validation('the stand-in serves ConditionExpression, not the legacy Expected');
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    const used = { names: new Set<string>(), values: new Set<string>() };
    const name = (token: string) => {
      if (!token.startsWith('#')) return token;
      used.names.add(token);
      const resolved = names[token];
      if (resolved === undefined) throw validation(`An expression attribute name used in the document path is not defined; attribute name: ${token}`);
      return resolved;
    };
    let holds = true;
    if (input.ConditionExpression !== undefined) {
      const form = /^\s*attribute_not_exists\(\s*(#?[A-Za-z0-9_]+)\s*\)\s*(?:OR\s+(#?[A-Za-z0-9_]+)\s*<\s*(:[A-Za-z0-9_]+)\s*)?$/i.exec(input.ConditionExpression);
      if (!form || !input.ConditionExpression.includes('attribute_not_exists(')) {
        throw validation(`the stand-in evaluates attribute_not_exists(k) [OR #t < :t] only, not: ${input.ConditionExpression}`);
      }
      const absent = old === undefined || old[name(form[1]!)] === undefined;
      holds = absent;
      if (form[2] !== undefined) {
        const attribute = name(form[2]);
        used.values.add(form[3]!);
        const bound = values[form[3]!];
        if (bound === undefined) throw validation(`An expression attribute value used in expression is not defined; attribute value: ${form[3]}`);
        holds = absent || lessThan(old?.[attribute], bound);
      }
    }
    const unusedNames = Object.keys(names).filter((n) => !used.names.has(n));
    if (unusedNames.length > 0) throw validation(`Value provided in ExpressionAttributeNames unused in expressions: keys: {${unusedNames.join(', ')}}`);
    const unusedValues = Object.keys(values).filter((v) => !used.values.has(v));
    if (unusedValues.length > 0) throw validation(`Value provided in ExpressionAttributeValues unused in expressions: keys: {${unusedValues.join(', ')}}`);
    if (!holds) {
      const extra = input.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && old ? { Item: structuredClone(old) } : {};
      throw new AwsError('ConditionalCheckFailedException', 'The conditional request failed', 400, extra);
    }
  }

  // ---- EventBridge ----

  /** Every entry is checked on its own, as EventBridge does: a bad one fails alone. */
  private putEvents(input: { Entries?: PutEventsEntry[] }) {
    const entries = input.Entries ?? [];
    if (entries.length < 1 || entries.length > 10) {
      throw validation("1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10");
    }
    const results = entries.map((entry) => {
      for (const field of ['Source', 'DetailType', 'Detail'] as const) {
        if (!entry[field]) return { ErrorCode: 'InvalidArgument', ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
      }
      try {
        JSON.parse(entry.Detail!);
      } catch {
        return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
      }
      const EventId = randomUUID();
      this.state.events.push({ ...structuredClone(entry), EventBusName: entry.EventBusName ?? 'default', EventId });
      return { EventId };
    });
    return { FailedEntryCount: results.filter((r) => 'ErrorCode' in r).length, Entries: results };
  }
}

interface WriteInput {
  TableName?: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
  ReturnValues?: string;
  ReturnValuesOnConditionCheckFailure?: string;
  Expected?: unknown;
}

/** DynamoDB's `<`: numbers by value, strings and binaries by their bytes; anything else (a missing attribute, two types) is false. */
function lessThan(a: AttributeValue | undefined, b: AttributeValue): boolean {
  if (a?.N !== undefined && b.N !== undefined) return Number(a.N) < Number(b.N);
  if (typeof a?.S === 'string' && typeof b.S === 'string') return Buffer.compare(Buffer.from(a.S), Buffer.from(b.S)) < 0;
  if (a?.B instanceof Uint8Array && b.B instanceof Uint8Array) return Buffer.compare(a.B, b.B) < 0;
  return false;
}
