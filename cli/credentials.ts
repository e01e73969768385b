// What the client proves itself with on the IAM path: a sts:GetCallerIdentity request signed
// (not sent) with AWS credentials, and where those credentials come from. The chain reads
// the client's own environment, not process.env: static keys from it; ECS's container
// endpoint, a web identity token and profiles through the SDK's providers given that
// environment's values; an EC2 instance's role through the client's own IMDS (cli/imds.ts).

import { signedPostHeaders, signerFor } from '../lambda/adapters/sigv4';
import { DssssClientError } from './errors';

type Env = Readonly<Record<string, string | undefined>>;

/** AWS credentials, as the SDK's providers return them (structurally the SDK's AwsCredentialIdentity). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  readonly expiration?: Date | undefined;
}

/** A function returning credentials: the SDK's AwsCredentialIdentityProvider (fromIni(), fromTemporaryCredentials(), ...) fits. */
export type CredentialsProvider = () => Promise<AwsCredentials>;

/** The body of `POST /v1/auth/iam`. */
export interface IamLoginBody {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Credentials that only ECS, Lambda, web identity or explicit configuration provide: present, the client is not acting as an EC2 instance. */
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
 * The credentials `env` names explicitly, in the SDK's order: static keys, the ECS container
 * endpoint, a web identity token file, a profile (AWS_PROFILE or a named config file).
 * Undefined when it names none (the default profile and the instance role come after).
 */
export function credentialsFromEnv(env: Env): CredentialsProvider | undefined {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    const credentials: AwsCredentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
    return async () => credentials;
  }
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI) {
    return lazy(async () => {
      const { fromHttp } = await import('@aws-sdk/credential-provider-http');
      return fromHttp({
        awsContainerCredentialsRelativeUri: env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || undefined,
        awsContainerCredentialsFullUri: env.AWS_CONTAINER_CREDENTIALS_FULL_URI || undefined,
        awsContainerAuthorizationToken: env.AWS_CONTAINER_AUTHORIZATION_TOKEN || undefined,
        awsContainerAuthorizationTokenFile: env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE || undefined,
      });
    });
  }
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE && env.AWS_ROLE_ARN) {
    const init = { webIdentityTokenFile: env.AWS_WEB_IDENTITY_TOKEN_FILE, roleArn: env.AWS_ROLE_ARN, roleSessionName: env.AWS_ROLE_SESSION_NAME || `dssss-${Date.now()}` };
    return lazy(async () => {
      const { fromTokenFile } = await import('@aws-sdk/credential-provider-web-identity');
      return fromTokenFile({ ...init, ...(region ? { clientConfig: { region } } : {}) });
    });
  }
  if (env.AWS_PROFILE || env.AWS_SHARED_CREDENTIALS_FILE || env.AWS_CONFIG_FILE) return profileCredentials(env);
  return undefined;
}

/**
 * The shared config and credentials files' profile (AWS_PROFILE, or "default"): SSO,
 * credential_process, assumed roles and static keys, through the SDK's fromIni. Undefined
 * without a home directory or files to read.
 */
export function profileCredentials(env: Env): CredentialsProvider | undefined {
  const home = env.HOME || env.USERPROFILE;
  const filepath = env.AWS_SHARED_CREDENTIALS_FILE || (home ? `${home}/.aws/credentials` : undefined);
  const configFilepath = env.AWS_CONFIG_FILE || (home ? `${home}/.aws/config` : undefined);
  if (filepath === undefined && configFilepath === undefined) return undefined;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  const init = { profile: env.AWS_PROFILE || 'default', ...(filepath ? { filepath } : {}), ...(configFilepath ? { configFilepath } : {}) };
  return lazy(async () => {
    const { fromIni } = await import('@aws-sdk/credential-provider-ini');
    return fromIni({ ...init, ...(region ? { clientConfig: { region } } : {}) });
  });
}

/** A provider loaded on first use, so a command that never signs never loads it. */
function lazy(load: () => Promise<CredentialsProvider>): CredentialsProvider {
  let provider: Promise<CredentialsProvider> | undefined;
  return async () => {
    provider ??= load();
    return (await provider)();
  };
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
    throw new DssssClientError('invalid_argument', `no AWS Region for ${service.toUpperCase()}: set AWS_REGION`);
  }
  const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return { url: new URL(`https://${service}.${region}.${domain}/`), region };
}

export const stsEndpoint = (env: Env) => serviceEndpoint(env, 'sts');

export function noCredentials(): CredentialsProvider {
  return async () => {
    throw new DssssClientError('no_credentials', 'no AWS credentials to sign with (none in the environment, no profile, no instance role)');
  };
}

/** A POST to `url` signed (SigV4) for `service` with `credentials`: the headers to send. */
export async function signPost(
  url: URL,
  region: string,
  service: string,
  headers: Record<string, string>,
  body: string,
  credentials: CredentialsProvider,
): Promise<Record<string, string>> {
  let identity: AwsCredentials;
  try {
    identity = await credentials();
  } catch (err) {
    if (err instanceof DssssClientError) throw err;
    throw new DssssClientError('no_credentials', `no AWS credentials to sign with (${reason(err)})`);
  }
  return signedPostHeaders(signerFor(identity, region, service), url, headers, body);
}

/**
 * A GetCallerIdentity request signed for `serverId`, ready to post to /v1/auth/iam. Without
 * `credentials`, those `env` configures (never process.env's).
 */
export async function signGetCallerIdentity(serverId: string, env: Env, credentials?: CredentialsProvider): Promise<IamLoginBody> {
  const { url, region } = stsEndpoint(env);
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const headers = await signPost(
    url,
    region,
    'sts',
    { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'x-dssss-server-id': serverId },
    body,
    credentials ?? credentialsFromEnv(env) ?? profileCredentials(env) ?? noCredentials(),
  );
  return { method: 'POST', url: url.href, headers, body: Buffer.from(body).toString('base64') };
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : 'unknown error';
}
