// The one place that reads the environment: it becomes one typed, validated, frozen config.

import { join, resolve } from 'node:path';
import type { IamLoginConfig, Partition } from './core/iam-login';
import type { NonceMode } from './core/replay';
import { isRoleName } from './core/names';

export const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;
/** A stolen token is good until it expires: no configuration makes that longer than this. */
export const MAX_TOKEN_TTL_SECONDS = 60 * 60;
export const DEFAULT_PARAMETER_PREFIX = '/dssss/';
export const DEFAULT_ROLE_CACHE_SECONDS = 60;

interface CommonConfig {
  /** IAM login (`POST /v1/auth/iam`); undefined when no server id is configured. */
  readonly iamLogin: IamLogin | undefined;
  readonly distinguishedRoles: readonly string[];
  readonly writerRoles: readonly string[] | undefined;
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
  const common: CommonConfig = {
    auditLog: auditLog(env.DSSSS_AUDIT_LOG, backend === 'local' ? { file: join(dataDir, 'audit.log') } : 'stdout'),
    distinguishedRoles: roleList('DSSSS_DISTINGUISHED_ROLES', env.DSSSS_DISTINGUISHED_ROLES) ?? Object.freeze(['dssssadmin']),
    writerRoles: roleList('DSSSS_WRITER_ROLES', env.DSSSS_WRITER_ROLES),
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
    return Object.freeze({
      ...common,
      backend,
      kmsKeyId,
      parameterPrefix: prefix,
      allowedAccounts,
      roleCacheSeconds: integer('DSSSS_ROLE_CACHE_SECONDS', env.DSSSS_ROLE_CACHE_SECONDS, DEFAULT_ROLE_CACHE_SECONDS, 0, 3600),
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
