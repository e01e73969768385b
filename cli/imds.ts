// The instance metadata service as the client uses it, IMDSv2 only: a session token, then
// the identity document or the instance role's credentials. One Imds per client, at the
// endpoint the client's own environment names (AWS_EC2_METADATA_SERVICE_ENDPOINT, which may
// carry a path: the client appends /latest/...). IMDS can be slow while an instance boots:
// timeouts, connection failures and 5xx are retried within the client's budget; a 4xx (IMDS
// off, a hop limit too low for a container) is final.

import { DssssClientError } from './errors';
import type { Backoff } from './retry';

type Env = Readonly<Record<string, string | undefined>>;
type Fetch = typeof fetch;

/** One try's limit: IMDS answers in milliseconds when it answers at all. */
const IMDS_TIMEOUT_MS = 1000;
const SESSION_TTL_SECONDS = 60;

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';

/** IMDS as the SDK finds it: AWS_EC2_METADATA_SERVICE_ENDPOINT; any AWS_EC2_METADATA_DISABLED but "false" turns it off. */
export function imdsEndpoint(env: Env): string | undefined {
  const disabled = env.AWS_EC2_METADATA_DISABLED;
  if (disabled && disabled.toLowerCase() !== 'false') return undefined;
  return (env.AWS_EC2_METADATA_SERVICE_ENDPOINT || DEFAULT_IMDS_ENDPOINT).replace(/\/+$/, '');
}

/** The instance role's temporary credentials, as IMDS serves them. */
export interface RoleCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

class ImdsStatus extends Error {
  constructor(readonly status: number) {
    super(`status ${status}`);
  }
}

export class Imds {
  constructor(
    readonly endpoint: string,
    private readonly fetcher: Fetch = fetch,
  ) {}

  /** Whether IMDS answers at all (one try): how the client tells an EC2 instance from anything else. */
  async answers(): Promise<boolean> {
    try {
      const response = await this.call('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '1' });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  /** The rsa2048 identity document, on one line, as the Authentication header wants it. */
  identityDocument(backoff: Backoff): Promise<string> {
    return this.retried('the instance identity document', backoff, async (token) => {
      const text = await this.read(token, '/latest/dynamic/instance-identity/rsa2048');
      return text.replace(/\s+/g, '');
    });
  }

  /**
   * The instance role's name, or undefined when the instance has no role (IMDS answers 404
   * for the credentials listing).
   */
  roleName(backoff: Backoff): Promise<string | undefined> {
    return this.retried('the instance role', backoff, async (token) => {
      let text: string;
      try {
        text = await this.read(token, '/latest/meta-data/iam/security-credentials/');
      } catch (err) {
        if (err instanceof ImdsStatus && err.status === 404) return undefined;
        throw err;
      }
      const role = text.split('\n')[0]?.trim();
      return role === undefined || role === '' ? undefined : role;
    });
  }

  /** The named role's current credentials. */
  roleCredentials(role: string, backoff: Backoff): Promise<RoleCredentials> {
    return this.retried('the instance role credentials', backoff, async (token) => {
      const text = await this.read(token, `/latest/meta-data/iam/security-credentials/${encodeURIComponent(role)}`);
      let body: { Code?: string; AccessKeyId?: unknown; SecretAccessKey?: unknown; Token?: unknown; Expiration?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new DssssClientError('imds_unavailable', 'IMDS answered the instance role credentials with something that is not JSON');
      }
      if (body.Code !== undefined && body.Code !== 'Success') throw new DssssClientError('imds_unavailable', `IMDS has no usable credentials for the instance role (${String(body.Code).slice(0, 40)})`);
      const { AccessKeyId, SecretAccessKey, Token, Expiration } = body;
      if (typeof AccessKeyId !== 'string' || typeof SecretAccessKey !== 'string' || typeof Token !== 'string') {
        throw new DssssClientError('imds_unavailable', 'IMDS answered the instance role credentials without keys');
      }
      const expiration = new Date(typeof Expiration === 'string' ? Expiration : Date.now() + 5 * 60_000);
      return { accessKeyId: AccessKeyId, secretAccessKey: SecretAccessKey, sessionToken: Token, expiration };
    });
  }

  /** Runs `step` with a fresh session token, retrying what may pass (timeouts, connection failures, 5xx). */
  private async retried<T>(what: string, backoff: Backoff, step: (token: string) => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await step(await this.session());
      } catch (err) {
        if (err instanceof DssssClientError) throw err;
        const final = err instanceof ImdsStatus && err.status < 500;
        if (!final && (await backoff.next())) continue;
        const hint = err instanceof ImdsStatus && (err.status === 401 || err.status === 403) ? '; IMDS may be off, or its hop limit too low for a container' : '';
        throw new DssssClientError('imds_unavailable', `could not read ${what} from IMDS (${reason(err)}${hint})`);
      }
    }
  }

  private async session(): Promise<string> {
    const response = await this.call('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': String(SESSION_TTL_SECONDS) });
    if (!response.ok) {
      await response.body?.cancel();
      throw new ImdsStatus(response.status);
    }
    return response.text();
  }

  private async read(token: string, path: string): Promise<string> {
    const response = await this.call('GET', path, { 'X-aws-ec2-metadata-token': token });
    if (!response.ok) {
      await response.body?.cancel();
      throw new ImdsStatus(response.status);
    }
    return response.text();
  }

  private call(method: string, path: string, headers: Record<string, string>): Promise<Response> {
    return this.fetcher(`${this.endpoint}${path}`, { method, headers, redirect: 'error', signal: AbortSignal.timeout(IMDS_TIMEOUT_MS) });
  }
}

function reason(err: unknown): string {
  if (err instanceof ImdsStatus) return err.message;
  if (err instanceof Error && err.name === 'TimeoutError') return 'timeout';
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}
