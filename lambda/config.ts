// The one place that reads the environment: it becomes one typed, validated, frozen config.

import { join, resolve } from 'node:path';
import type { IamLoginConfig, Partition } from './core/iam-login';
import type { WriterRule } from './core/policy';
import type { NonceMode } from './core/replay';
import { isAccountId, isRoleName, toRoleRef, type RoleRef } from './core/roles';
import { MAX_TOKEN_TTL_SECONDS } from './core/token';

export { MAX_TOKEN_TTL_SECONDS };
export const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;
/** The account `dssss dev` documents and registrations use when none is given. */
export const DEV_ACCOUNT = '123456789012';
/** Local mode's admin role when none is configured: a development server, not a deployment. */
export const LOCAL_ADMIN_ROLE = 'dssssadmin';
/** Sealed records and listing pages kept per container; see the README on staleness. */
export const DEFAULT_READ_CACHE_SECONDS = 5;
export const DEFAULT_PARAMETER_PREFIX = '/dssss/';
export const DEFAULT_ROLE_CACHE_SECONDS = 60;

interface CommonConfig {
  /** IAM login (`POST /v1/auth/iam`); undefined when no server id is configured. */
  readonly iamLogin: IamLogin | undefined;
  /** The deployment's own account: bare role names are its roles. */
  readonly homeAccount: string;
  /** Admin roles, account-bound; empty: none. */
  readonly distinguishedRoles: readonly RoleRef[];
  /** Who may create names under which prefix (DSSSS_PREFIX_WRITERS, DSSSS_WRITER_ROLES). */
  readonly writerRules: readonly WriterRule[];
  /** The local server's port (PORT; `--port` overrides). */
  readonly port: number;
  /** Seconds a container keeps sealed records and listing pages; 0: off. */
  readonly readCacheSeconds: number;
  /** Names this deployment in metrics. */
  readonly deployment: string;
  readonly metrics: 'emf' | 'off';
  readonly tokenTtlSeconds: number;
  /** Where audit lines go: stdout, a file, or nowhere. */
  readonly auditLog: 'stdout' | 'off' | { readonly file: string };
  /** Binding of an instance's first EC2 login to a client nonce. */
  readonly nonceMode: NonceMode;
  /** Refuse identity documents whose pendingTime is older; undefined: no limit. */
  readonly maxDocumentAgeSeconds: number | undefined;
  /** Further trusted identity-document signing certificates: PEM text, or a PEM file's path. */
  readonly extraCerts: { readonly pem: string } | { readonly file: string } | undefined;
}

export interface LocalConfig extends CommonConfig {
  readonly backend: 'local';
  readonly dataDir: string;
  /** Unset in local mode: the registry's account decides. */
  readonly allowedAccounts: readonly string[] | undefined;
}

export interface AwsConfig extends CommonConfig {
  readonly backend: 'aws';
  readonly kmsKeyId: string;
  /** Starts and ends with "/". */
  readonly parameterPrefix: string;
  readonly allowedAccounts: readonly string[];
  readonly roleCacheSeconds: number;
  /** EventBridge bus for change events; undefined: none published. */
  readonly eventBus: string | undefined;
  /**
   * DynamoDB table for per-instance bookkeeping (nonce bindings, reported instance states);
   * undefined: bindings in Parameter Store, instances looked up in EC2.
   */
  readonly bookkeepingTable: string | undefined;
  /**
   * With a table: read a binding missing from it in Parameter Store, where earlier releases
   * kept them, and copy it over. auto: only if the deployment has any there (looked up once).
   */
  readonly legacyNonceBindings: 'auto' | 'true' | 'false';
}

export interface IamLogin extends IamLoginConfig {
  /** IAM users that may log in, each as the role of the same name. Default: none. */
  readonly iamUsers: readonly string[];
}

/** Local mode's server id when DSSSS_SERVER_ID is unset; the client's default too. */
export const LOCAL_SERVER_ID = 'dssss-local';

export type Config = LocalConfig | AwsConfig;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env = process.env): Config {
  const backend = nonEmpty(env.DSSSS_BACKEND) ?? 'local';
  const dataDir = resolve(nonEmpty(env.DSSSS_DATA_DIR) ?? '.dssss');
  const allowedAccounts = accountList(env.DSSSS_ALLOWED_ACCOUNTS);
  const homeAccount = home(env.DSSSS_ACCOUNT_ID, backend, allowedAccounts);
  const common: CommonConfig = {
    auditLog: auditLog(env.DSSSS_AUDIT_LOG, backend === 'local' ? { file: join(dataDir, 'audit.log') } : 'stdout'),
    homeAccount,
    distinguishedRoles: distinguished(env.DSSSS_DISTINGUISHED_ROLES, backend, homeAccount),
    writerRules: writerRules(env.DSSSS_PREFIX_WRITERS, env.DSSSS_WRITER_ROLES, homeAccount),
    port: integer('PORT', env.PORT, 8000, 0, 65535),
    readCacheSeconds: integer('DSSSS_READ_CACHE_SECONDS', env.DSSSS_READ_CACHE_SECONDS, backend === 'aws' ? DEFAULT_READ_CACHE_SECONDS : 0, 0, 300),
    deployment: deploymentName(env.DSSSS_DEPLOYMENT),
    metrics: oneOf('DSSSS_METRICS', env.DSSSS_METRICS, backend === 'aws' ? 'emf' : 'off', ['emf', 'off'] as const),
    tokenTtlSeconds: integer('DSSSS_TOKEN_TTL_SECONDS', env.DSSSS_TOKEN_TTL_SECONDS, DEFAULT_TOKEN_TTL_SECONDS, 60, MAX_TOKEN_TTL_SECONDS),
    extraCerts: extraCerts(env.DSSSS_EXTRA_CERTS),
    // Local mode has no account of its own: IAM login there needs DSSSS_ALLOWED_ACCOUNTS, or
    // any AWS account in the world could log in as any role.
    iamLogin:
      backend === 'local' && allowedAccounts === undefined
        ? undefined
        : iamLogin(env, backend === 'local' ? LOCAL_SERVER_ID : undefined),
    nonceMode: nonceMode(env.DSSSS_NONCE_MODE),
    maxDocumentAgeSeconds:
      nonEmpty(env.DSSSS_MAX_DOCUMENT_AGE_SECONDS) === undefined
        ? undefined
        : integer('DSSSS_MAX_DOCUMENT_AGE_SECONDS', env.DSSSS_MAX_DOCUMENT_AGE_SECONDS, 0, 60, 10 * 365 * 24 * 3600),
  };

  if (backend === 'local') {
    return Object.freeze({ ...common, backend, dataDir, allowedAccounts });
  }
  if (backend === 'aws') {
    const kmsKeyId = nonEmpty(env.DSSSS_KMS_KEY_ID);
    if (kmsKeyId === undefined) throw new ConfigError('DSSSS_KMS_KEY_ID is required with DSSSS_BACKEND=aws (a KMS key id, ARN or alias)');
    if (allowedAccounts === undefined) {
      throw new ConfigError('DSSSS_ALLOWED_ACCOUNTS is required with DSSSS_BACKEND=aws (comma-separated account ids)');
    }
    const prefix = nonEmpty(env.DSSSS_PARAMETER_PREFIX) ?? DEFAULT_PARAMETER_PREFIX;
    if (!/^\/([A-Za-z0-9_.-]+\/){1,5}$/.test(prefix)) {
      throw new ConfigError('DSSSS_PARAMETER_PREFIX: a Parameter Store path that starts and ends with "/", e.g. /dssss/');
    }
    // A deployment may use only <prefix>secrets/ and <prefix>meta/ (infra/stack.ts). A
    // prefix with one of those segments could lie inside another deployment's trees.
    if (prefix.split('/').some((segment) => segment === 'secrets' || segment === 'meta')) {
      throw new ConfigError('DSSSS_PARAMETER_PREFIX: no segment may be "secrets" or "meta", the trees dssss keeps under a prefix');
    }
    return Object.freeze({
      ...common,
      backend,
      kmsKeyId,
      parameterPrefix: prefix,
      allowedAccounts,
      roleCacheSeconds: integer('DSSSS_ROLE_CACHE_SECONDS', env.DSSSS_ROLE_CACHE_SECONDS, DEFAULT_ROLE_CACHE_SECONDS, 0, 3600),
      eventBus: eventBus(env.DSSSS_EVENT_BUS),
      bookkeepingTable: tableName(env.DSSSS_BOOKKEEPING_TABLE),
      legacyNonceBindings: oneOf('DSSSS_LEGACY_NONCE_BINDINGS', env.DSSSS_LEGACY_NONCE_BINDINGS, 'auto', ['auto', 'true', 'false'] as const),
    });
  }
  throw new ConfigError(`DSSSS_BACKEND=${backend}: use "local" or "aws"`);
}

function iamLogin(env: Env, defaultServerId: string | undefined): IamLogin | undefined {
  const serverId = nonEmpty(env.DSSSS_SERVER_ID) ?? defaultServerId;
  if (serverId === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,128}$/.test(serverId)) throw new ConfigError('DSSSS_SERVER_ID: 1 to 128 printable characters, no spaces');
  const partition = nonEmpty(env.DSSSS_PARTITION) ?? partitionOf(nonEmpty(env.AWS_REGION));
  if (partition !== 'aws' && partition !== 'aws-cn' && partition !== 'aws-us-gov') {
    throw new ConfigError('DSSSS_PARTITION: aws, aws-cn or aws-us-gov');
  }
  const stsEndpoint = nonEmpty(env.AWS_ENDPOINT_URL_STS) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  if (stsEndpoint !== undefined && !URL.canParse(stsEndpoint)) throw new ConfigError('AWS_ENDPOINT_URL(_STS): not a URL');
  const iamUsers = roleList('DSSSS_IAM_USERS', env.DSSSS_IAM_USERS) ?? Object.freeze([]);
  return Object.freeze({ serverId, partition, stsEndpoint, iamUsers });
}

/** AWS: the sole allowed account unless set; local: the development account unless set. */
function home(value: string | undefined, backend: string, allowed: readonly string[] | undefined): string {
  const text = nonEmpty(value);
  if (text !== undefined) {
    if (!isAccountId(text)) throw new ConfigError('DSSSS_ACCOUNT_ID: a 12-digit account id');
    return text;
  }
  if (allowed?.length === 1) return allowed[0]!;
  if (backend === 'aws' && allowed !== undefined) {
    throw new ConfigError('DSSSS_ACCOUNT_ID is required when DSSSS_ALLOWED_ACCOUNTS names several accounts: bare role names mean roles of this account');
  }
  return DEV_ACCOUNT;
}

/** On AWS there is no admin role unless one is named (`none` for none); locally, dssssadmin. */
function distinguished(value: string | undefined, backend: string, homeAccount: string): readonly RoleRef[] {
  const text = nonEmpty(value);
  if (text === 'none') return Object.freeze([]);
  if (text === undefined) {
    if (backend === 'aws') {
      throw new ConfigError('DSSSS_DISTINGUISHED_ROLES is required with DSSSS_BACKEND=aws: the admin roles (names or account:name), or "none"');
    }
    return Object.freeze([`${homeAccount}:${LOCAL_ADMIN_ROLE}`]);
  }
  return roleRefs('DSSSS_DISTINGUISHED_ROLES', text, homeAccount);
}

/**
 * DSSSS_PREFIX_WRITERS: `app/=web,deploy;billing/=billing` (a prefix is '' or ends in "/",
 * `*` is any role that can log in); DSSSS_WRITER_ROLES=a,b is the rule for every name ('').
 * Without a covering rule, a role creates names under `<its name>/` only.
 */
function writerRules(prefixed: string | undefined, global: string | undefined, homeAccount: string): readonly WriterRule[] {
  const rules: WriterRule[] = [];
  const add = (variable: string, prefix: string, roles: string) => {
    if (prefix !== '' && (!prefix.endsWith('/') || !/^([A-Za-z0-9_.-]+\/)+$/.test(prefix))) {
      throw new ConfigError(`${variable}: prefix "${prefix}" must be empty or segments ending in "/"`);
    }
    if (rules.some((r) => r.prefix === prefix)) throw new ConfigError(`${variable}: prefix "${prefix}" appears twice`);
    rules.push({ prefix, roles: roles.trim() === '*' ? '*' : roleRefs(variable, roles, homeAccount) });
  };
  for (const part of (nonEmpty(prefixed) ?? '').split(';').map((p) => p.trim()).filter((p) => p !== '')) {
    const cut = part.indexOf('=');
    if (cut < 0) throw new ConfigError('DSSSS_PREFIX_WRITERS: expected prefix=role,role;prefix=role');
    add('DSSSS_PREFIX_WRITERS', part.slice(0, cut).trim(), part.slice(cut + 1));
  }
  const text = nonEmpty(global);
  if (text !== undefined) add('DSSSS_WRITER_ROLES', '', text);
  return Object.freeze(rules);
}

function roleRefs(variable: string, value: string, homeAccount: string): readonly RoleRef[] {
  const items = list(value) ?? [];
  const refs = items.map((item) => toRoleRef(item, homeAccount));
  if (items.length === 0 || refs.some((r) => r === undefined)) {
    throw new ConfigError(`${variable}: expected comma-separated IAM role names, account:name or role ARNs`);
  }
  return Object.freeze([...new Set(refs as RoleRef[])]);
}

function deploymentName(value: string | undefined): string {
  const text = nonEmpty(value) ?? 'dssss';
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(text)) throw new ConfigError('DSSSS_DEPLOYMENT: 1 to 128 of A-Z a-z 0-9 _ . -');
  return text;
}

function eventBus(value: string | undefined): string | undefined {
  const text = nonEmpty(value);
  if (text !== undefined && !/^[A-Za-z0-9/:._-]{1,1600}$/.test(text)) throw new ConfigError('DSSSS_EVENT_BUS: an EventBridge bus name or ARN');
  return text;
}

function tableName(value: string | undefined): string | undefined {
  const text = nonEmpty(value);
  if (text !== undefined && !/^[A-Za-z0-9_.-]{3,255}$/.test(text)) throw new ConfigError('DSSSS_BOOKKEEPING_TABLE: a DynamoDB table name');
  return text;
}

/** What the instance-events function needs: the table it records instance states in, and whose instances it records. */
export function loadInstanceEventsConfig(env: Env = process.env): { readonly table: string; readonly account: string } {
  const table = tableName(env.DSSSS_BOOKKEEPING_TABLE);
  if (table === undefined) throw new ConfigError('DSSSS_BOOKKEEPING_TABLE is required: the table instance states are recorded in');
  const account = nonEmpty(env.DSSSS_ACCOUNT_ID);
  if (account === undefined || !isAccountId(account)) throw new ConfigError('DSSSS_ACCOUNT_ID is required: the account whose instances the function records');
  return Object.freeze({ table, account });
}

function oneOf<T extends string>(variable: string, value: string | undefined, fallback: T, allowed: readonly T[]): T {
  const text = nonEmpty(value) ?? fallback;
  if (!(allowed as readonly string[]).includes(text)) throw new ConfigError(`${variable}: ${allowed.join(' or ')}`);
  return text as T;
}

function auditLog(value: string | undefined, fallback: CommonConfig['auditLog']): CommonConfig['auditLog'] {
  const text = nonEmpty(value);
  if (text === undefined) return fallback;
  return text === 'stdout' || text === 'off' ? text : { file: resolve(text) };
}

function nonceMode(value: string | undefined): NonceMode {
  const mode = nonEmpty(value) ?? 'optional';
  if (mode !== 'off' && mode !== 'optional' && mode !== 'required') throw new ConfigError('DSSSS_NONCE_MODE: off, optional or required');
  return mode;
}

function partitionOf(region: string | undefined): Partition {
  if (region?.startsWith('cn-')) return 'aws-cn';
  if (region?.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function list(value: string | undefined): string[] | undefined {
  const text = nonEmpty(value);
  return text === undefined ? undefined : text.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function roleList(variable: string, value: string | undefined): readonly string[] | undefined {
  const roles = list(value);
  if (roles === undefined) return undefined;
  if (roles.length === 0 || !roles.every(isRoleName)) throw new ConfigError(`${variable}: expected comma-separated IAM role names`);
  return Object.freeze(roles);
}

function accountList(value: string | undefined): readonly string[] | undefined {
  const accounts = list(value);
  if (accounts === undefined) return undefined;
  if (accounts.length === 0 || !accounts.every((a) => /^\d{12}$/.test(a))) {
    throw new ConfigError('DSSSS_ALLOWED_ACCOUNTS: expected comma-separated 12-digit account ids');
  }
  return Object.freeze(accounts);
}

function integer(variable: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (nonEmpty(value) === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`${variable}: an integer from ${min} to ${max}`);
  return n;
}

function extraCerts(value: string | undefined): CommonConfig['extraCerts'] {
  const text = nonEmpty(value);
  if (text === undefined) return undefined;
  // The Lambda function gets the PEM itself; a laptop usually names a file.
  return text.startsWith('-----BEGIN') ? { pem: text } : { file: resolve(text) };
}
