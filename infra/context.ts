// CDK context -> DssssStack props. Every key the app reads is declared here, so a key it
// does not know (a typo such as `distinguishedRole`) fails synth, naming the key and the
// closest known one, instead of deploying the default it meant to override.

import { readFileSync } from 'node:fs';
import { closestMatch } from 'leven';
import type { DssssStackProps, EndpointType } from './stack';

/** A setting the deployer got wrong: `infra/app.ts` prints its message as one line. */
export class ContextError extends Error {
  override readonly name = 'ContextError';
}

type Kind = 'list' | 'number' | 'string' | 'boolean';

/** The keys `-c key=value` (or cdk.json's `context`) may set, and how each is read. */
export const CONTEXT_KEYS = {
  stackName: 'string',
  distinguishedRoles: 'list',
  writerRoles: 'list',
  prefixWriters: 'string',
  iamUsers: 'list',
  nonceMode: 'string',
  maxDocumentAgeSeconds: 'number',
  allowedAccounts: 'list',
  tokenTtlSeconds: 'number',
  parameterPrefix: 'string',
  endpointType: 'string',
  vpcEndpointIds: 'list',
  extraCertsFile: 'string',
  extraCertsPem: 'string',
  serverId: 'string',
  throttlingRateLimit: 'number',
  throttlingBurstLimit: 'number',
  apiGatewayCloudWatchRole: 'boolean',
  changeEvents: 'boolean',
  alarmEmail: 'string',
  alarmTopicArn: 'string',
  concurrencyLimit: 'number',
  legacyNonceBindings: 'boolean',
} as const satisfies Record<string, Kind>;

type Key = keyof typeof CONTEXT_KEYS;
const KNOWN = Object.keys(CONTEXT_KEYS) as Key[];

/**
 * CDK's own context keys are namespaced (`aws:cdk:…`, `@aws-cdk/…:…`, and the lookups of
 * cdk.context.json, `availability-zones:…`): all have a colon, and none of ours does.
 */
export function checkContextKeys(keys: readonly string[]): void {
  for (const key of keys) {
    if (key.includes(':') || (KNOWN as readonly string[]).includes(key)) continue;
    const near = closestMatch(key, KNOWN, { maxDistance: 3 });
    throw new ContextError(
      `unknown context key "${key}"${near !== undefined && near !== key ? `: did you mean "${near}"?` : ''} (known: ${KNOWN.join(', ')})`,
    );
  }
}

type Read = (key: string) => unknown;

const absent = (value: unknown) => value === undefined || value === null || value === '';

/** `-c key=a,b` on the command line gives a string; cdk.json may give an array. */
function list(read: Read, key: Key): string[] | undefined {
  const value = read(key);
  if (absent(value)) return undefined;
  const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

function number(read: Read, key: Key): number | undefined {
  const value = read(key);
  if (absent(value)) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new ContextError(`context ${key}: a number, got ${JSON.stringify(value)}`);
  return n;
}

function string(read: Read, key: Key): string | undefined {
  const value = read(key);
  return absent(value) ? undefined : String(value);
}

function boolean(read: Read, key: Key): boolean | undefined {
  const value = read(key);
  if (absent(value)) return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new ContextError(`context ${key}: true or false, got ${JSON.stringify(value)}`);
}

/** The stack's id and props from the context; `all` is every context key, for the unknown-key check. */
export function stackFromContext(read: Read, all: readonly string[]): { stackName: string; props: DssssStackProps } {
  checkContextKeys(all);
  const distinguishedRoles = list(read, 'distinguishedRoles');
  if (distinguishedRoles === undefined) {
    // No admin role exists unless the deployer names one: a default name would be an
    // admin in every account that happens to have a role of that name.
    throw new ContextError('context distinguishedRoles is required: the admin roles (-c distinguishedRoles=secops), or "none" for no admin');
  }
  const extraCertsFile = string(read, 'extraCertsFile');
  let extraCertsPem = string(read, 'extraCertsPem');
  if (extraCertsFile !== undefined) {
    if (extraCertsPem !== undefined) throw new ContextError('context extraCertsFile and extraCertsPem: give one of them');
    try {
      extraCertsPem = readFileSync(extraCertsFile, 'utf8');
    } catch (err) {
      throw new ContextError(`context extraCertsFile: cannot read ${extraCertsFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return {
    stackName: string(read, 'stackName') ?? 'Dssss',
    props: {
      description: 'dssss: a serverless secret store (API Gateway, Lambda, Parameter Store, KMS)',
      distinguishedRoles,
      writerRoles: list(read, 'writerRoles'),
      prefixWriters: string(read, 'prefixWriters'),
      iamUsers: list(read, 'iamUsers'),
      nonceMode: string(read, 'nonceMode') as DssssStackProps['nonceMode'],
      maxDocumentAgeSeconds: number(read, 'maxDocumentAgeSeconds'),
      allowedAccounts: list(read, 'allowedAccounts'),
      tokenTtlSeconds: number(read, 'tokenTtlSeconds'),
      parameterPrefix: string(read, 'parameterPrefix'),
      endpointType: string(read, 'endpointType') as EndpointType | undefined,
      vpcEndpointIds: list(read, 'vpcEndpointIds'),
      extraCertsPem,
      serverId: string(read, 'serverId'),
      throttlingRateLimit: number(read, 'throttlingRateLimit'),
      throttlingBurstLimit: number(read, 'throttlingBurstLimit'),
      apiGatewayCloudWatchRole: boolean(read, 'apiGatewayCloudWatchRole'),
      changeEvents: boolean(read, 'changeEvents'),
      alarmEmail: string(read, 'alarmEmail'),
      alarmTopicArn: string(read, 'alarmTopicArn'),
      concurrencyLimit: number(read, 'concurrencyLimit'),
      legacyNonceBindings: boolean(read, 'legacyNonceBindings'),
    },
  };
}
