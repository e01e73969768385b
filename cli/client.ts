// The dssss client library: log in (EC2 instance role, identity document, or IAM), keep the
// token, renew it, and read and write secrets, with retries inside a budget and a short-lived
// value cache. Everything belongs to one DssssClient instance: its environment, IMDS
// endpoint, credentials, token store and caches, so thousands can share a process.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createFileExclusive } from '../lambda/adapters/files';
import type { ListEntry } from '../lambda/core/service';
import { parseSecretName } from '../lambda/core/names';
import { credentialsFromEnv, hasNonInstanceCredentials, profileCredentials, signGetCallerIdentity, type CredentialsProvider } from './credentials';
import { codeForStatus, DssssClientError, isServerErrorCode } from './errors';
import { Imds, imdsEndpoint } from './imds';
import { readPrivateFile } from './private-file';
import { Backoff, DEFAULT_RETRY_FOR_SECONDS, parseRetryFor, RETRIED_STATUSES, retryAfterMs, type RetryTiming } from './retry';
import { MemoryTokenStore, type LoginMethod, type StoredToken, type TokenStore } from './token-store';
import { sameSecrets, sleep } from './watch';

type Env = Readonly<Record<string, string | undefined>>;

/** The server id a local server (`npm start`) signs for; the stack prints its own as ServerId. */
export const LOCAL_SERVER_ID = 'dssss-local';
/** How long a value stays in a client's cache, as Powertools' parameters utility. */
export const DEFAULT_CACHE_TTL_MS = 5000;
/** At most this many values (and as many bulk reads) are cached per client; the oldest go first. */
const CACHE_MAX_ENTRIES = 1000;
/** One request's limit (API Gateway's own is 29 s). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Pages of a listing or bulk read followed before the client stops: 100 names a page. */
const MAX_PAGES = 10_000;

export interface DssssClientOptions {
  /** The API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod. Default: env.DSSSS_URL. */
  readonly url?: string | undefined;
  /**
   * The environment this client reads, and nothing else: DSSSS_URL, DSSSS_SERVER_ID,
   * DSSSS_RETRY_FOR, DSSSS_NONCE_FILE, AWS credentials and endpoints,
   * AWS_EC2_METADATA_SERVICE_ENDPOINT (may carry a path), AWS_EC2_METADATA_DISABLED.
   * Default: process.env.
   */
  readonly env?: Env | undefined;
  /** Must equal the server's DSSSS_SERVER_ID for IAM login. Default: env.DSSSS_SERVER_ID, else `dssss-local`. */
  readonly serverId?: string | undefined;
  /**
   * `iam`: a signed GetCallerIdentity (credentials below, else the environment's, else the
   * instance role's from IMDS); `ec2`: the instance identity document from IMDS; `auto`
   * (default): IAM when the environment holds ECS, Lambda, web-identity, profile or static
   * credentials; on EC2 the instance role's credentials, or the document when no role is
   * attached; elsewhere IAM.
   */
  readonly method?: 'auto' | 'ec2' | 'iam' | undefined;
  /** Credentials for IAM login, e.g. fromTemporaryCredentials(...) from the AWS SDK. */
  readonly credentials?: CredentialsProvider | undefined;
  /** An identity document to log in with instead of IMDS's (a local server's `dssss dev identity`). */
  readonly document?: string | (() => Promise<string>) | undefined;
  /** Where tokens are kept. Default: in memory, this client's own. */
  readonly tokenStore?: TokenStore | undefined;
  /** How long 429, 502-504, connection failures and IMDS reads are retried, in ms. Default: env.DSSSS_RETRY_FOR seconds, else 60 s. */
  readonly retryForMs?: number | undefined;
  /** How long a value read stays in this client's cache, in ms; 0: no cache. Default 5000. */
  readonly cacheTtlMs?: number | undefined;
  /** Told of what a person should know (an old nonce file). Default: nothing. */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** The fetch to use (tests, a custom agent). Default: the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  /** Backoff's clock and randomness (tests). */
  readonly timing?: Omit<RetryTiming, 'forMs'> | undefined;
}

export interface Secret {
  readonly name: string;
  readonly value: string;
  readonly version: number;
  readonly roles: readonly string[];
}

/** A listed name; the rest only for secrets the caller may read (the server's own type: one contract). */
export type { ListEntry } from '../lambda/core/service';

export interface HistoryEntry {
  readonly version: number;
  readonly operation: 'put' | 'delete' | 'restore';
  readonly deleted: boolean;
  readonly at: string;
  readonly by: { readonly role: string; readonly principal: string };
  readonly roles: readonly string[];
  readonly restoredFrom?: number;
}

export interface LoginInfo {
  readonly role: string;
  readonly method: LoginMethod;
  readonly expiresAt: string;
}

export interface ReadOptions {
  /** Skip this client's cache and the server's read cache (Cache-Control: no-cache). */
  readonly forceFetch?: boolean | undefined;
}

export interface WatchOptions {
  /** Between re-reads, in ms: each wait is drawn from 80% to 100% of it, so a fleet spreads out. */
  readonly intervalMs: number;
  /** Called with the secrets after every change (and first with the first read, unless `initial` is given). */
  readonly onChange: (secrets: ReadonlyMap<string, Secret>, previous: ReadonlyMap<string, Secret> | undefined) => void | Promise<void>;
  /** A failed re-read: watching goes on at the next interval. Default: ignored. */
  readonly onError?: ((error: DssssClientError) => void) | undefined;
  /** Ends the watch; the promise `watch` returned then resolves. */
  readonly signal?: AbortSignal | undefined;
  /** What the caller already read: the first change is reported against it, and no first call is made. */
  readonly initial?: ReadonlyMap<string, Secret> | undefined;
}

interface RequestInit {
  readonly body?: unknown;
  /** Ask the server for a fresh read (Cache-Control: no-cache). */
  readonly fresh?: boolean | undefined;
  /** Gives up (code `aborted`) when it aborts, retries and waits included. */
  readonly signal?: AbortSignal | undefined;
}

interface Cached<T> {
  readonly value: T;
  readonly expires: number;
}

export class DssssClient {
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  private readonly env: Env;
  private readonly serverId: string;
  private readonly retryForMs: number;
  private readonly cacheTtlMs: number;
  private readonly tokens: TokenStore;
  private readonly fetcher: typeof fetch;
  private readonly imds: Imds | undefined;
  private readonly values = new Map<string, Cached<Secret>>();
  private readonly bulk = new Map<string, Cached<ReadonlyMap<string, Secret>>>();
  /** Where this client's token is kept: the server and who logs in (see tokenKey). */
  private readonly tokenKey: string;
  /** The same server and environment without a forced method or document: where an explicit login also leaves its token. */
  private readonly envTokenKey: string;
  private loggingIn: Promise<StoredToken> | undefined;

  constructor(private readonly options: DssssClientOptions = {}) {
    this.env = options.env ?? process.env;
    this.url = serverUrl(options.url ?? this.env.DSSSS_URL);
    this.serverId = options.serverId ?? (this.env.DSSSS_SERVER_ID || LOCAL_SERVER_ID);
    const retryFor = options.retryForMs !== undefined ? options.retryForMs / 1000 : parseRetryFor(this.env.DSSSS_RETRY_FOR);
    if (retryFor !== undefined && Number.isNaN(retryFor)) throw new DssssClientError('invalid_argument', 'DSSSS_RETRY_FOR: a number of seconds, 0 or more');
    if (retryFor !== undefined && !(retryFor >= 0)) throw new DssssClientError('invalid_argument', 'retryForMs: 0 or more');
    this.retryForMs = (retryFor ?? DEFAULT_RETRY_FOR_SECONDS) * 1000;
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    if (!(this.cacheTtlMs >= 0)) throw new DssssClientError('invalid_argument', 'cacheTtlMs: 0 or more');
    this.tokens = options.tokenStore ?? new MemoryTokenStore();
    this.fetcher = options.fetch ?? fetch;
    const endpoint = imdsEndpoint(this.env);
    this.imds = endpoint === undefined ? undefined : new Imds(endpoint, this.fetcher);
    this.envTokenKey = tokenKey(this.url, this.env, { method: 'auto' });
    this.tokenKey = tokenKey(this.url, this.env, {
      method: options.document !== undefined ? 'document' : (options.method ?? 'auto'),
      document: options.document,
      credentials: options.credentials,
    });
  }

  // --- logging in -----------------------------------------------------------------------

  /** Logs in now (whatever the store holds), keeps the token, and says as whom. */
  async login(): Promise<LoginInfo> {
    const { role, method, expiresAt } = await this.freshLogin(true);
    return { role, method, expiresAt };
  }

  /** Who this client is: the role of its current token, logging in first if it has none. */
  async whoami(): Promise<LoginInfo> {
    const { role, method, expiresAt } = await this.token();
    return { role, method, expiresAt };
  }

  /**
   * One login at a time per client: concurrent calls that need a token share it. `explicit`:
   * asked for, so the method is detected afresh rather than taken from the stored token.
   */
  private freshLogin(explicit = false): Promise<StoredToken> {
    this.loggingIn ??= this.performLogin(explicit).finally(() => (this.loggingIn = undefined));
    return this.loggingIn;
  }

  private async performLogin(explicit: boolean): Promise<StoredToken> {
    let method = await this.loginMethod(explicit);
    let response: Response;
    let body: Awaited<ReturnType<typeof signGetCallerIdentity>> | undefined;
    if (method === 'iam') {
      try {
        body = await signGetCallerIdentity(this.serverId, this.env, await this.iamCredentials());
      } catch (err) {
        // Detected as IAM because IMDS was slow to answer the probe, on an instance with no role: the document, then.
        if (!(err instanceof NoInstanceRole) || (this.options.method ?? 'auto') !== 'auto') throw err;
        method = 'ec2';
      }
    }
    if (body !== undefined) {
      response = await this.send('POST', '/v1/auth/iam', { 'Content-Type': 'application/json', ...(await this.nonceHeader()) }, JSON.stringify(body));
    } else {
      const document = method === 'document' ? await this.givenDocument() : await this.imdsOrFail().identityDocument(this.backoff());
      response = await this.send('GET', '/v1/auth', { Authentication: document, ...(await this.nonceHeader()) });
    }
    const answer = (await this.answer(response, 'login')) as { token?: unknown; role?: unknown; expiresAt?: unknown };
    if (typeof answer?.token !== 'string' || typeof answer.role !== 'string' || typeof answer.expiresAt !== 'string') {
      throw new DssssClientError('bad_response', 'the login answer holds no token');
    }
    const token: StoredToken = { token: answer.token, role: answer.role, expiresAt: answer.expiresAt, method, obtainedAt: new Date().toISOString() };
    await this.tokens.set(this.tokenKey, token);
    // `dssss login --method ec2`, `dssss dev login`: the token later commands of this environment use.
    if (explicit && this.envTokenKey !== this.tokenKey) await this.tokens.set(this.envTokenKey, token);
    return token;
  }

  private async loginMethod(explicit: boolean): Promise<LoginMethod> {
    if (this.options.document !== undefined) return 'document';
    const forced = this.options.method ?? 'auto';
    if (forced !== 'auto') return forced;
    // A token obtained one way is renewed the same way, without probing IMDS again.
    const previous = explicit ? undefined : (await this.tokens.get(this.tokenKey))?.method;
    if (previous === 'document') {
      throw new DssssClientError('no_credentials', 'the token from a given identity document has expired: log in again (dssss dev login, or dssss login --document FILE)');
    }
    if (previous !== undefined) return previous;
    // An ECS task or Lambda function on EC2 can reach the host's IMDS, but must not act as the host.
    if (this.options.credentials !== undefined || hasNonInstanceCredentials(this.env)) return 'iam';
    if (this.imds !== undefined && (await this.imds.answers())) {
      // On EC2: the instance role's credentials (one STS call on the server); no role, the document.
      return (await this.imds.roleName(this.backoff())) === undefined ? 'ec2' : 'iam';
    }
    return 'iam';
  }

  /**
   * Credentials for IAM login: the caller's; else those the environment configures; else the
   * default profile's, if there is one; else, on EC2, the instance role's, read from IMDS.
   */
  private async iamCredentials(): Promise<CredentialsProvider> {
    const given = this.options.credentials ?? credentialsFromEnv(this.env);
    if (given !== undefined) return given;
    const profile = profileCredentials(this.env);
    const imds = this.imds;
    return async () => {
      if (profile !== undefined) {
        try {
          return await profile();
        } catch (err) {
          if (imds === undefined) throw err;
        }
      }
      if (imds === undefined) throw new DssssClientError('no_credentials', 'no AWS credentials to sign with (none in the environment, no profile, and IMDS is off)');
      const role = await imds.roleName(this.backoff());
      if (role === undefined) throw new NoInstanceRole();
      return imds.roleCredentials(role, this.backoff());
    };
  }

  private imdsOrFail(): Imds {
    if (this.imds === undefined) throw new DssssClientError('imds_unavailable', 'EC2 login needs IMDS, and AWS_EC2_METADATA_DISABLED turns it off');
    return this.imds;
  }

  private async givenDocument(): Promise<string> {
    const given = this.options.document;
    const document = typeof given === 'function' ? await given() : given;
    if (!document) throw new DssssClientError('invalid_argument', 'the identity document is empty');
    return document.replace(/\s+/g, '');
  }

  /**
   * DSSSS_NONCE_FILE: what this instance's logins are bound to. The file holds a secret seed
   * (created, 0600, on first use); each server gets its own nonce from it, an HMAC of the
   * server's id and URL, so a server that receives this instance's document and nonce (a
   * staging deployment, a mistyped DSSSS_URL) holds nothing another server accepts.
   */
  private async nonceHeader(): Promise<Record<string, string>> {
    const file = this.env.DSSSS_NONCE_FILE;
    if (!file) return {};
    // Only a file of this user's alone: a seed someone else planted or could read gives them every server's nonce.
    let text = await readPrivateFile(file, 'DSSSS_NONCE_FILE', NONCE_FILE_FIX);
    if (text === undefined) {
      // Exclusive: two first logins at once must not write two different seeds.
      await createFileExclusive(file, `${NONCE_SEED_PREFIX}${randomBytes(32).toString('base64url')}\n`, 0o600);
      // Read back with the same checks: whatever won the race to create it must pass them too.
      text = await readPrivateFile(file, 'DSSSS_NONCE_FILE', NONCE_FILE_FIX);
      if (text === undefined) throw new DssssClientError('no_credentials', `DSSSS_NONCE_FILE ${file} vanished as it was created`);
    }
    return { 'X-Dssss-Nonce': serverNonce(text.trim(), this.serverId, this.url, this.options.onWarning) };
  }

  /** The stored token if it has more than a quarter of its lifetime left; else a new one. */
  private async token(): Promise<StoredToken> {
    const stored = await this.tokens.get(this.tokenKey);
    const forced = this.options.document !== undefined ? 'document' : this.options.method;
    if (stored !== undefined && (forced === undefined || forced === 'auto' || stored.method === forced)) {
      const expires = Date.parse(stored.expiresAt);
      const lifetime = expires - Date.parse(stored.obtainedAt);
      // Renew once less than a quarter is left, so a call never starts on a dying token.
      if (Number.isFinite(lifetime) && expires - Date.now() > lifetime / 4) return stored;
    }
    return this.freshLogin();
  }

  // --- reading --------------------------------------------------------------------------

  /** A secret's value (of `version`), from this client's cache while it is fresh. */
  async get(name: string, options: ReadOptions & { readonly version?: number | undefined } = {}): Promise<Secret> {
    const path = secretPath(name);
    if (options.version !== undefined && !(Number.isInteger(options.version) && options.version > 0)) {
      throw new DssssClientError('invalid_argument', 'a version is a positive whole number');
    }
    const key = `${parseName(name)}\n${options.version ?? ''}`;
    if (!options.forceFetch) {
      const hit = this.cached(this.values, key);
      if (hit !== undefined) return hit;
    }
    const query = options.version === undefined ? '' : `?version=${options.version}`;
    const secret = toSecret(await this.request('GET', `${path}${query}`, { fresh: options.forceFetch }));
    this.remember(this.values, key, secret);
    return secret;
  }

  /**
   * Every secret under `prefix` the caller may read, by name: the bulk read
   * (`GET /v1/secrets?prefix=P&values=true`), every page. `prefix` is whole segments: `app`
   * means `app/`. Each call answers a Map of its own (the secrets in it are frozen): what a
   * caller does to it reaches neither the cache nor another caller.
   */
  async getAll(prefix: string, options: ReadOptions = {}): Promise<ReadonlyMap<string, Secret>> {
    const segments = segmentPrefix(prefix);
    if (!options.forceFetch) {
      const hit = this.cached(this.bulk, segments);
      if (hit !== undefined) return new Map(hit);
    }
    const secrets = await this.bulkRead(segments, options.forceFetch === true);
    this.remember(this.bulk, segments, secrets);
    return new Map(secrets);
  }

  private async bulkRead(prefix: string, fresh: boolean, signal?: AbortSignal): Promise<ReadonlyMap<string, Secret>> {
    const secrets = new Map<string, Secret>();
    for await (const page of this.pages(prefix, { values: true, fresh, signal })) {
      for (const secret of (page.secrets ?? []) as unknown[]) {
        const s = toSecret(secret);
        secrets.set(s.name, s);
      }
    }
    return secrets;
  }

  /** The names under `prefix` (whole segments) the caller may list, with version, time, writer and roles where it may read them. */
  async list(prefix = '', options: { readonly deleted?: boolean | undefined } = {}): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    for await (const page of this.pages(segmentPrefix(prefix), { details: true, deleted: options.deleted === true })) {
      const details = new Map(((page.entries ?? []) as ListEntry[]).map((e) => [e.name, e]));
      for (const name of page.names) entries.push(details.get(name) ?? { name });
    }
    return entries;
  }

  /** Every kept version of a secret, newest first; never a value. */
  async history(name: string): Promise<HistoryEntry[]> {
    const answer = (await this.request('GET', `${secretPath(name)}/versions`)) as { versions?: HistoryEntry[] };
    if (!Array.isArray(answer?.versions)) throw new DssssClientError('bad_response', 'the history answer holds no versions');
    return answer.versions;
  }

  /**
   * Re-reads every secret under `prefix` (one bulk read a page, past this client's cache) every
   * `intervalMs`, and calls `onChange` when a value, version or name changed. Resolves when
   * `signal` aborts; a failed re-read goes to `onError` and the watch goes on.
   */
  async watch(prefix: string, options: WatchOptions): Promise<void> {
    if (!(options.intervalMs > 0)) throw new DssssClientError('invalid_argument', 'intervalMs: more than 0');
    const segments = segmentPrefix(prefix);
    let current = options.initial;
    if (current === undefined) {
      current = await this.bulkRead(segments, false, options.signal);
      await options.onChange(current, undefined);
    }
    const { signal } = options;
    while (!signal?.aborted) {
      await sleep(options.intervalMs * (0.8 + 0.2 * Math.random()), signal);
      if (signal?.aborted) break;
      let next: ReadonlyMap<string, Secret>;
      try {
        next = await this.bulkRead(segments, false, signal);
      } catch (err) {
        if (signal?.aborted) break;
        options.onError?.(asClientError(err));
        continue;
      }
      // The cache keeps a copy: onChange may do what it likes with `next`.
      this.remember(this.bulk, segments, new Map(next));
      if (!sameSecrets(current, next)) {
        const previous = current;
        current = next;
        await options.onChange(next, previous);
      }
    }
  }

  // --- writing --------------------------------------------------------------------------

  /** Stores `value` as the secret's new version, readable by `roles`. */
  async put(name: string, value: string, options: { readonly roles: readonly string[] }): Promise<{ name: string; version: number }> {
    const path = secretPath(name);
    if (!Array.isArray(options?.roles) || options.roles.length === 0) throw new DssssClientError('invalid_argument', 'put needs roles');
    this.forget(name);
    const answer = (await this.request('PUT', path, { body: { Secret: value, Roles: options.roles } })) as { name: string; version: number };
    this.forget(name);
    return answer;
  }

  /** Soft delete (distinguished roles): a tombstone version, every version kept; `purge`: every version destroyed. */
  async delete(name: string, options: { readonly purge?: boolean | undefined } = {}): Promise<void> {
    const path = secretPath(name);
    this.forget(name);
    await this.request('DELETE', options.purge ? `${path}?purge=true` : path);
  }

  /** Brings a soft-deleted secret back as a new version (distinguished roles). */
  async restore(name: string): Promise<{ name: string; version: number; restoredFrom: number }> {
    const path = secretPath(name);
    this.forget(name);
    return (await this.request('POST', `${path}/restore`)) as { name: string; version: number; restoredFrom: number };
  }

  // --- the API ----------------------------------------------------------------------------

  /**
   * One authenticated API call (the admin routes, for instance): logs in first if needed, and
   * once more if the server refuses the token; the JSON answer, undefined for 204, or a
   * DssssClientError.
   */
  async request(method: string, path: string, init: RequestInit = {}): Promise<unknown> {
    let token = await this.token();
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Reauthentication: token.token, Accept: 'application/json' };
      if (init.body !== undefined) headers['Content-Type'] = 'application/json';
      if (init.fresh) headers['Cache-Control'] = 'no-cache';
      const response = await this.send(method, path, headers, init.body === undefined ? undefined : JSON.stringify(init.body), init.signal);
      if (response.status !== 401 || attempt > 0) return this.answer(response, `${method} ${path.split('?')[0]}`);
      await response.body?.cancel();
      token = await this.freshLogin();
    }
  }

  /** Every page of a listing, following `next`. */
  private async *pages(prefix: string, flags: { values?: boolean; details?: boolean; deleted?: boolean; fresh?: boolean; signal?: AbortSignal | undefined }): AsyncGenerator<{ names: string[]; secrets?: unknown[]; entries?: unknown[] }> {
    let next: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ prefix });
      if (flags.values) query.set('values', 'true');
      if (flags.details) query.set('details', 'true');
      if (flags.deleted) query.set('deleted', 'true');
      if (next !== undefined) query.set('next', next);
      const answer = (await this.request('GET', `/v1/secrets?${query}`, { fresh: flags.fresh, signal: flags.signal })) as { names?: unknown; secrets?: unknown; entries?: unknown; next?: unknown };
      if (!Array.isArray(answer?.names)) throw new DssssClientError('bad_response', 'the listing holds no names');
      yield answer as { names: string[]; secrets?: unknown[]; entries?: unknown[] };
      if (typeof answer.next !== 'string' || answer.next === '') return;
      next = answer.next;
    }
    throw new DssssClientError('bad_response', `the listing did not end after ${MAX_PAGES} pages`);
  }

  /** The JSON body of a 2xx answer, or the error it carries. */
  private async answer(response: Response, what: string): Promise<unknown> {
    const text = await response.text();
    if (response.ok) {
      if (text === '') return undefined;
      try {
        return JSON.parse(text);
      } catch {
        throw new DssssClientError('bad_response', `${what}: the answer is not JSON`, response.status);
      }
    }
    let code = codeForStatus(response.status);
    let message = `${what} failed with status ${response.status}`;
    try {
      const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
      if (typeof error?.code === 'string' && isServerErrorCode(error.code)) code = error.code;
      if (typeof error?.message === 'string' && error.message !== '') message = error.message;
    } catch {
      // not a dssss error body: the status says it
    }
    throw new DssssClientError(code, message, response.status);
  }

  /**
   * One request, retried on 429, 502-504 and connection failures until the retry budget is
   * spent; then the last answer, or `unreachable`.
   */
  private async send(method: string, path: string, headers: Record<string, string>, body?: string, signal?: AbortSignal): Promise<Response> {
    const backoff = this.backoff(signal);
    const aborted = () => new DssssClientError('aborted', `${method} ${path.split('?')[0]} was aborted`);
    for (;;) {
      if (signal?.aborted) throw aborted();
      let response: Response;
      try {
        const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
        response = await this.fetcher(`${this.url}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body }),
          redirect: 'error',
          signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
        });
      } catch (err) {
        if (signal?.aborted) throw aborted();
        if (await backoff.next()) continue;
        throw new DssssClientError('unreachable', `cannot reach ${this.url} (${connectionFailure(err)})`);
      }
      if (!RETRIED_STATUSES.has(response.status) || (await isFinal(response))) return response;
      const wait = retryAfterMs(response.headers.get('retry-after'));
      if (signal?.aborted || !(await backoff.next(wait))) return response;
      await response.body?.cancel();
    }
  }

  /** A retry budget for one call; its waits end early when `signal` aborts. */
  private backoff(signal?: AbortSignal): Backoff {
    const timing = { ...this.options.timing, forMs: this.retryForMs };
    return new Backoff(signal === undefined ? timing : { ...timing, sleep: (ms) => (this.options.timing?.sleep ?? sleep)(ms, signal) });
  }

  // --- the value cache --------------------------------------------------------------------

  private cached<T>(cache: Map<string, Cached<T>>, key: string): T | undefined {
    const hit = cache.get(key);
    if (hit === undefined) return undefined;
    if (hit.expires > Date.now()) return hit.value;
    cache.delete(key);
    return undefined;
  }

  private remember<T>(cache: Map<string, Cached<T>>, key: string, value: T): void {
    if (this.cacheTtlMs === 0) return;
    cache.delete(key);
    cache.set(key, { value, expires: Date.now() + this.cacheTtlMs });
    // Maps iterate in insertion order: the first key is the oldest.
    while (cache.size > CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  }

  /** A write drops what this client cached of that name, and every bulk read that covers it. */
  private forget(name: string): void {
    for (const key of this.values.keys()) if (key.startsWith(`${name}\n`)) this.values.delete(key);
    for (const prefix of this.bulk.keys()) if (name.startsWith(prefix)) this.bulk.delete(prefix);
  }
}

// --- helpers ------------------------------------------------------------------------------

/** A 503 that says the server's own setup is wrong, or a stored record was altered: another try gives the same answer. */
async function isFinal(response: Response): Promise<boolean> {
  if (response.status !== 503) return false;
  try {
    const code = ((await response.clone().json()) as { error?: { code?: unknown } }).error?.code;
    return code === 'misconfigured' || code === 'integrity';
  } catch {
    return false;
  }
}

/** IMDS answers, and the instance has no role: nothing to sign with (in auto mode, the document login follows). */
class NoInstanceRole extends DssssClientError {
  constructor() {
    super('no_credentials', 'no AWS credentials to sign with: this instance has no IAM role (log in with --method ec2)');
  }
}

/**
 * What selects the identity a client logs in as, besides its options: the variables its
 * credential chain reads (never a secret: key ids, not keys; token file paths, not tokens).
 */
const IDENTITY_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_PROFILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_LAMBDA_FUNCTION_NAME',
  'HOME',
  'USERPROFILE',
] as const;

/** A random name for a function given as credentials or document: the same function, the same name, in this process only. */
const functionIds = new WeakMap<object, string>();
function functionId(given: object): string {
  let id = functionIds.get(given);
  if (id === undefined) functionIds.set(given, (id = randomBytes(16).toString('base64url')));
  return id;
}

/**
 * The token store's key for a client: the server's URL, a space, and a SHA-256 digest of
 * what selects who logs in (the method forced, a given document's digest or credentials
 * function, the IMDS endpoint, IDENTITY_VARIABLES), so `AWS_PROFILE=readonly dssss get`
 * logs in as readonly instead of reusing another identity's token. Only the digest is kept:
 * the file names no profile, key id or path.
 */
export function tokenKey(
  url: string,
  env: Env,
  given: { method: 'auto' | 'ec2' | 'iam' | 'document'; document?: DssssClientOptions['document']; credentials?: CredentialsProvider | undefined },
): string {
  const document =
    given.document === undefined
      ? null
      : typeof given.document === 'function'
        ? `function ${functionId(given.document)}`
        : `sha256 ${createHash('sha256').update(given.document.replace(/\s+/g, '')).digest('base64url')}`;
  const identity = {
    v: 1,
    method: given.method,
    document,
    credentials: given.credentials === undefined ? null : functionId(given.credentials),
    imds: imdsEndpoint(env) ?? null,
    env: IDENTITY_VARIABLES.map((name) => env[name] || null),
  };
  return `${url} ${createHash('sha256').update(JSON.stringify(identity)).digest('base64url')}`;
}

function serverUrl(given: string | undefined): string {
  if (!given) throw new DssssClientError('invalid_argument', 'no server: give a url (DSSSS_URL)');
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    // Not echoed: a malformed URL may still carry a password.
    throw new DssssClientError('invalid_argument', 'the server URL is not a URL');
  }
  if (url.username !== '' || url.password !== '') throw new DssssClientError('invalid_argument', 'the server URL must not carry credentials');
  // Tokens, documents and signed requests must not cross a network in the clear.
  const loopback = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new DssssClientError('invalid_argument', 'the server URL must be https (http only to localhost)');
  }
  return url.href.replace(/\/+$/, '');
}

function parseName(name: string): string {
  try {
    return parseSecretName(name);
  } catch (err) {
    throw new DssssClientError('invalid_name', err instanceof Error ? err.message : 'invalid secret name');
  }
}

/** The route of a valid name; anything else is refused here, before URL parsing could fold `a/../b` into `b`. */
export function secretPath(name: string): string {
  return `/v1/secret/${parseName(name)}`;
}

/** Whole segments: `app` means `app/`; the empty prefix is every name. */
export function segmentPrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new DssssClientError('invalid_argument', 'a prefix is a string');
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function toSecret(raw: unknown): Secret {
  const s = raw as { name?: unknown; secret?: unknown; version?: unknown; roles?: unknown };
  if (typeof s?.name !== 'string' || typeof s.secret !== 'string' || typeof s.version !== 'number' || !Array.isArray(s.roles)) {
    throw new DssssClientError('bad_response', 'the answer holds no secret');
  }
  return Object.freeze({ name: s.name, value: s.secret, version: s.version, roles: Object.freeze([...(s.roles as string[])]) });
}

function connectionFailure(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timeout';
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}

export function asClientError(err: unknown): DssssClientError {
  if (err instanceof DssssClientError) return err;
  return new DssssClientError('bad_response', `unexpected failure (${err instanceof Error ? err.name : typeof err})`);
}

/** A nonce file of this client: a seed from which each server's nonce is derived. */
const NONCE_SEED_PREFIX = 'dssss-nonce-seed.v2:';
/** What to do about a nonce file the client refuses. */
const NONCE_FILE_FIX =
  'remove it, and the next login writes a new seed (mode 0600); an instance already bound to the old nonce then needs its binding deleted by an admin (see "Replayed identity documents" in the README)';

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
