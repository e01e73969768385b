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
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type Login, type SecretService } from './core/service';
import type { AuditRecord, AuditSink } from './ports';

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

/** What the routes learn about a request as it goes, for its audit line. */
interface AuditState {
  operation: string;
  name?: string | undefined;
  auth?: AuditRecord['auth'];
  role?: string | undefined;
  principal?: string | undefined;
  code?: string | undefined;
}

type AppEnv = { Variables: { audit: AuditState } };
type AppContext = Context<AppEnv>;

/** `audit`: where each request's audit line goes; none, none written. */
export function createApp(service: SecretService, audit?: AuditSink): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    const requestId = lambdaRequestId(c.env) ?? randomUUID();
    const state: AuditState = { operation: 'unknown' };
    c.set('audit', state);
    await next();
    c.header('Cache-Control', 'no-store');
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Request-Id', requestId);
    const status = c.res.status;
    audit?.write({
      time: new Date().toISOString(),
      requestId,
      auth: state.auth,
      role: state.role,
      principal: state.principal,
      operation: state.operation,
      name: state.name,
      outcome: status < 400 ? 'ok' : status === 401 || status === 403 ? 'denied' : status < 500 ? 'refused' : 'error',
      status,
      code: state.code,
      latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
    });
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
    const raw = rawPath(c.env)?.split('?')[0];
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
      if (!bearer?.[1]) throw invalidCredentials('Authorization must be "Bearer <token>"');
      return identified(c, 'token', await service.authenticateToken(bearer[1]));
    }
    const document = c.req.header('authentication');
    if (document !== undefined) {
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
    return loggedIn(c, 'iam', await service.loginWithIam(parseJson(await readBody(c), IAM_LOGIN_SHAPE)));
  });

  app.put(
    '/v1/secret/:name{.+}',
    limitBody(MAX_BODY_BYTES),
    async (c) => {
      operation(c, 'put', { secret: c.req.param('name') });
      const caller = await authenticate(c);
      const { value, roles } = parsePutBody(await readBody(c));
      return c.json(await service.put(caller, c.req.param('name'), value, roles));
    },
  );

  app.get('/v1/secret/:name{.+}', async (c) => {
    operation(c, 'get', { secret: c.req.param('name') });
    const caller = await authenticate(c);
    const version = c.req.query('version');
    const secret = await service.get(caller, c.req.param('name'), version === undefined ? undefined : parseVersion(version));
    if (wantsText(c.req.header('accept'))) {
      return c.text(secret.secret, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    }
    return c.json(secret);
  });

  app.delete('/v1/secret/:name{.+}', async (c) => {
    operation(c, 'delete', { secret: c.req.param('name') });
    const caller = await authenticate(c);
    await service.delete(caller, c.req.param('name'));
    return c.body(null, 204);
  });

  app.get('/v1/secrets', async (c) => {
    operation(c, 'list', { prefix: c.req.query('prefix') ?? '' });
    const caller = await authenticate(c);
    const limit = c.req.query('limit');
    const page = await service.list(
      caller,
      c.req.query('prefix') ?? '',
      limit === undefined ? DEFAULT_LIST_LIMIT : parseLimit(limit),
      c.req.query('next') || undefined,
    );
    return c.json(page);
  });

  for (const [path, allow] of [
    ['/v1/health', 'GET'],
    ['/v1/auth', 'GET'],
    ['/v1/auth/iam', 'POST'],
    ['/v1/secret/:name{.+}', 'GET, PUT, DELETE'],
    ['/v1/secrets', 'GET'],
  ] as const) {
    app.all(path, (c) => {
      c.header('Allow', allow);
      throw new DssssError('method_not_allowed', `use ${allow}`);
    });
  }

  app.notFound(() => {
    throw new DssssError('not_found', 'no such route');
  });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}

/** Records who the caller is, for the audit line. */
function identified(c: AppContext, auth: AuditRecord['auth'], caller: Caller): Caller {
  Object.assign(c.get('audit'), { auth, role: caller.role, principal: caller.principal });
  return caller;
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
  if (state) state.code = err.code;
  if (err.status >= 500) console.error(JSON.stringify({ level: 'error', code: err.code, error: (thrown as Error)?.name }));
  if (err.retryAfter !== undefined && (err.status === 429 || err.status === 503)) {
    c.header('Retry-After', String(err.retryAfter));
  }
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code: err.code, message: err.message } }, err.status as 400);
}

/** API Gateway's request id, under which its access log has the same request. */
function lambdaRequestId(env: unknown): string | undefined {
  const id = (env as { event?: { requestContext?: { requestId?: unknown } } } | undefined)?.event?.requestContext?.requestId;
  return typeof id === 'string' && id.length <= 128 ? id : undefined;
}

/** The request path before URL normalisation, as the local server (Node) or Lambda (event) saw it. */
function rawPath(env: unknown): string | undefined {
  const shell = env as { incoming?: { url?: unknown }; event?: { path?: unknown } } | undefined;
  const raw = shell?.incoming?.url ?? shell?.event?.path;
  return typeof raw === 'string' ? raw : undefined;
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
