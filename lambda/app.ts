// The HTTP API: routes -> SecretService. The only place HTTP meets the domain; the Lambda
// handler and the local server both serve this app.

import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { visit as visitJson } from 'jsonc-parser';
import * as z from 'zod/mini';
import { badRequest, DssssError, invalidCredentials, toDssssError } from './core/errors';
import { IAM_LOGIN_SHAPE } from './core/iam-login';
import { parseNamePrefix, parseSecretName } from './core/names';
import type { Caller } from './core/policy';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type Login } from './core/service';
import { MAX_VERSIONS, type AuditRecord, type AuditSink } from './ports';
import type { Runtime } from './runtime';

/** Largest request body accepted (a secret is at most 4 KiB; JSON escaping can grow it). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Largest IAM login body: a signed request with a session token is ~3 KiB. */
export const MAX_IAM_LOGIN_BYTES = 16 * 1024;

const PutBody = z.strictObject({
  Secret: z.optional(z.string()),
  secret: z.optional(z.string()),
  Roles: z.optional(z.array(z.string())),
  roles: z.optional(z.array(z.string())),
});

const PUT_SHAPE = 'body must be JSON {"Secret": "<value>", "Roles": ["<role>", ...]}';

/** One name of a backup (up to the 100 records a store keeps, each at most Parameter Store's 8 KB) and the seal keys. */
export const MAX_RESTORE_BYTES = 1024 * 1024;
const RestoreBody = z.strictObject({
  sealKeys: z.record(z.string().check(z.regex(/^seal-key(-[1-9][0-9]{0,3})?$/)), z.string().check(z.maxLength(8192))),
  name: z.string(),
  records: z
    .array(z.strictObject({ seq: z.int().check(z.positive()), record: z.string().check(z.maxLength(8192)) }))
    .check(z.minLength(1), z.maxLength(MAX_VERSIONS)),
  head: z.strictObject({ kid: z.string().check(z.maxLength(64)), mac: z.string().check(z.regex(/^[A-Za-z0-9_-]{43}$/)) }),
});
const RESTORE_SHAPE =
  'body must be JSON {"sealKeys": {...}, "name": "<name>", "records": [{"seq": N, "record": "..."}, ...], "head": {"kid", "mac"}} (one secret of dssss admin backup)';

/** What a shell (the local server, the Lambda handler) tells the app about a request, and nothing else. */
export interface RequestContext {
  /** The request path as the client sent it, before URL normalisation. */
  readonly rawPath?: string | undefined;
  /** The platform's request id (API Gateway's), under which its access log has the same request. */
  readonly requestId?: string | undefined;
}

/** What the routes learn about a request as it goes, for its audit line and metrics. */
interface AuditState {
  operation: string;
  name?: string | undefined;
  auth?: AuditRecord['auth'];
  role?: string | undefined;
  account?: string | undefined;
  principal?: string | undefined;
  code?: string | undefined;
  reason?: string | undefined;
  version?: number | undefined;
  /** The dependency behind a 429 or 5xx, for metrics. */
  service?: string | undefined;
}

/** One request as metrics see it (metrics.ts names what is emitted). */
export interface RequestMetrics {
  readonly operation: string;
  readonly outcome: AuditRecord['outcome'];
  readonly status: number;
  readonly code?: string | undefined;
  /** The finer reason behind a refusal (audit `reason`). */
  readonly reason?: string | undefined;
  readonly auth?: AuditRecord['auth'];
  readonly service?: string | undefined;
  readonly latencyMs: number;
}

export interface AppOptions {
  /** Where each request's audit line goes; none, none written. */
  readonly audit?: AuditSink | undefined;
  /** Told of every request, for metrics. */
  readonly metrics?: ((request: RequestMetrics) => void) | undefined;
}

type AppEnv = { Bindings: { request?: RequestContext }; Variables: { audit: AuditState } };
type AppContext = Context<AppEnv>;

export function createApp(runtime: Runtime, options: AppOptions = {}): Hono<AppEnv> {
  const { service, admin } = runtime;
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    const given = c.env?.request?.requestId;
    const requestId = typeof given === 'string' && given.length <= 128 ? given : randomUUID();
    const state: AuditState = { operation: 'unknown' };
    c.set('audit', state);
    await next();
    // On the response's own headers: c.header() would copy the finished response into a new
    // one, its body turned into a stream (a fifth of a warm GET's CPU in the local server).
    const headers = c.res.headers;
    headers.set('Cache-Control', 'no-store');
    headers.set('X-Content-Type-Options', 'nosniff');
    headers.set('X-Request-Id', requestId);
    const status = c.res.status;
    const outcome = status < 400 ? 'ok' : status === 401 || status === 403 ? 'denied' : status < 500 ? 'refused' : 'error';
    const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
    options.audit?.write({
      time: new Date().toISOString(),
      requestId,
      auth: state.auth,
      role: state.role,
      account: state.account,
      principal: state.principal,
      operation: state.operation,
      name: state.name,
      outcome,
      status,
      code: state.code,
      reason: state.reason,
      version: state.version,
      latencyMs,
    });
    options.metrics?.({ operation: state.operation, outcome, status, code: state.code, reason: state.reason, auth: state.auth, service: state.service, latencyMs });
  });

  /** Names the operation, and the secret or prefix when it is a valid one (anything else stays out of the log). */
  const operation = (c: AppContext, name: string, target?: { secret?: string; prefix?: string }) => {
    const state = c.get('audit');
    state.operation = name;
    try {
      if (target?.secret !== undefined) state.name = parseSecretName(target.secret);
      if (target?.prefix !== undefined) state.name = parseNamePrefix(target.prefix);
    } catch {
      // invalid: the route refuses it with 400; the log does not repeat it
    }
  };

  // URL parsing folds `a/../b` into `b`, decodes %-escapes, reads `\` as `/` and drops
  // control characters before routing. Names hold only A-Z a-z 0-9 _ . - and /, so the path
  // the client actually sent must too, with no "." or ".." segment: a name never means
  // something other than what was written.
  app.use('/v1/*', async (c, next) => {
    const raw = c.env?.request?.rawPath?.split('?')[0];
    if (raw !== undefined && (!/^[A-Za-z0-9_.\/-]*$/.test(raw) || /(^|\/)\.{1,2}(\/|$)/.test(raw))) {
      throw new DssssError('invalid_name', 'invalid path: only A-Z a-z 0-9 _ . - and / segments, none of them "." or ".."');
    }
    await next();
  });

  const authenticate = async (c: AppContext): Promise<Caller> => {
    const reauthentication = c.req.header('reauthentication');
    if (reauthentication !== undefined) return identified(c, 'token', await service.authenticateToken(reauthentication.trim()));
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) {
      const bearer = /^Bearer +(\S+) *$/i.exec(authorization);
      if (!bearer?.[1]) throw invalidCredentials('Authorization must be "Bearer <token>"', 'bad_token');
      return identified(c, 'token', await service.authenticateToken(bearer[1]));
    }
    const document = c.req.header('authentication');
    if (document !== undefined) {
      // A login in the request itself: a refusal counts as a refused login.
      c.get('audit').auth = 'ec2';
      const login = await service.loginWithIdentityDocument(document, c.req.header('x-dssss-nonce'));
      c.header('Reauthentication', login.token);
      return identified(c, 'ec2', login.caller);
    }
    throw new DssssError(
      'unauthenticated',
      'authenticate with a Reauthentication token, Authorization: Bearer <token>, or an Authentication identity document',
    );
  };

  app.get('/v1/health', (c) => {
    operation(c, 'health');
    return c.json({ status: 'ok' });
  });

  // Readiness: the seal keys load and the store answers. Says which failed and why, never
  // more; the answer is shared for a few seconds (runtime.ts READINESS_TTL_MS).
  app.get('/v1/ready', async (c) => {
    operation(c, 'ready');
    const readiness = await runtime.ready();
    if (readiness.ok) return c.json({ status: 'ready' });
    const err = toDssssError(readiness.error);
    logFailure(err, readiness.error);
    c.get('audit').code = err.code;
    return c.json({ status: 'unready', step: readiness.step, error: { code: err.code, message: err.message } }, 503);
  });

  app.get('/v1/auth', async (c) => {
    operation(c, 'login');
    const document = c.req.header('authentication');
    if (document === undefined) {
      throw new DssssError('unauthenticated', 'send the instance identity document (PKCS#7, base64) in the Authentication header');
    }
    return loggedIn(c, 'ec2', await service.loginWithIdentityDocument(document, c.req.header('x-dssss-nonce')));
  });

  app.post('/v1/auth/iam', limitBody(MAX_IAM_LOGIN_BYTES), async (c) => {
    operation(c, 'login_iam');
    const input = parseJson(await readBody(c), IAM_LOGIN_SHAPE);
    return loggedIn(c, 'iam', await service.loginWithIam(input, c.req.header('x-dssss-nonce')));
  });

  app.put('/v1/secret/:name{.+}', limitBody(MAX_BODY_BYTES), async (c) => {
    operation(c, 'put', { secret: c.req.param('name') });
    const caller = await authenticate(c);
    const { value, roles } = parsePutBody(await readBody(c));
    return c.json(written(c, await service.put(caller, c.req.param('name'), value, roles)));
  });

  // `/versions` and `/restore` end no secret name (names.ts), so they are routes of their own;
  // Hono's router cannot tell `:name{.+}/versions` from `:name{.+}`, so they are told apart here.
  const history = async (c: AppContext, name: string) => {
    operation(c, 'history', { secret: name });
    const caller = await authenticate(c);
    return c.json(await service.history(caller, name));
  };

  app.post('/v1/secret/:name{.+}', async (c) => {
    const name = c.req.param('name');
    if (!name.endsWith('/restore')) {
      c.header('Allow', 'GET, PUT, DELETE');
      throw new DssssError('method_not_allowed', 'use GET, PUT, DELETE (POST only on /v1/secret/{name}/restore)');
    }
    operation(c, 'restore', { secret: name.slice(0, -'/restore'.length) });
    const caller = await authenticate(c);
    return c.json(written(c, await service.restore(caller, name.slice(0, -'/restore'.length))));
  });

  app.get('/v1/secret/:name{.+}', async (c) => {
    if (c.req.param('name').endsWith('/versions')) return history(c, c.req.param('name').slice(0, -'/versions'.length));
    operation(c, 'get', { secret: c.req.param('name') });
    const caller = await authenticate(c);
    const version = c.req.query('version');
    const secret = await service.get(caller, c.req.param('name'), version === undefined ? undefined : parseVersion(version), wantsFresh(c));
    c.get('audit').version = secret.version;
    if (wantsText(c.req.header('accept'))) {
      return c.text(secret.secret, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    }
    return c.json(secret);
  });

  // Soft delete (a tombstone version), or with ?purge=true every version destroyed.
  app.delete('/v1/secret/:name{.+}', async (c) => {
    const purge = flag(c, 'purge');
    operation(c, purge ? 'purge' : 'delete', { secret: c.req.param('name') });
    const caller = await authenticate(c);
    if (purge) await service.purge(caller, c.req.param('name'));
    else written(c, await service.delete(caller, c.req.param('name')));
    return c.body(null, 204);
  });

  app.get('/v1/secrets', async (c) => {
    const values = flag(c, 'values');
    operation(c, values ? 'bulk_read' : 'list', { prefix: c.req.query('prefix') ?? '' });
    const caller = await authenticate(c);
    const limit = c.req.query('limit');
    const page = await service.list(
      caller,
      c.req.query('prefix') ?? '',
      limit === undefined ? DEFAULT_LIST_LIMIT : parseLimit(limit),
      c.req.query('next') || undefined,
      { values, deleted: flag(c, 'deleted'), details: flag(c, 'details') },
      wantsFresh(c),
    );
    return c.json(page);
  });

  app.get('/v1/admin/seal-keys', async (c) => {
    operation(c, 'seal_keys');
    return c.json(await admin.sealKeys(await authenticate(c)));
  });

  app.post('/v1/admin/seal-keys', async (c) => {
    operation(c, 'rotate_seal_key');
    return c.json(await admin.rotate(await authenticate(c)), 201);
  });

  app.delete('/v1/admin/seal-keys/:kid', async (c) => {
    operation(c, 'retire_seal_key');
    const caller = await authenticate(c);
    const kid = c.req.param('kid');
    if (!/^[0-9a-f]{16}$/.test(kid)) throw badRequest('a seal key id is 16 hex digits');
    await admin.retire(caller, kid);
    return c.body(null, 204);
  });

  app.post('/v1/admin/rewrap', async (c) => {
    operation(c, 'rewrap');
    return c.json(await admin.rewrap(await authenticate(c), c.req.query('next') || undefined));
  });

  app.get('/v1/admin/backup', async (c) => {
    operation(c, 'backup');
    return c.json(await admin.backup(await authenticate(c), c.req.query('next') || undefined));
  });

  app.post('/v1/admin/restore-backup', limitBody(MAX_RESTORE_BYTES), async (c) => {
    operation(c, 'restore_backup');
    const caller = await authenticate(c);
    const parsed = RestoreBody.safeParse(parseJson(await readBody(c), RESTORE_SHAPE));
    if (!parsed.success) throw badRequest(`${RESTORE_SHAPE}: unexpected field or type at "${parsed.error.issues[0]?.path.join('.') ?? ''}"`);
    const { sealKeys, name, records, head } = parsed.data;
    c.get('audit').name = parseSecretName(name);
    if (records.some((r, i) => i > 0 && r.seq <= records[i - 1]!.seq)) throw badRequest(`${RESTORE_SHAPE}: records in the order of their seq, each once`);
    const result = await admin.restoreBackup(caller, sealKeys, { name, records, head });
    c.get('audit').version = result.version;
    return c.json(result);
  });

  for (const [path, allow] of [
    ['/v1/health', 'GET'],
    ['/v1/ready', 'GET'],
    ['/v1/auth', 'GET'],
    ['/v1/auth/iam', 'POST'],
    ['/v1/secret/:name{.+}', 'GET, PUT, DELETE'],
    ['/v1/secrets', 'GET'],
    ['/v1/admin/seal-keys', 'GET, POST'],
    ['/v1/admin/seal-keys/:kid', 'DELETE'],
    ['/v1/admin/rewrap', 'POST'],
    ['/v1/admin/backup', 'GET'],
    ['/v1/admin/restore-backup', 'POST'],
  ] as const) {
    app.all(path, (c) => {
      c.header('Allow', allow);
      throw new DssssError('method_not_allowed', `use ${allow}`);
    });
  }

  // Answered, not thrown: where no other middleware ran, a throw here would skip the audit
  // line and the security headers of the first middleware.
  app.notFound((c) => errorResponse(c, new DssssError('not_found', 'no such route')));
  app.onError((err, c) => errorResponse(c, err));
  return app;
}

/** Records who the caller is, for the audit line. */
function identified(c: AppContext, auth: AuditRecord['auth'], caller: Caller): Caller {
  Object.assign(c.get('audit'), { auth, role: caller.role, account: caller.account, principal: caller.principal });
  return caller;
}

/** Records the version a write made, for the audit line. */
function written<T extends { version: number }>(c: AppContext, result: T): T {
  c.get('audit').version = result.version;
  return result;
}

/** `?name=true`; anything but true or false is refused. */
function flag(c: AppContext, name: string): boolean {
  const value = c.req.query(name);
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw badRequest(`${name} must be true or false`);
}

/** `Cache-Control: no-cache` (or max-age=0) skips the server's read cache. */
function wantsFresh(c: AppContext): boolean {
  const header = c.req.header('cache-control')?.toLowerCase() ?? '';
  return /(^|,)\s*(no-cache|max-age=0)\s*(,|$)/.test(header);
}

/** The operational log: the code and, for a dependency, which one and its AWS error name; never a value. */
function logFailure(err: DssssError, thrown: unknown): void {
  console.error(
    JSON.stringify({ level: 'error', code: err.code, error: (thrown as Error)?.name, service: err.detail?.service, awsCode: err.detail?.awsCode }),
  );
}

function limitBody(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new DssssError('too_large', `request body over ${maxSize} bytes`);
    },
  });
}

/** A login's answer: the token in Reauthentication, and as JSON, or bare with `Accept: text/plain` (for TOKEN=$(curl ...)). */
function loggedIn(c: AppContext, auth: AuditRecord['auth'], login: Login & { caller: Caller }): Response {
  identified(c, auth, login.caller);
  c.header('Reauthentication', login.token);
  if (wantsText(c.req.header('accept'))) return c.text(login.token, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
  return c.json({ token: login.token, role: login.role, expiresAt: login.expiresAt });
}

function errorResponse(c: AppContext, thrown: unknown): Response {
  const err = toDssssError(thrown);
  const state = c.get('audit') as AuditState | undefined;
  if (state) Object.assign(state, { code: err.code, reason: err.detail?.reason, service: err.detail?.service });
  if (err.status >= 500 || err.status === 429) logFailure(err, thrown);
  if (err.retryAfter !== undefined && (err.status === 429 || err.status === 503)) {
    c.header('Retry-After', String(err.retryAfter));
  }
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code: err.code, message: err.message } }, err.status as 400);
}

/** The body as text; a client that breaks off or garbles it is a 400, not a server error. */
async function readBody(c: AppContext): Promise<string> {
  try {
    return await c.req.text();
  } catch (err) {
    if (err instanceof DssssError) throw err; // the size limit
    throw badRequest('the request body could not be read');
  }
}

function parseJson(text: string, shape: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest(`${shape}: not valid JSON`);
  }
  // JSON.parse keeps the last of two equal keys; a proxy or an auditor may read the first.
  const duplicate = duplicateKey(text);
  if (duplicate !== undefined) throw badRequest(`${shape}: ${duplicate ? 'a key appears twice in one object' : 'nested too deeply'}`);
  return value;
}

/** true: some object has a key twice; false: too deep to tell; undefined: neither. */
function duplicateKey(text: string): boolean | undefined {
  const objects: Set<string>[] = [];
  let found = false;
  try {
    visitJson(text, {
      onObjectBegin: () => void objects.push(new Set()),
      onObjectEnd: () => void objects.pop(),
      onObjectProperty: (key) => {
        const keys = objects.at(-1)!;
        if (keys.has(key)) found = true;
        keys.add(key);
      },
    });
  } catch {
    return false;
  }
  return found ? true : undefined;
}

function parsePutBody(text: string): { value: string; roles: string[] } {
  const json = parseJson(text, PUT_SHAPE);
  const body = PutBody.safeParse(json);
  if (!body.success) throw badRequest(`${PUT_SHAPE}: unexpected field or type at "${body.error.issues[0]?.path.join('.') ?? ''}"`);
  const { Secret, secret, Roles, roles } = body.data;
  if ((Secret === undefined) === (secret === undefined)) throw badRequest(`${PUT_SHAPE}: give "Secret" once`);
  if ((Roles === undefined) === (roles === undefined)) throw badRequest(`${PUT_SHAPE}: give "Roles" once`);
  return { value: (Secret ?? secret)!, roles: (Roles ?? roles)! };
}

function parseVersion(raw: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(raw)) throw badRequest('version must be a positive integer');
  return Number(raw);
}

function parseLimit(raw: string): number {
  const limit = /^[0-9]{1,4}$/.test(raw) ? Number(raw) : 0;
  if (limit < 1 || limit > MAX_LIST_LIMIT) throw badRequest(`limit must be 1 to ${MAX_LIST_LIMIT}`);
  return limit;
}

function wantsText(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('text/plain') && !accept.includes('application/json');
}
