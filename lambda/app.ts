// The HTTP API: routes -> SecretService. The only place HTTP meets the domain; the Lambda
// handler and the local server both serve this app.

import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { badRequest, DssssError, invalidCredentials, toDssssError } from './core/errors';
import { IAM_LOGIN_SHAPE } from './core/iam-login';
import type { Caller } from './core/policy';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type SecretService } from './core/service';

/** Largest request body accepted (a secret is at most 4 KiB; JSON escaping can grow it). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Largest IAM login body: a signed request with a session token is ~3 KiB. */
export const MAX_IAM_LOGIN_BYTES = 16 * 1024;

const PutBody = z
  .object({
    Secret: z.string().optional(),
    secret: z.string().optional(),
    Roles: z.array(z.string()).optional(),
    roles: z.array(z.string()).optional(),
  })
  .strict();

const PUT_SHAPE = 'body must be JSON {"Secret": "<value>", "Roles": ["<role>", ...]}';

export function createApp(service: SecretService): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
    c.header('X-Content-Type-Options', 'nosniff');
  });

  // URL parsing folds `a/../b` into `b` before routing; refuse dot segments in the path the
  // client actually sent, so a name never means something other than what was written.
  app.use('/v1/*', async (c, next) => {
    const raw = rawPath(c.env);
    if (raw !== undefined && /(^|\/)(\.|%2e){1,2}(\/|$)/i.test(raw.split('?')[0]!)) {
      throw new DssssError('invalid_name', 'invalid path: "." and ".." segments are not allowed');
    }
    await next();
  });

  const authenticate = async (c: Context): Promise<Caller> => {
    const reauthentication = c.req.header('reauthentication');
    if (reauthentication !== undefined) return service.authenticateToken(reauthentication.trim());
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) {
      const bearer = /^Bearer +(\S+) *$/i.exec(authorization);
      if (!bearer?.[1]) throw invalidCredentials('Authorization must be "Bearer <token>"');
      return service.authenticateToken(bearer[1]);
    }
    const document = c.req.header('authentication');
    if (document !== undefined) {
      const login = await service.loginWithIdentityDocument(document);
      c.header('Reauthentication', login.token);
      return login.caller;
    }
    throw new DssssError(
      'unauthenticated',
      'authenticate with a Reauthentication token, Authorization: Bearer <token>, or an Authentication identity document',
    );
  };

  app.get('/v1/health', (c) => c.json({ status: 'ok' }));

  app.get('/v1/auth', async (c) => {
    const document = c.req.header('authentication');
    if (document === undefined) {
      throw new DssssError('unauthenticated', 'send the instance identity document (PKCS#7, base64) in the Authentication header');
    }
    const { token, role, expiresAt } = await service.loginWithIdentityDocument(document);
    c.header('Reauthentication', token);
    // `Accept: text/plain` gives the bare token, for TOKEN=$(curl ...).
    if (wantsText(c.req.header('accept'))) return c.text(token, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    return c.json({ token, role, expiresAt });
  });

  app.post(
    '/v1/auth/iam',
    bodyLimit({
      maxSize: MAX_IAM_LOGIN_BYTES,
      onError: () => {
        throw new DssssError('too_large', `request body over ${MAX_IAM_LOGIN_BYTES} bytes`);
      },
    }),
    async (c) => {
      const { token, role, expiresAt } = await service.loginWithIam(parseJson(await c.req.text(), IAM_LOGIN_SHAPE));
      c.header('Reauthentication', token);
      if (wantsText(c.req.header('accept'))) return c.text(token, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
      return c.json({ token, role, expiresAt });
    },
  );

  app.put(
    '/v1/secret/:name{.+}',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new DssssError('too_large', `request body over ${MAX_BODY_BYTES} bytes`);
      },
    }),
    async (c) => {
      const caller = await authenticate(c);
      const { value, roles } = parsePutBody(await c.req.text());
      return c.json(await service.put(caller, c.req.param('name'), value, roles));
    },
  );

  app.get('/v1/secret/:name{.+}', async (c) => {
    const caller = await authenticate(c);
    const version = c.req.query('version');
    const secret = await service.get(caller, c.req.param('name'), version === undefined ? undefined : parseVersion(version));
    if (wantsText(c.req.header('accept'))) {
      return c.text(secret.secret, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    }
    return c.json(secret);
  });

  app.delete('/v1/secret/:name{.+}', async (c) => {
    const caller = await authenticate(c);
    await service.delete(caller, c.req.param('name'));
    return c.body(null, 204);
  });

  app.get('/v1/secrets', async (c) => {
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

export function errorResponse(c: Context, thrown: unknown): Response {
  const err = toDssssError(thrown);
  if (err.status >= 500) console.error(JSON.stringify({ level: 'error', code: err.code, error: (thrown as Error)?.name }));
  if (err.retryAfter !== undefined && (err.status === 429 || err.status === 503)) {
    c.header('Retry-After', String(err.retryAfter));
  }
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code: err.code, message: err.message } }, err.status as 400);
}

/** The request path before URL normalisation, as the local server (Node) or Lambda (event) saw it. */
function rawPath(env: unknown): string | undefined {
  const shell = env as { incoming?: { url?: unknown }; event?: { path?: unknown } } | undefined;
  const raw = shell?.incoming?.url ?? shell?.event?.path;
  return typeof raw === 'string' ? raw : undefined;
}

function parseJson(text: string, shape: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(`${shape}: not valid JSON`);
  }
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
