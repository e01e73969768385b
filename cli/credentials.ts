// What the client proves itself with: an EC2 identity document fetched through IMDSv2, or a
// sts:GetCallerIdentity request signed (not sent) with the default AWS credential chain.

import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { CliError, EXIT } from './errors';
import type { Backoff } from './retry';

type Env = Readonly<Record<string, string | undefined>>;

const IMDS_TIMEOUT_MS = 1000;

/** The body of `POST /v1/auth/iam`. */
export interface IamLoginBody {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** IMDS as the SDK finds it: AWS_EC2_METADATA_SERVICE_ENDPOINT, off with AWS_EC2_METADATA_DISABLED=true. */
export function imdsEndpoint(env: Env): string | undefined {
  // As the SDK reads it: any value but "false" turns IMDS off.
  const disabled = env.AWS_EC2_METADATA_DISABLED;
  if (disabled && disabled.toLowerCase() !== 'false') return undefined;
  return (env.AWS_EC2_METADATA_SERVICE_ENDPOINT || 'http://169.254.169.254').replace(/\/+$/, '');
}

/**
 * The rsa2048 identity document, one line, as the Authentication header wants it. IMDS can be
 * slow to answer while an instance boots: timeouts, connection failures and 5xx are retried
 * within `backoff`'s budget; a 4xx (IMDS off, or a hop limit too low for a container) is not.
 */
export async function fetchIdentityDocument(endpoint: string, backoff?: Backoff): Promise<string> {
  for (;;) {
    try {
      const session = await fetch(`${endpoint}/latest/api/token`, {
        method: 'PUT',
        headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
        signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
      });
      if (!session.ok) throw new ImdsStatus(session.status);
      const document = await fetch(`${endpoint}/latest/dynamic/instance-identity/rsa2048`, {
        headers: { 'X-aws-ec2-metadata-token': await session.text() },
        signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
      });
      if (!document.ok) throw new ImdsStatus(document.status);
      return (await document.text()).replace(/\s+/g, '');
    } catch (err) {
      const final = err instanceof ImdsStatus && err.status < 500;
      if (!final && backoff && (await backoff.next())) continue;
      throw new CliError(EXIT.auth, `could not read the instance identity document from IMDS (${reason(err)})`);
    }
  }
}

class ImdsStatus extends Error {
  constructor(readonly status: number) {
    super(`status ${status}`);
  }
}

/** Whether IMDS answers: how `dssss login` tells an EC2 instance from anything else. */
export async function imdsAnswers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '1' },
      signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** Credentials that only ECS, Lambda, web identity or explicit configuration provide. */
export function hasNonInstanceCredentials(env: Env): boolean {
  return [
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_LAMBDA_FUNCTION_NAME',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_ACCESS_KEY_ID',
    'AWS_PROFILE',
  ].some((name) => Boolean(env[name]));
}

/**
 * A service as the SDK would reach it: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, or the
 * Region's endpoint (STS without a Region: its global one).
 */
export function serviceEndpoint(env: Env, service: 'sts' | 'ssm' | 'kms'): { url: URL; region: string } {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  const configured = env[`AWS_ENDPOINT_URL_${service.toUpperCase()}`] || env.AWS_ENDPOINT_URL;
  if (configured) return { url: new URL(configured), region: region ?? 'us-east-1' };
  if (region === undefined) {
    if (service === 'sts') return { url: new URL('https://sts.amazonaws.com/'), region: 'us-east-1' };
    throw new CliError(EXIT.usage, `no AWS Region for ${service.toUpperCase()}: set AWS_REGION`);
  }
  const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return { url: new URL(`https://${service}.${region}.${domain}/`), region };
}

export const stsEndpoint = (env: Env) => serviceEndpoint(env, 'sts');

/** A POST to `url` signed (SigV4) for `service` with the default AWS credential chain: the headers to send. */
export async function signPost(
  url: URL,
  region: string,
  service: string,
  headers: Record<string, string>,
  body: string,
  credentials: AwsCredentialIdentityProvider = defaultProvider(),
): Promise<Record<string, string>> {
  const signer = new SignatureV4({ credentials, region, service, sha256: Hash.bind(null, 'sha256') });
  try {
    const signed = await signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: {},
      headers: { host: url.host, ...headers },
      body,
    });
    return signed.headers;
  } catch (err) {
    throw new CliError(EXIT.auth, `no AWS credentials to sign with (${reason(err)})`);
  }
}

/** A GetCallerIdentity request signed for `serverId`, ready to post to /v1/auth/iam. */
export async function signGetCallerIdentity(
  serverId: string,
  env: Env,
  credentials: AwsCredentialIdentityProvider = defaultProvider(),
): Promise<IamLoginBody> {
  const { url, region } = stsEndpoint(env);
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const headers = await signPost(
    url,
    region,
    'sts',
    { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'x-dssss-server-id': serverId },
    body,
    credentials,
  );
  return { method: 'POST', url: url.href, headers, body: Buffer.from(body).toString('base64') };
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : 'unknown error';
}
