// The one place that reads the environment: it becomes one typed, validated, frozen config.

import { resolve } from 'node:path';
import { isRoleName } from './core/names';

export const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;
/** A stolen token is good until it expires: no configuration makes that longer than this. */
export const MAX_TOKEN_TTL_SECONDS = 60 * 60;

export interface Config {
  readonly backend: 'local';
  readonly dataDir: string;
  readonly distinguishedRoles: readonly string[];
  readonly writerRoles: readonly string[] | undefined;
  readonly tokenTtlSeconds: number;
  /** PEM file of further trusted identity-document signing certificates. */
  readonly extraCertsFile: string | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env = process.env): Config {
  const backend = env.DSSSS_BACKEND ?? 'local';
  if (backend !== 'local') throw new ConfigError(`DSSSS_BACKEND=${backend}: only "local" is available`);
  return Object.freeze({
    backend,
    dataDir: resolve(nonEmpty(env.DSSSS_DATA_DIR) ?? '.dssss'),
    distinguishedRoles: Object.freeze(roleList('DSSSS_DISTINGUISHED_ROLES', env.DSSSS_DISTINGUISHED_ROLES) ?? ['dssssadmin']),
    writerRoles: roleList('DSSSS_WRITER_ROLES', env.DSSSS_WRITER_ROLES),
    tokenTtlSeconds: tokenTtl(env.DSSSS_TOKEN_TTL_SECONDS),
    extraCertsFile: nonEmpty(env.DSSSS_EXTRA_CERTS),
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function roleList(variable: string, value: string | undefined): readonly string[] | undefined {
  if (nonEmpty(value) === undefined) return undefined;
  const roles = value!.split(',').map((r) => r.trim()).filter((r) => r !== '');
  const bad = roles.find((r) => !isRoleName(r));
  if (bad !== undefined || roles.length === 0) throw new ConfigError(`${variable}: expected comma-separated IAM role names`);
  return Object.freeze(roles);
}

function tokenTtl(value: string | undefined): number {
  if (nonEmpty(value) === undefined) return DEFAULT_TOKEN_TTL_SECONDS;
  const seconds = Number(value);
  if (!Number.isSafeInteger(seconds) || seconds < 60 || seconds > MAX_TOKEN_TTL_SECONDS) {
    throw new ConfigError(`DSSSS_TOKEN_TTL_SECONDS: an integer from 60 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  return seconds;
}
