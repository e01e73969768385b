// The dssss API from the client's side: log in (EC2 or IAM), keep the token in a 0600 file,
// renew it before it expires, and make authenticated requests.

import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fetchIdentityDocument, hasNonInstanceCredentials, imdsAnswers, imdsEndpoint, signGetCallerIdentity } from './credentials';
import { createFileExclusive, writeFileAtomic } from '../lambda/adapters/files';
import { parseSecretName } from '../lambda/core/names';
import { CliError, EXIT, exitCodeForStatus } from './errors';
import { Backoff, RETRIED_STATUSES, retryAfterMs, type RetryTiming } from './retry';

type Env = Readonly<Record<string, string | undefined>>;
export type LoginMethod = 'ec2' | 'iam';

export interface ClientOptions {
  /** The API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod */
  readonly url: string;
  /** Must equal the server's DSSSS_SERVER_ID for IAM login. */
  readonly serverId: string;
  /** Forced login method; otherwise the cached one, otherwise detected. */
  readonly method?: LoginMethod | undefined;
  readonly tokenFile: string;
  readonly env: Env;
  /** Where a warning for the person at the terminal goes (stderr). */
  readonly warn?: (message: string) => void;
  /** How long to keep retrying 429s, 502-504s and connection failures (and IMDS reads). */
  readonly retry: RetryTiming;
}

interface CachedToken {
  token: string;
  role: string;
  method: LoginMethod;
  expiresAt: string;
  obtainedAt: string;
}

interface TokenCache {
  version: 1;
  tokens: Record<string, CachedToken>;
}

export function defaultTokenFile(env: Env): string {
  return env.DSSSS_TOKEN_FILE || join(env.HOME || homedir(), '.dssss', 'token.json');
}

export class DssssClient {
  private readonly base: string;

  constructor(private readonly options: ClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      // Not echoed: a malformed URL may still carry a password.
      throw new CliError(EXIT.usage, 'the server URL is not a URL');
    }
    if (url.username !== '' || url.password !== '') throw new CliError(EXIT.usage, 'the server URL must not carry credentials');
    // Tokens, documents and signed requests must not cross a network in the clear.
    const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      throw new CliError(EXIT.usage, 'the server URL must be https (http only to localhost)');
    }
    this.base = url.href.replace(/\/+$/, '');
  }

  /** The retry budget this client was given (`--retry-for`), for other calls the command makes. */
  get retryTiming(): RetryTiming {
    return this.options.retry;
  }

  /** Logs in now, caches the token, and returns it with its role and expiry. */
  async login(): Promise<CachedToken> {
    const method = this.options.method ?? (await this.cached())?.method ?? (await this.detectMethod());
    const response =
      method === 'ec2'
        ? await this.send('GET', '/v1/auth', { headers: { Authentication: await this.identityDocument(), ...(await this.nonceHeader()) } })
        : await this.send('POST', '/v1/auth/iam', {
            headers: { 'Content-Type': 'application/json', ...(await this.nonceHeader()) },
            body: JSON.stringify(await signGetCallerIdentity(this.options.serverId, this.options.env)),
          });
    const answer = (await this.expectOk(response, 'login')) as { token: string; role: string; expiresAt: string };
    const token: CachedToken = { ...answer, method, obtainedAt: new Date().toISOString() };
    await this.store(token);
    return token;
  }

  /** An authenticated request; logs in first if the cached token is missing or near expiry, and once more on a 401. */
  async request(method: string, path: string, init: { body?: string; accept?: string } = {}): Promise<Response> {
    let token = await this.freshToken();
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Reauthentication: token.token, Accept: init.accept ?? 'application/json' };
      if (init.body !== undefined) headers['Content-Type'] = 'application/json';
      const response = await this.send(method, path, { headers, ...(init.body === undefined ? {} : { body: init.body }) });
      if (response.status !== 401 || attempt > 0) return response;
      await response.body?.cancel();
      token = await this.login();
    }
  }

  /** The JSON body of a 2xx answer, or a CliError with the server's message and the matching exit code. */
  async expectOk(response: Response, what: string): Promise<unknown> {
    const text = await response.text();
    if (response.ok) {
      if (text === '') return undefined;
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }
    let message = `${what} failed with status ${response.status}`;
    try {
      const error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      if (error?.message) message = `${error.message} (${error.code ?? response.status})`;
    } catch {
      // not a dssss error body: keep the status
    }
    throw new CliError(exitCodeForStatus(response.status), message);
  }

  private async freshToken(): Promise<CachedToken> {
    const cached = await this.cached();
    if (cached !== undefined && (this.options.method === undefined || cached.method === this.options.method)) {
      const expires = Date.parse(cached.expiresAt);
      const lifetime = expires - Date.parse(cached.obtainedAt);
      // Renew once less than a quarter of the lifetime is left, so a command never starts on a dying token.
      if (Number.isFinite(lifetime) && expires - Date.now() > lifetime / 4) return cached;
    }
    return this.login();
  }

  private async detectMethod(): Promise<LoginMethod> {
    // An ECS task or Lambda function on EC2 can reach the host's IMDS, but should not act as the host.
    if (hasNonInstanceCredentials(this.options.env)) return 'iam';
    const imds = imdsEndpoint(this.options.env);
    return imds !== undefined && (await imdsAnswers(imds)) ? 'ec2' : 'iam';
  }

  private async identityDocument(): Promise<string> {
    const imds = imdsEndpoint(this.options.env);
    if (imds === undefined) throw new CliError(EXIT.auth, 'EC2 login needs IMDS, and AWS_EC2_METADATA_DISABLED=true turns it off');
    return fetchIdentityDocument(imds, new Backoff(this.options.retry));
  }

  /**
   * DSSSS_NONCE_FILE: what this instance's logins are bound to. The file holds a secret seed
   * (created, 0600, on first use); each server gets its own nonce from it, an HMAC of the
   * server's id and URL, so a server that receives this instance's document and nonce (a
   * staging deployment, a mistyped DSSSS_URL) holds nothing another server accepts.
   */
  private async nonceHeader(): Promise<Record<string, string>> {
    const file = this.options.env.DSSSS_NONCE_FILE;
    if (!file) return {};
    let text: string;
    try {
      text = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(EXIT.auth, `cannot read DSSSS_NONCE_FILE (${(err as NodeJS.ErrnoException).code})`);
      // Exclusive: two first logins at once must not write two different seeds.
      await createFileExclusive(file, `${NONCE_SEED_PREFIX}${randomBytes(32).toString('base64url')}\n`, 0o600);
      text = (await readFile(file, 'utf8')).trim();
    }
    return { 'X-Dssss-Nonce': serverNonce(text, this.options.serverId, this.base, this.options.warn) };
  }

  /**
   * One request, retried on 429, 502-504 and connection failures until the retry budget is
   * spent; then the last answer (or, if none came, exit 6).
   */
  private async send(method: string, path: string, init: { headers: Record<string, string>; body?: string }): Promise<Response> {
    const backoff = new Backoff(this.options.retry);
    for (;;) {
      let response: Response;
      try {
        response = await fetch(`${this.base}${path}`, { method, ...init, redirect: 'error', signal: AbortSignal.timeout(30_000) });
      } catch (err) {
        if (await backoff.next()) continue;
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
        throw new CliError(EXIT.unavailable, `cannot reach ${this.base} (${cause})`);
      }
      if (!RETRIED_STATUSES.has(response.status)) return response;
      const wait = retryAfterMs(response.headers.get('retry-after'));
      if (!(await backoff.next(wait))) return response;
      await response.body?.cancel();
    }
  }

  private async cached(): Promise<CachedToken | undefined> {
    return (await this.readCache()).tokens[this.base];
  }

  private async readCache(): Promise<TokenCache> {
    try {
      const cache = JSON.parse(await readFile(this.options.tokenFile, 'utf8')) as TokenCache;
      if (cache.version === 1 && typeof cache.tokens === 'object' && cache.tokens !== null) return cache;
    } catch {
      // missing or unreadable: start afresh
    }
    return { version: 1, tokens: {} };
  }

  private async store(token: CachedToken): Promise<void> {
    const cache = await this.readCache();
    cache.tokens[this.base] = token;
    // A fresh, exclusively created 0600 temp file renamed into place: never a file someone planted.
    await writeFileAtomic(this.options.tokenFile, JSON.stringify(cache) + '\n', 0o600);
  }
}

/** The route of a valid name; anything else is refused here, before URL parsing could fold `a/../b` into `b`. */
export function secretPath(name: string): string {
  try {
    return `/v1/secret/${parseSecretName(name)}`;
  } catch (err) {
    throw new CliError(EXIT.usage, err instanceof Error ? err.message : 'invalid secret name');
  }
}

/** A nonce file of this client: a seed from which each server's nonce is derived. */
const NONCE_SEED_PREFIX = 'dssss-nonce-seed.v2:';

/**
 * The nonce `server` (its id and URL) gets from the nonce file's content. A file written by
 * an older client holds one bare nonce, sent to every server as before (an instance's
 * existing binding keeps working), with a warning: delete the file when the instance can be
 * re-bound (an admin deletes its binding), and the next login starts a seed.
 */
export function serverNonce(content: string, serverId: string, url: string, warn?: (message: string) => void): string {
  if (!content.startsWith(NONCE_SEED_PREFIX)) {
    warn?.('DSSSS_NONCE_FILE holds one nonce for every server (written by an older dssss); see "Replayed identity documents" in the README');
    return content;
  }
  const seed = content.slice(NONCE_SEED_PREFIX.length);
  return createHmac('sha256', seed).update(`dssss nonce\n${serverId}\n${url}`).digest('base64url');
}
