// Composition root: config -> adapters -> SecretService. Everything built here lives as
// long as the process (one Lambda container, or one local server).

import { readFile } from 'node:fs/promises';
import type { AwsConfig, Config, LocalConfig } from './config';
import { ExpiringCache } from './core/cache';
import { Policy } from './core/policy';
import { NonceBindings } from './core/replay';
import { SealKeyRing } from './core/seal-keys';
import { SecretService } from './core/service';
import { awsTrustStore, parsePemCertificates, TrustStore } from './identity/certs';
import { verifyIdentityDocument } from './identity/pkcs7';
import { systemClock, type Clock, type KeyWrapper, type AuditSink, type RoleResolver, type SecretStore, type StsGateway } from './ports';

/**
 * Throttles are retried with jittered backoff; each attempt has a deadline, so a hung call
 * fails in time (throwOnRequestTimeout: without it the SDK only logs a warning). Worst case
 * per call: 3 attempts of 2 s; a cold PUT makes four calls, within the function's 29 s.
 */
export const AWS_CLIENT_OPTIONS = {
  maxAttempts: 3,
  requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
} as const;

interface Backends {
  store: SecretStore;
  wrapper: KeyWrapper;
  roles: RoleResolver;
  /** Certificates this backend trusts beyond AWS's (the local development CA). */
  trusted: string[];
}

export async function createService(config: Config, clock: Clock = systemClock): Promise<SecretService> {
  const backends = config.backend === 'local' ? await localBackends(config) : await awsBackends(config, clock);
  const extra = [...(await extraCertificates(config)), ...backends.trusted];
  TrustStore.fromPems(extra); // a bad certificate of the operator's still fails the start
  // AWS's ~40 bundled certificates are parsed on the first login: reads with a token never need them.
  let trust: TrustStore | undefined;
  return new SecretService({
    store: backends.store,
    keys: new SealKeyRing(backends.store, backends.wrapper),
    roles: backends.roles,
    verifyIdentity: (document) => verifyIdentityDocument(document, (trust ??= awsTrustStore(extra))),
    policy: new Policy(config),
    allowedAccounts: config.allowedAccounts,
    iam: config.iamLogin === undefined ? undefined : { config: config.iamLogin, sts: lazyStsGateway() },
    clock,
    tokenTtlSeconds: config.tokenTtlSeconds,
    nonces: config.nonceMode === 'off' ? undefined : new NonceBindings(backends.store, config.nonceMode, nonceCache(config, clock)),
    maxDocumentAgeSeconds: config.maxDocumentAgeSeconds,
  });
}

/** On AWS, bindings are remembered as long as instance -> role answers; local mode reads its files every time. */
function nonceCache(config: Config, clock: Clock): ExpiringCache<string> | undefined {
  return config.backend === 'aws' ? new ExpiringCache<string>(config.roleCacheSeconds * 1000, clock) : undefined;
}

/** STS over HTTPS, loaded on the first IAM login only. */
function lazyStsGateway(): StsGateway {
  let gateway: Promise<StsGateway> | undefined;
  return {
    getCallerIdentity: async (request) => {
      gateway ??= import('./adapters/sts-http').then(({ HttpStsGateway }) => new HttpStsGateway());
      return (await gateway).getCallerIdentity(request);
    },
  };
}

/** The audit log's destination, from DSSSS_AUDIT_LOG: stdout (Lambda: CloudWatch Logs), a file, or none. */
export async function createAuditSink(config: Config): Promise<AuditSink | undefined> {
  if (config.auditLog === 'off') return undefined;
  const { FileAuditSink, StdoutAuditSink } = await import('./adapters/audit-sinks');
  return config.auditLog === 'stdout' ? new StdoutAuditSink() : new FileAuditSink(config.auditLog.file);
}

async function extraCertificates(config: Config): Promise<string[]> {
  if (config.extraCerts === undefined) return [];
  const text = 'pem' in config.extraCerts ? config.extraCerts.pem : await readFile(config.extraCerts.file, 'utf8');
  return parsePemCertificates(text);
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

async function awsBackends(config: AwsConfig, clock: Clock): Promise<Backends> {
  // Each adapter hands over the SDK client it is written against: a dynamic import of a
  // whole SDK package would keep every command of that package in the bundle.
  const [{ SSMClient, SsmSecretStore }, { KMSClient, KmsKeyWrapper }] = await Promise.all([
    import('./adapters/ssm-store'),
    import('./adapters/kms-keys'),
  ]);
  // Region, credentials and endpoints (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SSM, ...) come
  // from the SDK's own environment handling. Clients live as long as the container.
  const cache = new ExpiringCache<string>(config.roleCacheSeconds * 1000, clock);
  let resolver: Promise<RoleResolver> | undefined;
  const loadResolver = async (): Promise<RoleResolver> => {
    // EC2 and IAM load only on the login path: reads with a token never pay for them.
    const { EC2Client, IAMClient, Ec2RoleResolver } = await import('./adapters/ec2-roles');
    return new Ec2RoleResolver(new EC2Client(AWS_CLIENT_OPTIONS), new IAMClient(AWS_CLIENT_OPTIONS), cache);
  };
  return {
    store: new SsmSecretStore(new SSMClient(AWS_CLIENT_OPTIONS), config.parameterPrefix),
    wrapper: new KmsKeyWrapper(new KMSClient(AWS_CLIENT_OPTIONS), config.kmsKeyId, config.parameterPrefix),
    roles: {
      resolveRole: async (identity) => {
        resolver ??= loadResolver().catch((err: unknown) => {
          resolver = undefined;
          throw err;
        });
        return (await resolver).resolveRole(identity);
      },
    },
    trusted: [],
  };
}

