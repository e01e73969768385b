// Composition root: config -> adapters -> SecretService and AdminService. Tests replace
// parts through Overrides, so the wiring they exercise is the wiring that ships. Everything
// built here lives as long as the process (one Lambda container, or one local server).

import { readFile } from 'node:fs/promises';
import { CachedSecretStore, type CacheCounts } from './adapters/read-cache';
import type { AwsConfig, Config, LocalConfig } from './config';
import { AdminService } from './core/admin';
import { ExpiringCache } from './core/cache';
import { memoize } from './core/memo';
import { Policy } from './core/policy';
import { livenessByEvents, livenessByResolver, NonceBindings } from './core/replay';
import { SealKeyRing } from './core/seal-keys';
import { SecretService } from './core/service';
import {
  systemClock,
  type AuditSink,
  type Bookkeeping,
  type Clock,
  type EventPublisher,
  type InstanceStates,
  type KeyWrapper,
  type ResolvedRole,
  type RoleDirectory,
  type RoleResolver,
  type SecretStore,
  type StsGateway,
} from './ports';


interface Backends {
  store: SecretStore;
  wrapper: KeyWrapper;
  roles: RoleResolver;
  directory?: RoleDirectory | undefined;
  events?: EventPublisher | undefined;
  /** Per-instance bookkeeping of its own (DynamoDB); undefined: nonce bindings in the store's meta, instances looked up by the resolver. */
  bookkeeping?: (Bookkeeping & InstanceStates) | undefined;
  /** Whether the store holds nonce bindings of an earlier release (Parameter Store's meta tree). */
  legacyProbe?: (() => Promise<boolean>) | undefined;
  /** Certificates this backend trusts beyond AWS's (the local development CA). */
  trusted: string[];
}

/** What a test (or a simulation) replaces; everything else is built as it ships. */
export interface Overrides {
  readonly clock?: Clock;
  readonly store?: SecretStore;
  readonly wrapper?: KeyWrapper;
  readonly roles?: RoleResolver;
  readonly sts?: StsGateway;
  /** null: no role-id pinning. */
  readonly directory?: RoleDirectory | null;
  readonly events?: EventPublisher;
  readonly bookkeeping?: Bookkeeping & InstanceStates;
  /** The EC2 and IAM clients' deadlines per attempt and backoff (aws-client.ts's, the SDK's); a test of faults need not wait seconds a try. */
  readonly queryTimings?: { readonly connectionTimeoutMs?: number; readonly requestTimeoutMs?: number; readonly backoffScale?: number };
}

export interface Runtime {
  readonly service: SecretService;
  readonly admin: AdminService;
  /** Loads the seal keys and reads the store once (at most every READINESS_TTL_MS): what `/v1/ready` reports. */
  readonly ready: () => Promise<Readiness>;
  /** The read cache's hits and misses, when it is on. */
  readonly cacheCounts?: CacheCounts | undefined;
  /** Change events that could not be published (the writes stood). */
  readonly eventFailures: { count: number };
}

/** A name no secret can have (names may not end in "/versions"): reading it proves the store answers. */
const READINESS_PROBE = 'dssss/readiness/versions';
/**
 * How long a readiness answer stands. The route is public: without this, anyone could spend
 * the account's Parameter Store reads (40/s, shared) at the API's own rate.
 */
export const READINESS_TTL_MS = 15_000;

/** What failed first, in the order a request needs them; the error says why. */
export type Readiness = { readonly ok: true } | { readonly ok: false; readonly step: 'seal keys' | 'store'; readonly error: unknown };

export async function createRuntime(config: Config, overrides: Overrides = {}): Promise<Runtime> {
  const clock = overrides.clock ?? systemClock;
  const built = config.backend === 'local' ? await localBackends(config) : await awsBackends(config, clock, overrides.queryTimings);
  const backends: Backends = {
    ...built,
    store: overrides.store ?? built.store,
    wrapper: overrides.wrapper ?? built.wrapper,
    roles: overrides.roles ?? built.roles,
    directory: overrides.directory === null ? undefined : (overrides.directory ?? built.directory),
    events: overrides.events ?? built.events,
    bookkeeping: overrides.bookkeeping ?? built.bookkeeping,
  };
  // The identity module (PKCS#7, ASN.1, AWS's ~40 certificates: about 120 kB) loads on the
  // first document login, or at start when there are certificates of the operator's to check:
  // reads with a token and IAM logins never need it. A certificate is parsed when a document names it.
  const identity = memoize(async () => {
    const [certs, pkcs7] = await Promise.all([import('./identity/certs'), import('./identity/pkcs7')]);
    return { certs, verify: pkcs7.verifyIdentityDocument };
  });
  const extra = [...(await extraCertificates(config, identity)), ...backends.trusted];
  if (extra.length > 0) (await identity()).certs.TrustStore.fromPems(extra); // a bad certificate of the operator's still fails the start
  const trust = memoize(async () => (await identity()).certs.awsTrustStore(extra));
  const policy = new Policy(config);
  const keys = new SealKeyRing(backends.store, backends.wrapper, clock);
  const store = config.readCacheSeconds > 0 ? new CachedSecretStore(backends.store, config.readCacheSeconds * 1000, clock) : backends.store;
  const eventFailures = { count: 0 };
  const service = new SecretService({
    store,
    keys,
    roles: backends.roles,
    verifyIdentity: async (document) => (await identity()).verify(document, await trust()),
    policy,
    allowedAccounts: config.allowedAccounts,
    iam: config.iamLogin === undefined ? undefined : { config: config.iamLogin, sts: overrides.sts ?? lazyStsGateway() },
    clock,
    tokenTtlSeconds: config.tokenTtlSeconds,
    instances: backends.bookkeeping ? livenessByEvents(backends.bookkeeping) : livenessByResolver(backends.roles),
    instanceRoles: livenessByResolver(backends.roles),
    nonces: config.nonceMode === 'off' ? undefined : new NonceBindings(bindings(config, backends), config.nonceMode, nonceCache(config, clock)),
    maxDocumentAgeSeconds: config.maxDocumentAgeSeconds,
    directory: backends.directory,
    events: backends.events,
    onEventFailure: (err) => {
      eventFailures.count++;
      console.error(JSON.stringify({ level: 'error', message: 'change event not published', error: (err as Error)?.name }));
    },
  });
  const admin = new AdminService({
    store,
    keys,
    ledger: service.records,
    policy,
    clock,
    publish: (event) => service.publish(event),
    wrapper: backends.wrapper,
  });
  const check = async (): Promise<Readiness> => {
    try {
      await keys.ring();
    } catch (error) {
      return { ok: false, step: 'seal keys', error };
    }
    try {
      await backends.store.latest(READINESS_PROBE, { fresh: true });
    } catch (error) {
      return { ok: false, step: 'store', error };
    }
    return { ok: true };
  };
  // One check in flight, its answer shared until it is READINESS_TTL_MS old.
  let last: { at: number; answer: Promise<Readiness> } | undefined;
  const ready = () => {
    if (last === undefined || clock.now() - last.at >= READINESS_TTL_MS) last = { at: clock.now(), answer: check() };
    return last.answer;
  };
  return { service, admin, ready, cacheCounts: store instanceof CachedSecretStore ? store.counts : undefined, eventFailures };
}

/** Where nonce bindings live: the bookkeeping table if there is one, else the store's meta values. */
function bindings(config: Config, backends: Backends): Bookkeeping {
  const meta: Bookkeeping = {
    read: async (key) => (await backends.store.readMeta([key])).get(key),
    createIfAbsent: (key, value) => backends.store.createMeta(key, value),
  };
  const table = backends.bookkeeping;
  if (table === undefined) return meta;
  if (config.backend !== 'aws' || config.legacyNonceBindings === 'false') return table;
  const legacy = config.legacyNonceBindings === 'true' ? async () => true : legacyBindingsPresent(table, backends.legacyProbe);
  // Upgrading from bindings in Parameter Store: one kept there still binds its instance,
  // and moves to the table on first use, so nobody else can bind that instance meanwhile.
  return {
    read: async (key) => {
      const found = await table.read(key);
      if (found !== undefined || !(await legacy())) return found;
      const kept = await meta.read(key);
      if (kept === undefined) return undefined;
      return (await table.createIfAbsent(key, kept)) ? kept : table.read(key);
    },
    createIfAbsent: (key, value) => table.createIfAbsent(key, value),
  };
}

/** Where the table remembers whether this deployment had bindings in Parameter Store (no instance id looks like it). */
export const LEGACY_BINDINGS_MARKER = 'nonce-legacy-bindings';

/**
 * Whether bindings an earlier release made are still in Parameter Store: looked up once per
 * deployment (the answer is kept in the table) and once per container (memoised), so a
 * deployment that never had any pays nothing on its logins.
 */
function legacyBindingsPresent(table: Bookkeeping, probe: (() => Promise<boolean>) | undefined): () => Promise<boolean> {
  return memoize(async () => {
    const known = await table.read(LEGACY_BINDINGS_MARKER);
    if (known !== undefined) return known === 'present';
    const present = probe === undefined ? true : await probe();
    await table.createIfAbsent(LEGACY_BINDINGS_MARKER, present ? 'present' : 'none');
    return (await table.read(LEGACY_BINDINGS_MARKER)) === 'present';
  });
}

/** On AWS, bindings are remembered as long as instance -> role answers; local mode reads its files every time. */
function nonceCache(config: Config, clock: Clock): ExpiringCache<string> | undefined {
  return config.backend === 'aws' ? new ExpiringCache<string>(config.roleCacheSeconds * 1000, clock) : undefined;
}

/** STS over HTTPS, loaded on the first IAM login only. */
function lazyStsGateway(): StsGateway {
  const gateway = memoize(async () => new (await import('./adapters/sts-http')).HttpStsGateway());
  return { getCallerIdentity: async (request) => (await gateway()).getCallerIdentity(request) };
}

/** The audit log's destination, from DSSSS_AUDIT_LOG: stdout (Lambda: CloudWatch Logs), a file, or none. */
export async function createAuditSink(config: Config): Promise<AuditSink | undefined> {
  if (config.auditLog === 'off') return undefined;
  const { FileAuditSink, StdoutAuditSink } = await import('./adapters/audit-sinks');
  return config.auditLog === 'stdout' ? new StdoutAuditSink() : new FileAuditSink(config.auditLog.file);
}

async function extraCertificates(config: Config, identity: () => Promise<{ certs: typeof import('./identity/certs') }>): Promise<string[]> {
  if (config.extraCerts === undefined) return [];
  const text = 'pem' in config.extraCerts ? config.extraCerts.pem : await readFile(config.extraCerts.file, 'utf8');
  return (await identity()).certs.parsePemCertificates(text);
}

async function localBackends(config: LocalConfig): Promise<Backends> {
  const [{ FileSecretStore }, { LocalKeyWrapper }, { LocalRegistry }, { ensureDevCa }] = await Promise.all([
    import('./adapters/file-store'),
    import('./adapters/local-keys'),
    import('./adapters/local-registry'),
    import('./adapters/dev-ca-files'),
  ]);
  // Local mode trusts its own development CA, so `dssss dev identity` documents log in.
  const devCa = await ensureDevCa(config.dataDir);
  return {
    store: new FileSecretStore(config.dataDir),
    wrapper: new LocalKeyWrapper(config.dataDir),
    roles: new LocalRegistry(config.dataDir),
    trusted: [devCa.certPem],
  };
}

async function awsBackends(config: AwsConfig, clock: Clock, timings: Overrides['queryTimings']): Promise<Backends> {
  // Each adapter hands over the SDK client it is written against: a dynamic import of a
  // whole SDK package would keep every command of that package in the bundle.
  // aws-client.ts too: its retry strategy is the SDK's, which a local server never needs.
  const [{ SSMClient, SsmSecretStore }, { KMSClient, KmsKeyWrapper }, { awsClientOptions }] = await Promise.all([
    import('./adapters/ssm-store'),
    import('./adapters/kms-keys'),
    import('./adapters/aws-client'),
  ]);
  // Region, credentials and endpoints (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SSM, ...) come
  // from the SDK's own environment handling. Clients live as long as the container.
  const instances = new ExpiringCache<ResolvedRole>(config.roleCacheSeconds * 1000, clock);
  const profiles = new ExpiringCache<ResolvedRole>(config.roleCacheSeconds * 1000, clock);
  const ssm = new SSMClient(awsClientOptions());
  // EC2 and IAM load only on the login path and on writes: reads with a token never pay for
  // them. Their query-protocol clients sign with the credentials and in the Region the SDK
  // resolves for Parameter Store.
  const module = memoize(() => import('./adapters/ec2-roles'));
  const clients = memoize(async () => {
    const { AwsQueryClient } = await import('./adapters/aws-query');
    // The SDK's own resolution: the same chain (memoized, refreshed before expiry) and Region as SSM's.
    const sdk = { region: () => ssm.config.region(), credentials: (identity?: Record<string, unknown>) => ssm.config.credentials(identity), ...timings };
    return { ec2: new AwsQueryClient({ service: 'ec2', ...sdk }), iam: new AwsQueryClient({ service: 'iam', ...sdk }) };
  });
  const resolver = memoize(async (): Promise<RoleResolver> => {
    const [{ Ec2RoleResolver }, { ec2, iam }] = await Promise.all([module(), clients()]);
    return new Ec2RoleResolver(ec2, iam, instances, profiles);
  });
  const directory = memoize(async (): Promise<RoleDirectory> => {
    const [{ IamRoleDirectory }, { iam }] = await Promise.all([module(), clients()]);
    return new IamRoleDirectory(iam, clock);
  });
  const store = new SsmSecretStore(ssm, config.parameterPrefix);
  return {
    store,
    wrapper: new KmsKeyWrapper(new KMSClient(awsClientOptions()), config.kmsKeyId, config.parameterPrefix),
    roles: { resolveRole: async (identity) => (await resolver()).resolveRole(identity) },
    directory: { roleId: async (account, name) => (await directory()).roleId(account, name) },
    events: config.eventBus === undefined ? undefined : lazyEvents(config.eventBus, config.deployment, awsClientOptions),
    bookkeeping: config.bookkeepingTable === undefined ? undefined : lazyBookkeeping(config.bookkeepingTable, clock, awsClientOptions),
    legacyProbe: () => store.hasMetaStartingWith('nonce-'),
    trusted: [],
  };
}

/** One SDK client's options (aws-client.ts). */
type ClientOptions = () => ReturnType<typeof import('./adapters/aws-client').awsClientOptions>;

/** The bookkeeping table, loaded on the first login that needs it. */
function lazyBookkeeping(table: string, clock: Clock, awsClientOptions: ClientOptions): Bookkeeping & InstanceStates {
  const adapter = memoize(async () => {
    const { DynamoDBClient, DynamoBookkeeping } = await import('./adapters/dynamo-bookkeeping');
    return new DynamoBookkeeping(new DynamoDBClient(awsClientOptions()), table, () => clock.now());
  });
  return {
    read: async (key) => (await adapter()).read(key),
    createIfAbsent: async (key, value) => (await adapter()).createIfAbsent(key, value),
    state: async (instanceId) => (await adapter()).state(instanceId),
    record: async (instanceId, state, order) => (await adapter()).record(instanceId, state, order),
  };
}

/** EventBridge, loaded on the first change. */
function lazyEvents(bus: string, deployment: string, awsClientOptions: ClientOptions): EventPublisher {
  const publisher = memoize(async () => {
    const { EventBridgeClient, EventBridgePublisher } = await import('./adapters/eventbridge-events');
    return new EventBridgePublisher(new EventBridgeClient(awsClientOptions()), bus, deployment);
  });
  return { publish: async (events) => (await publisher()).publish(events) };
}
