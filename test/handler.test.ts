// The Lambda entry serves the same app: an API Gateway REST (proxy integration) event in,
// a proxy result out.

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { restEvent } from './rest-event';

let handler: (event: unknown) => Promise<{ statusCode: number; body: string; multiValueHeaders?: Record<string, string[]> }>;

beforeAll(async () => {
  process.env.DSSSS_DATA_DIR = await mkdtemp(join(tmpdir(), 'dssss-lambda-'));
  ({ handler } = (await import('../lambda/handler')) as unknown as { handler: typeof handler });
});

describe('Lambda handler (API Gateway REST proxy)', () => {
  it('serves the health route', async () => {
    const result = await handler(restEvent('GET', '/v1/health'));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ status: 'ok' });
  });

  it('answers an unauthenticated secret read with the JSON 401 of the shared error model', async () => {
    const result = await handler(restEvent('GET', '/v1/secret/app/x'));
    expect(result.statusCode).toBe(401);
    // API Gateway's request id, so the audit line and the access log line match.
    expect(result.multiValueHeaders?.['x-request-id']).toEqual(['req-1']);
    expect(JSON.parse(result.body)).toMatchObject({ error: { code: 'unauthenticated' } });
  });

  it('checks credentials before the body: a bad token with a bad body is 401', async () => {
    const result = await handler(restEvent('PUT', '/v1/secret/app/x', { Authorization: 'Bearer nope' }, '{'));
    expect(result.statusCode).toBe(401);
  });

  it.each(['/v1/secret/app/../x', '/v1/secret/a\\..\\x', '/v1/secret/a/.\t./x', '/v1/secret/a\\x'])(
    'refuses %j in the event path before URL parsing folds it into another name',
    async (path) => {
      const result = await handler(restEvent('GET', path));
      expect(result.statusCode).toBe(400);
      expect(JSON.parse(result.body)).toMatchObject({ error: { code: 'invalid_name' } });
    },
  );
});
