// The interfaces the core needs from the outside world. Local files and AWS each
// implement them; nothing here knows which.

/** One record as the store holds it, at its position (the store's own version number). */
export interface StoredRecord {
  readonly record: string;
  readonly seq: number;
}

export interface ListedRecord extends StoredRecord {
  readonly name: string;
}

export interface ListPage {
  /** The latest record of each name. */
  readonly entries: readonly ListedRecord[];
  /** Opaque continuation; absent when the listing is complete. */
  readonly next?: string | undefined;
}

export interface ReadOptions {
  /** Skip any cache: read what the store holds now. */
  readonly fresh?: boolean | undefined;
}

/** Parameter Store keeps the last 100 versions of a parameter; every store keeps as many. */
export const MAX_VERSIONS = 100;

/**
 * Sealed records by name, each name a sequence of records at positions 1, 2, ... (the
 * store's version numbers), plus small bookkeeping values (the wrapped seal keys).
 */
export interface SecretStore {
  /** The newest record of a name, or undefined when it has none. */
  latest(name: string, options?: ReadOptions): Promise<StoredRecord | undefined>;
  /** Every kept record of a name, oldest first. */
  history(name: string): Promise<StoredRecord[]>;
  /**
   * Stores `record` at position `expectedSeq + 1` if the newest position is still
   * `expectedSeq` (0: the name has no record). Returns the position, or undefined when
   * another write got there first; the record may then be stored at another position, where
   * it names the position it wanted and so is recognised as no part of the secret.
   */
  append(name: string, record: string, expectedSeq: number): Promise<number | undefined>;
  /** Destroys every record of a name; false when there was none. */
  purge(name: string): Promise<boolean>;
  /** Names starting with `prefix`, each once, at most `limit` per page, in the store's order (lexical locally; unspecified on Parameter Store). */
  list(prefix: string, limit: number, cursor?: string, options?: ReadOptions): Promise<ListPage>;
  /** The bookkeeping values that exist among `keys`. */
  readMeta(keys: readonly string[]): Promise<Map<string, string>>;
  /** Creates `key` only if absent; false when another writer got there first. */
  createMeta(key: string, value: string): Promise<boolean>;
  deleteMeta(key: string): Promise<void>;
}

/** Wraps data keys under a key this process never sees in the clear (KMS, or the local key file). */
export interface KeyWrapper {
  generateDataKey(): Promise<{ plaintext: Uint8Array; wrapped: string }>;
  unwrap(wrapped: string): Promise<Uint8Array>;
}

export interface InstanceIdentity {
  readonly instanceId: string;
  readonly accountId: string;
  readonly region: string;
  /** When the instance was launched or last started (ISO 8601), if the document says. */
  readonly pendingTime?: string | undefined;
}

/** Maps a verified instance to the IAM role it runs as; throws `invalid_credentials` if none. */
export interface RoleResolver {
  resolveRole(identity: InstanceIdentity): Promise<ResolvedRole>;
}

/** A signed sts:GetCallerIdentity request, checked and ready to send: always POST, form body. */
export interface SignedStsRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Who STS says signed the request. */
export interface CallerIdentity {
  readonly arn: string;
  readonly account: string;
  /** For an assumed role: `<role unique id>:<session name>`. */
  readonly userId?: string | undefined;
}

/** Sends a checked request to STS; throws `invalid_credentials` if STS refuses the signature. */
export interface StsGateway {
  getCallerIdentity(request: SignedStsRequest): Promise<CallerIdentity>;
}

/**
 * One line of the audit log: who did what to which secret, and how it went. Only these
 * fields, so no secret, token, key, identity document or signed request can reach it.
 */
export interface AuditRecord {
  readonly time: string;
  readonly requestId: string;
  /** How this request authenticated: a token, or a login (EC2 document, IAM) in the request itself. */
  readonly auth?: 'token' | 'ec2' | 'iam' | undefined;
  readonly role?: string | undefined;
  /** The role's account. */
  readonly account?: string | undefined;
  /** Instance id, or role/session for IAM. */
  readonly principal?: string | undefined;
  readonly operation: string;
  /** The secret name or list prefix, when it was a valid one. */
  readonly name?: string | undefined;
  readonly outcome: 'ok' | 'denied' | 'refused' | 'error';
  readonly status: number;
  /** The error code, when there was one. */
  readonly code?: string | undefined;
  /** A finer reason than the code, e.g. why a 404 was given to a caller who may not read. */
  readonly reason?: string | undefined;
  /** The version written or read, when there was one. */
  readonly version?: number | undefined;
  readonly latencyMs: number;
}

export interface AuditSink {
  write(record: AuditRecord): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** What the role resolver learns about an instance's role. */
export interface ResolvedRole {
  readonly role: string;
  /** The role's unique id (AROA...), where AWS gives one. */
  readonly roleId?: string | undefined;
}

/** Role name -> its unique id in an account (iam:GetRole); undefined: no such role. */
export interface RoleDirectory {
  roleId(account: string, name: string): Promise<string | undefined>;
}

/** Small conditional key-value bookkeeping (nonce bindings): local files, Parameter Store meta, or DynamoDB. */
export interface Bookkeeping {
  read(key: string): Promise<string | undefined>;
  /** false when the key already exists (another writer got there first). */
  createIfAbsent(key: string, value: string): Promise<boolean>;
}

/**
 * EC2 instance states as EventBridge reports them to this deployment (the instance-events
 * function writes them, logins read them): what an IAM login made with an instance's role
 * credentials is checked against, without an EC2 call.
 */
export interface InstanceStates {
  /** The newest state recorded for the instance ('running', 'terminated', ...); undefined when none was. */
  state(instanceId: string): Promise<string | undefined>;
  /** Records `state` with its place in the order of reports (core/replay.ts `stateOrder`); a lower one never replaces a higher one. */
  record(instanceId: string, state: string, order: number): Promise<void>;
}

/** One change to the store, as published: names and numbers, never a value or token. */
export interface ChangeEvent {
  readonly operation: 'put' | 'delete' | 'restore' | 'purge' | 'rotate-seal-key' | 'retire-seal-key' | 'restore-backup';
  readonly name?: string | undefined;
  readonly version?: number | undefined;
  readonly actor: { readonly role: string; readonly account: string; readonly principal: string };
  readonly time: string;
}

/** Change events out (EventBridge); a failure is counted and logged by the caller, never fails the write. */
export interface EventPublisher {
  publish(events: readonly ChangeEvent[]): Promise<void>;
}
