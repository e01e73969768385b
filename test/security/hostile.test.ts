// Hostile input: malformed and oversize headers, bodies and JSON, hostile names, methods and
// paths, sent to the app in-process (unauthenticated, as a reader, and as an outsider), and raw
// malformed HTTP sent over real sockets to the real local server. Every answer is a 4xx (JSON
// wherever the app is reached), never a 5xx, no secret ever appears in one, and the server
// keeps serving throughout.

import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_BODY_BYTES, MAX_IAM_LOGIN_BYTES } from '../../lambda/app';
import { MAX_SECRET_BYTES } from '../../lambda/core/service';
import { localFixture, type Fixture } from '../helpers';
import { rawRequest, startLocalServer, type LocalServer, type RawResponse } from './local-server';

const CANARY = 'canary-7f3a-do-not-leak';
let counted = { inProcess: 0, raw: 0 };
afterAll(() => console.log(`hostile input: ${counted.inProcess} requests in-process, ${counted.raw} raw over sockets`));

interface Case {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

const deep = (open: string, close: string, depth: number, inner = '1') => open.repeat(depth) + inner + close.repeat(depth);
const put = (name: string, body: string, path = '/v1/secret/hostile/x'): Case => ({ name, method: 'PUT', path, body });
const putJson = (name: string, body: unknown): Case => put(name, JSON.stringify(body));

/** Names that must never be accepted, each tried with GET, PUT and DELETE. */
const NAMES: Record<string, string> = {
  'a dot-dot segment': 'app/../x',
  'a dot-dot that folds onto a readable secret': 'app/y/../x',
  'an encoded dot-dot that folds onto a readable secret': 'app/y/%2e%2E/x',
  'a lone dot-dot': '..',
  'a dot segment': 'app/./x',
  'a leading dot-dot': '../app/x',
  'a trailing dot-dot': 'app/x/..',
  'an encoded dot-dot': 'app/%2e%2e/x',
  'a mixed-case encoded dot-dot': 'app/%2E%2e/x',
  'a half-encoded dot-dot': 'app/.%2e/x',
  'an encoded slash with dot-dot': 'app%2F..%2Fx',
  'an encoded backslash with dot-dot': 'app%5C..%5Cx',
  'a double-encoded dot-dot': 'app/%252e%252e/x',
  'an overlong UTF-8 dot': 'app/%c0%ae%c0%ae/x',
  'an overlong UTF-8 slash': 'app%c0%afx',
  'a NUL': 'app/x%00',
  'a NUL inside': 'ap%00p/x',
  'a newline': 'app/x%0a',
  'a carriage return': 'app/x%0d%0aSet-Cookie:%20a=b',
  'a tab': 'app/%09x',
  'a space': 'app/x%20',
  'an empty segment': 'app//x',
  'a trailing slash': 'app/x/',
  'Cyrillic a (look-alike)': '%D0%B0pp/x',
  'Greek omicron (look-alike)': 'app/%CE%BF',
  'a fullwidth solidus': 'app%EF%BC%8Fx',
  'a division slash': 'app%E2%88%95x',
  'a fraction slash': 'app%E2%81%84x',
  'a one-dot leader': 'app/%E2%80%A4%E2%80%A4/x',
  'a fullwidth full stop': 'app/%EF%BC%8E%EF%BC%8E/x',
  'a zero-width space': 'app/x%E2%80%8B',
  'a right-to-left override': 'app/%E2%80%AEx',
  'a combining dot': 'app/x%CC%87',
  'a malformed percent escape': 'app/%zz',
  'a lone percent': 'app/%',
  'an invalid UTF-8 byte': 'app/%ff',
  'a backslash escape': 'app%5Cx',
  'a semicolon': 'app/x;v=1',
  'a colon (a Parameter Store version selector)': 'app/x:1',
  'an encoded colon': 'app/x%3A1',
  'an encoded question mark': 'app/x%3Fversion=1',
  'a glob': 'app/*',
  'a 257-character name': 'a'.repeat(257),
  'a 100 000-character name': 'a'.repeat(100_000),
  'eleven segments': Array.from({ length: 11 }, () => 's').join('/'),
};

const nameCases: Case[] = Object.entries(NAMES).flatMap(([why, name]) => [
  { name: `GET a name with ${why}`, method: 'GET', path: `/v1/secret/${name}` },
  { name: `PUT a name with ${why}`, method: 'PUT', path: `/v1/secret/${name}`, body: JSON.stringify({ Secret: 's', Roles: ['web'] }) },
  { name: `DELETE a name with ${why}`, method: 'DELETE', path: `/v1/secret/${name}` },
]);

const pathCases: Case[] = [
  ...['/', '/v1', '/v1/', '/v2/secret/app/x', '/v1/secret', '/v1/secret/', '/v1/secrets/app', '/v1/auth/', '/V1/secret/app/x', '/v1/SECRET/app/x', '//v1/secret/app/x', '/v1/./secret/app/x', '/v1/health/../secret/app/x', '/.env', '/../../etc/passwd', '/v1/health%00'].map(
    (path) => ({ name: `GET ${path}`, method: 'GET', path }),
  ),
  ...['-1', '0', '01', '1e2', '0x1', '1.0', '+1', '%201', '', '9999999999', '1%00', '%2B1'].map((v) => ({
    name: `version=${v}`,
    method: 'GET',
    path: `/v1/secret/app/x?version=${v}`,
  })),
  ...['-1', '0', '101', '1.5', 'abc', '', '1e1', '99999'].map((v) => ({ name: `limit=${v}`, method: 'GET', path: `/v1/secrets?limit=${v}` })),
  ...['%00', 'a*', 'a b', 'a%0ab', '%D0%B0', '%E2%88%95', 'a'.repeat(257)].map((p) => ({ name: `prefix=${p.slice(0, 20)}`, method: 'GET', path: `/v1/secrets?prefix=${p}` })),
  ...['!!', '%00', 'AA%3D%3D', 'a b', '../..', '%ff%fe'].map((n) => ({ name: `next=${n}`, method: 'GET', path: `/v1/secrets?next=${n}` })),
];

const methodCases: Case[] = ['POST', 'PATCH', 'OPTIONS', 'PROPFIND', 'FOO', 'MKCOL', 'LOCK', 'PURGE'].flatMap((method) =>
  ['/v1/health', '/v1/auth', '/v1/secret/app/x', '/v1/secrets', '/v1/nothing'].map((path) => ({ name: `${method} ${path}`, method, path })),
);

const headerCases: Case[] = [
  ...['', ' ', 'dssss.v1.', 'dssss.v1.' + 'A'.repeat(5000), 'x'.repeat(200_000), 'dssss.v2.AAAA', 'Bearer x', 'dssss.v1.%%%%', 'dssss.v1.AAAA====', 'null', '{"role":"dssssadmin"}'].map(
    (value) => ({ name: `Reauthentication: ${JSON.stringify(value.slice(0, 24))}`, method: 'GET', path: '/v1/secret/app/x', headers: { Reauthentication: value } }),
  ),
  ...['', 'Bearer', 'Bearer ', 'Bearer a b', 'Basic dXNlcjpwYXNz', 'Bearer ' + 'x'.repeat(100_000), 'Bearer\tx', 'Digest x', 'Bearer dssss.v1.AAAA', 'Negotiate ' + 'A'.repeat(9000)].map(
    (value) => ({ name: `Authorization: ${JSON.stringify(value.slice(0, 24))}`, method: 'GET', path: '/v1/secret/app/x', headers: { Authorization: value } }),
  ),
  ...[
    '',
    ' ',
    'x',
    'A'.repeat(16 * 1024 + 1),
    'A'.repeat(1_000_000),
    '-----BEGIN PKCS7-----',
    '-----BEGIN PKCS7-----AAAA-----END CMS-----',
    '-----BEGIN CERTIFICATE-----MIIB-----END CERTIFICATE-----',
    'MIAGCSqGSIb3DQEHAqCAMIACAQExADALBgkqhkiG9w0BBwGggCSABAAAAAAAAAAAAAAAAAAA',
    Buffer.from([0x30, 0x80, 0x30, 0x80, 0x30, 0x80, 0x30, 0x80]).toString('base64'),
    Buffer.from(deep('\x30\x80', '\x00\x00', 2000, ''), 'latin1').toString('base64').slice(0, 16_000),
    Buffer.from('{"instanceId":"i-0123456789abcdef0","accountId":"111122223333","region":"us-east-1"}').toString('base64'),
    'AAAA=AAAA',
    '\u00c0\u00c1\u00c2\u00c3',
  ].map((value, i) => ({ name: `Authentication #${i} (${value.length} characters)`, method: 'GET', path: '/v1/auth', headers: { Authentication: value } })),
  { name: 'a document on a secret route that does not verify', method: 'GET', path: '/v1/secret/app/x', headers: { Authentication: 'bm90IGEgZG9jdW1lbnQ=' } },
  { name: 'a bad token beside a bad Authorization', method: 'GET', path: '/v1/secret/app/x', headers: { Reauthentication: 'nope', Authorization: 'Bearer nope' } },
  { name: 'a Content-Type that lies', method: 'PUT', path: '/v1/secret/app/x', headers: { 'Content-Type': 'multipart/form-data; boundary=x' }, body: '--x\r\n' },
];

const bodyCases: Case[] = [
  put('an empty body', ''),
  put('not JSON', '{"Secret":'),
  put('JSON null', 'null'),
  put('a JSON string', '"hunter2"'),
  put('a JSON number', '42'),
  put('JSON true', 'true'),
  put('a JSON array', '["s", ["web"]]'),
  put('arrays nested 30 000 deep', deep('[', ']', 30_000)),
  put('objects nested 10 000 deep', deep('{"a":', '}', 10_000)),
  put('a Secret nested 5 000 deep', `{"Secret":${deep('{"a":', '}', 5000)},"Roles":["web"]}`),
  put('Roles nested 10 000 deep', `{"Secret":"s","Roles":${deep('[', ']', 10_000, '"web"')}}`),
  put('trailing garbage', '{"Secret":"s","Roles":["web"]} x'),
  put('two JSON documents', '{"Secret":"s","Roles":["web"]}{"Secret":"t","Roles":["web"]}'),
  put('single quotes', "{'Secret':'s','Roles':['web']}"),
  put('a comment', '{"Secret":"s", /* x */ "Roles":["web"]}'),
  put('NaN', '{"Secret":NaN,"Roles":["web"]}'),
  put('an unterminated string', '{"Secret":"s'),
  put('a raw control character in a string', '{"Secret":"a\u0001b","Roles":["web"]}'),
  put('a bad escape', '{"Secret":"\\x41","Roles":["web"]}'),
  put('a body over the limit', 'x'.repeat(MAX_BODY_BYTES + 1)),
  put('a good body padded over the limit', `${' '.repeat(MAX_BODY_BYTES)}{"Secret":"s","Roles":["web"]}`),
  put('JSON over the limit', JSON.stringify({ Secret: 'x'.repeat(MAX_BODY_BYTES), Roles: ['web'] })),
  putJson('a number for the secret', { Secret: 42, Roles: ['web'] }),
  putJson('null for the secret', { Secret: null, Roles: ['web'] }),
  putJson('an object for the secret', { Secret: { value: 's' }, Roles: ['web'] }),
  putJson('an array for the secret', { Secret: ['s'], Roles: ['web'] }),
  putJson('true for the secret', { Secret: true, Roles: ['web'] }),
  putJson('a string for the roles', { Secret: 's', Roles: 'web' }),
  putJson('an object for the roles', { Secret: 's', Roles: { 0: 'web' } }),
  putJson('a number among the roles', { Secret: 's', Roles: [1] }),
  putJson('null among the roles', { Secret: 's', Roles: [null] }),
  putJson('a nested array among the roles', { Secret: 's', Roles: [['web']] }),
  putJson('no roles', { Secret: 's', Roles: [] }),
  putJson('an empty role', { Secret: 's', Roles: [''] }),
  putJson('a role with a space', { Secret: 's', Roles: ['web admin'] }),
  putJson('a role with a slash', { Secret: 's', Roles: ['path/web'] }),
  putJson('a user ARN for a role', { Secret: 's', Roles: ['arn:aws:iam::111122223333:user/web'] }),
  putJson('a look-alike role (Cyrillic e)', { Secret: 's', Roles: ['w\u0435b'] }),
  putJson('a role with a NUL', { Secret: 's', Roles: ['web\u0000'] }),
  putJson('a 65-character role', { Secret: 's', Roles: ['r'.repeat(65)] }),
  putJson('21 roles', { Secret: 's', Roles: Array.from({ length: 21 }, (_, i) => `r${i}`) }),
  putJson('no secret', { Roles: ['web'] }),
  putJson('no roles field', { Secret: 's' }),
  putJson('both Secret and secret', { Secret: 's', secret: 't', Roles: ['web'] }),
  putJson('both Roles and roles', { Secret: 's', Roles: ['web'], roles: ['web'] }),
  putJson('an unknown field', { Secret: 's', Roles: ['web'], Admin: true }),
  putJson('a version field', { Secret: 's', Roles: ['web'], Version: 7 }),
  put('a __proto__ field', '{"Secret":"s","Roles":["web"],"__proto__":{"isAdmin":true}}'),
  put('a constructor field', '{"Secret":"s","Roles":["web"],"constructor":{"prototype":{"x":1}}}'),
  putJson('a secret one byte over the limit', { Secret: 'x'.repeat(MAX_SECRET_BYTES + 1), Roles: ['web'] }),
  putJson('a multi-byte secret over the limit', { Secret: '☃'.repeat(Math.ceil((MAX_SECRET_BYTES + 1) / 3)), Roles: ['web'] }),
  // 4 KiB of control characters is within the secret limit, but JSON-escaped it is 24 KiB sealed.
  putJson('a sealed record over 8 KiB', { Secret: '\u0001'.repeat(MAX_SECRET_BYTES), Roles: ['web'] }),
];

// The IAM login's body is a request this server would forward to STS: nothing here may leave.
const iamBase = {
  method: 'POST',
  url: 'https://sts.amazonaws.com/',
  headers: {
    'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
    'X-Dssss-Server-Id': 'dssss-local',
    Authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-dssss-server-id, Signature=00',
  },
  body: Buffer.from('Action=GetCallerIdentity&Version=2011-06-15').toString('base64'),
};
const iam = (name: string, change: Record<string, unknown>): Case => ({ name: `IAM login with ${name}`, method: 'POST', path: '/v1/auth/iam', body: JSON.stringify({ ...iamBase, ...change }) });
const iamHeaders = (extra: Record<string, unknown>) => ({ headers: { ...iamBase.headers, ...extra } });
const iamCases: Case[] = [
  { name: 'IAM login with no body', method: 'POST', path: '/v1/auth/iam', body: '' },
  { name: 'IAM login with not JSON', method: 'POST', path: '/v1/auth/iam', body: 'Action=GetCallerIdentity' },
  { name: 'IAM login nested 30 000 deep', method: 'POST', path: '/v1/auth/iam', body: deep('[', ']', 30_000) },
  { name: 'IAM login over the limit', method: 'POST', path: '/v1/auth/iam', body: JSON.stringify({ ...iamBase, pad: 'x'.repeat(MAX_IAM_LOGIN_BYTES) }) },
  iam('GET', { method: 'GET' }),
  iam('the instance metadata service', { url: 'http://169.254.169.254/latest/meta-data/' }),
  iam('the instance metadata service over https', { url: 'https://169.254.169.254/' }),
  iam('another host', { url: 'https://example.com/' }),
  iam('a look-alike STS host', { url: 'https://sts.amazonaws.com.example.com/' }),
  iam('credentials in the url', { url: 'https://sts.amazonaws.com@example.com/' }),
  iam('a port', { url: 'https://sts.amazonaws.com:8443/' }),
  iam('a path', { url: 'https://sts.amazonaws.com/x' }),
  iam('a query', { url: 'https://sts.amazonaws.com/?Action=AssumeRole' }),
  iam('a file url', { url: 'file:///etc/passwd' }),
  iam('plain http', { url: 'http://sts.amazonaws.com/' }),
  iam('a number for the url', { url: 42 }),
  iam('AssumeRole', { body: Buffer.from('Action=AssumeRole&Version=2011-06-15&RoleArn=x').toString('base64') }),
  iam('GetCallerIdentity twice', { body: Buffer.from('Action=GetCallerIdentity&Version=2011-06-15&Action=GetCallerIdentity').toString('base64') }),
  iam('a body that is not base64', { body: 'Action=GetCallerIdentity' }),
  iam('a CRLF in a header', iamHeaders({ 'X-Extra': 'a\r\nHost: example.com' })),
  iam('a NUL in a header', iamHeaders({ 'X-Extra': 'a\u0000b' })),
  iam('a header name with a space', iamHeaders({ 'X Extra': 'a' })),
  iam('a number for a header', iamHeaders({ 'X-Extra': 1 })),
  iam('a duplicate header in another case', iamHeaders({ 'content-type': 'text/plain' })),
  iam('30 headers', iamHeaders(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x-h${i}`, 'v'])))),
  iam('another server id', iamHeaders({ 'X-Dssss-Server-Id': 'someone-else' })),
  iam('an unsigned server id', iamHeaders({ Authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=00' })),
  iam('no signature', iamHeaders({ Authorization: undefined })),
  iam('a host header for another host', iamHeaders({ Host: 'example.com' })),
  iam('an unknown field', { extra: true }),
  iam('an array for headers', { headers: ['a'] }),
];

const cases: Case[] = [...nameCases, ...pathCases, ...methodCases, ...headerCases, ...bodyCases, ...iamCases];

describe('hostile input to the app, in-process', () => {
  let f: Fixture;
  const as: Record<string, Record<string, string>> = {};
  // The server's way out for an IAM login: hostile input must never reach it.
  const forwarded = { count: 0 };
  const refusingSts = {
    getCallerIdentity: async (): Promise<never> => {
      forwarded.count++;
      throw new Error('hostile input must not reach STS');
    },
  };

  beforeAll(async () => {
    // Allowed accounts turn on the local server's IAM login, so its parser meets the hostile bodies too.
    f = await localFixture({ DSSSS_ALLOWED_ACCOUNTS: '111122223333' }, { sts: refusingSts });
    as.unauthenticated = {};
    as.reader = { Reauthentication: await f.login('web') };
    as.outsider = { Reauthentication: await f.login('billing') };
    const created = await f.request('PUT', '/v1/secret/app/x', { headers: as.reader, body: { Secret: CANARY, Roles: ['web'] } });
    expect(created.status).toBe(200);
    vi.spyOn(console, 'error'); // 5xx are logged: none is expected, and a log line would show it
  });

  afterAll(async () => {
    await rm(f.dir, { recursive: true, force: true });
  });

  it(`has a few hundred cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThan(300);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  for (const caller of ['unauthenticated', 'reader', 'outsider'] as const) {
    it(`answers every case ${caller === 'unauthenticated' ? 'unauthenticated' : `as ${caller === 'reader' ? 'a reader' : 'an outsider'}`} with a JSON 4xx that leaks nothing`, async () => {
      for (const c of cases) {
        // A case that brings its own credentials is sent with those alone.
        const own = Object.keys(c.headers ?? {}).some((h) => /^(reauthentication|authorization|authentication)$/i.test(h));
        const response = await f.request(c.method, c.path, { headers: { ...(own ? {} : as[caller]), ...c.headers }, body: c.body });
        counted.inProcess++;
        const text = await response.text();
        const label = `${c.name} (${caller}): ${response.status} ${text.slice(0, 120)}`;
        expect(response.status, label).toBeGreaterThanOrEqual(400);
        expect(response.status, label).toBeLessThan(500);
        expect(response.headers.get('Content-Type'), label).toMatch(/^application\/json/);
        const body = JSON.parse(text) as { error: { code: unknown; message: unknown } };
        expect(typeof body.error.code, label).toBe('string');
        expect(typeof body.error.message, label).toBe('string');
        expect(text, label).not.toContain(CANARY);
        for (const value of Object.values(as[caller]!)) expect(text, label).not.toContain(value);
        if (c.path === '/v1/auth/iam') expect(response.status, `${label}: reached the IAM login's checks`).not.toBe(404);
      }
    });
  }

  it('answered a HEAD without a body, but with the JSON error status', async () => {
    const response = await f.request('HEAD', '/v1/secret/app/x');
    expect(response.status).toBe(401);
    expect(await response.text()).toBe('');
  });

  it('still serves afterwards: nothing was written, nothing sent to the network, nothing logged as a 5xx', async () => {
    expect((await f.request('GET', '/v1/health')).status).toBe(200);
    const read = await f.request('GET', '/v1/secret/app/x', { headers: as.reader });
    expect(await read.json()).toEqual({ name: 'app/x', secret: CANARY, version: 1, roles: ['web'] });
    const list = await f.request('GET', '/v1/secrets', { headers: { Reauthentication: await f.login('dssssadmin') } });
    expect(await list.json()).toEqual({ names: ['app/x'] });
    expect(forwarded.count).toBe(0);
    expect(console.error).not.toHaveBeenCalled();
  });
});

// ---- raw HTTP over real sockets, to `npm start`'s server ----

interface RawCase {
  readonly name: string;
  readonly bytes: string | Uint8Array;
  /** 'app': reaches the app. 'http': refused by Node's HTTP parser or the adapter, before the app. Both answer a JSON 4xx. */
  readonly layer: 'app' | 'http';
}

const request = (line: string, headers: string[] = ['Host: 127.0.0.1'], body = '') => `${line}\r\n${headers.join('\r\n')}\r\n\r\n${body}`;

const rawCases: RawCase[] = [
  { name: 'binary garbage', bytes: Uint8Array.from([0, 1, 2, 255, 254, 13, 10, 13, 10]), layer: 'http' },
  { name: 'an HTTP/2 preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', layer: 'http' },
  { name: 'TLS on a plain port', bytes: Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), layer: 'http' },
  { name: 'HTTP/9.9', bytes: request('GET /v1/health HTTP/9.9'), layer: 'http' },
  { name: 'a lower-case method', bytes: request('get /v1/health HTTP/1.1'), layer: 'http' },
  { name: 'an unknown method', bytes: request('FOO /v1/secret/app/x HTTP/1.1'), layer: 'http' },
  { name: 'TRACE', bytes: request('TRACE /v1/secret/app/x HTTP/1.1'), layer: 'app' },
  { name: 'CONNECT', bytes: request('CONNECT 127.0.0.1:22 HTTP/1.1'), layer: 'http' },
  { name: 'OPTIONS *', bytes: request('OPTIONS * HTTP/1.1'), layer: 'http' },
  { name: 'no Host header', bytes: request('GET /v1/secret/app/x HTTP/1.1', []), layer: 'http' },
  { name: 'a Host with a space', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: a b']), layer: 'http' },
  { name: 'a Host with a path', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: x/../y']), layer: 'http' },
  { name: 'two Host headers', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: a', 'Host: b']), layer: 'http' },
  { name: 'a raw backslash dot-dot', bytes: request('GET /v1/secret/app\\..\\x HTTP/1.1'), layer: 'http' },
  { name: 'a raw dot-dot', bytes: request('GET /v1/secret/app/../x HTTP/1.1'), layer: 'app' },
  { name: 'an absolute-form URL with dot-dot', bytes: request('GET http://127.0.0.1/v1/secret/app/../x HTTP/1.1'), layer: 'app' },
  { name: 'an absolute-form URL to another host', bytes: request('GET http://169.254.169.254/latest/meta-data/ HTTP/1.1'), layer: 'app' },
  { name: 'a tab in the path', bytes: request('GET /v1/secret/app/.\t./x HTTP/1.1'), layer: 'http' },
  { name: 'a raw NUL in the path', bytes: request('GET /v1/secret/app/x\0 HTTP/1.1'), layer: 'http' },
  { name: 'raw UTF-8 in the path', bytes: Buffer.from(request('GET /v1/secret/аpp/x HTTP/1.1'), 'utf8'), layer: 'http' },
  { name: 'a fragment in the path', bytes: request('GET /v1/secret/app/x#y HTTP/1.1'), layer: 'http' },
  { name: 'a 20 KiB path', bytes: request(`GET /v1/secret/${'a'.repeat(20_000)} HTTP/1.1`), layer: 'http' },
  { name: 'a 20 KiB header', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', `Reauthentication: ${'a'.repeat(20_000)}`]), layer: 'http' },
  { name: '3 000 headers', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', ...Array.from({ length: 3000 }, (_, i) => `X-${i}: v`)]), layer: 'http' },
  { name: 'a NUL in a header value', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Reauthentication: a\0b']), layer: 'http' },
  { name: 'a bare LF in a header value', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Reauthentication: a\nb']), layer: 'http' },
  { name: 'a folded header', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Reauthentication: a', ' b']), layer: 'http' },
  { name: 'a header without a colon', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Reauthentication']), layer: 'http' },
  { name: 'a header name with a space', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Re authentication: x']), layer: 'http' },
  { name: 'Latin-1 bytes in a token', bytes: Buffer.concat([Buffer.from('GET /v1/secret/app/x HTTP/1.1\r\nHost: 127.0.0.1\r\nReauthentication: '), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('\r\n\r\n')]), layer: 'app' },
  { name: 'UTF-8 bytes in a document', bytes: Buffer.from(request('GET /v1/auth HTTP/1.1', ['Host: 127.0.0.1', 'Authentication: ☃☃☃☃']), 'utf8'), layer: 'app' },
  { name: 'Content-Length and chunked together', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), layer: 'http' },
  { name: 'two different Content-Lengths', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Content-Length: 2', 'Content-Length: 3'], 'abc'), layer: 'http' },
  { name: 'a negative Content-Length', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Content-Length: -1']), layer: 'http' },
  { name: 'a huge Content-Length', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Content-Length: 99999999999999'], '{}'), layer: 'app' },
  { name: 'an unknown Transfer-Encoding', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Transfer-Encoding: gzip, chunked, identity'], '0\r\n\r\n'), layer: 'http' },
  { name: 'a bad chunk size', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Transfer-Encoding: chunked'], 'zz\r\nabc\r\n0\r\n\r\n'), layer: 'http' },
  { name: 'a chunked body over the limit', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Transfer-Encoding: chunked'], `${(MAX_BODY_BYTES + 10).toString(16)}\r\n${'x'.repeat(MAX_BODY_BYTES + 10)}\r\n0\r\n\r\n`), layer: 'app' },
  { name: 'a body over the limit', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', `Content-Length: ${MAX_BODY_BYTES + 1}`], 'x'.repeat(MAX_BODY_BYTES + 1)), layer: 'app' },
  { name: 'an unauthenticated PUT with a good body', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Content-Length: 30'], '{"Secret":"s","Roles":["web"]}'), layer: 'app' },
  { name: 'Expect: 100-continue', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Expect: 100-continue', 'Content-Length: 2'], '{}'), layer: 'app' },
  { name: 'an unknown Expect', bytes: request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Expect: 200-ok', 'Content-Length: 2'], '{}'), layer: 'http' },
  { name: 'a WebSocket upgrade', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']), layer: 'app' },
  { name: 'an h2c upgrade', bytes: request('GET /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']), layer: 'app' },
  { name: 'an unauthenticated read over HTTP/1.0', bytes: 'GET /v1/secret/app/x HTTP/1.0\r\n\r\n', layer: 'app' },
  { name: 'an HTTP/0.9 request line', bytes: 'GET /v1/secret/app/x\r\n\r\n', layer: 'app' },
];

describe('raw malformed HTTP to the local server (npm start), over real sockets', () => {
  let server: LocalServer;
  let reader: string;

  beforeAll(async () => {
    server = await startLocalServer();
    reader = await server.login('web');
    const created = await fetch(`${server.url}/v1/secret/app/x`, { method: 'PUT', headers: { Reauthentication: reader }, body: JSON.stringify({ Secret: CANARY, Roles: ['web'] }) });
    expect(created.status).toBe(200);
  });

  afterAll(async () => {
    await server?.stop();
  });

  async function expectServing(label: string): Promise<void> {
    const health = await rawRequest(server.port, request('GET /v1/health HTTP/1.1', ['Host: 127.0.0.1', 'Connection: close']));
    expect(health.status, `serving after ${label}`).toBe(200);
    expect(server.process.exitCode, `alive after ${label}`).toBeNull();
  }

  function expectRefused(response: RawResponse, c: RawCase): void {
    const label = `${c.name}: ${response.status} ${JSON.stringify(response.body.slice(0, 120))}`;
    // Whichever layer refuses it (the app, the adapter, or Node's parser through the
    // server's clientError handler), the answer is the JSON error model.
    expect(response.status, label).toBeGreaterThanOrEqual(400);
    expect(response.status, label).toBeLessThan(500);
    expect(response.body, label).not.toContain(CANARY);
    expect(response.headers['content-type'] ?? '', label).toMatch(/^application\/json/);
    expect(JSON.parse(response.body), label).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
  }

  it(`refuses each of ${rawCases.length} malformed requests with a 4xx (JSON from the app) and keeps serving after each`, async () => {
    for (const c of rawCases) {
      const response = await rawRequest(server.port, c.bytes).catch((err: Error) => {
        throw new Error(`${c.name}: ${err.message}`);
      });
      counted.raw++;
      expectRefused(response, c);
      await expectServing(c.name);
    }
  });

  async function pipelined(bytes: string): Promise<number[]> {
    const { connect } = await import('node:net');
    const response = await new Promise<string>((resolve) => {
      const socket = connect(server.port, '127.0.0.1');
      let data = '';
      socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
      socket.on('close', () => resolve(data));
      socket.write(bytes);
    });
    counted.raw++;
    return [...response.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  }

  it('answers pipelined requests in order; a malformed one ends the connection with a 400', async () => {
    const health = request('GET /v1/health HTTP/1.1');
    const unauthenticated = request('GET /v1/secret/app/x HTTP/1.1');
    expect(await pipelined(health + unauthenticated + request('GET /v1/health HTTP/1.1', ['Host: 127.0.0.1', 'Connection: close']))).toEqual([200, 401, 200]);
    // Node parses ahead: answers still in flight may be dropped, but nothing else happens.
    const statuses = await pipelined(health + unauthenticated + 'GARBAGE\r\n\r\n' + health);
    expect(statuses.at(-1)).toBe(400);
    expect(statuses.slice(0, -1).every((s) => s === 200 || s === 401)).toBe(true);
    await expectServing('pipelined requests');
  });

  it('keeps serving while connections stall mid-headers and mid-body', async () => {
    const { connect } = await import('node:net');
    const stalled = Array.from({ length: 50 }, (_, i) => {
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(
        i % 2 === 0
          ? 'GET /v1/secret/app/x HTTP/1.1\r\nHost: 127.0.0.1\r\nReauthentication: '
          : request('PUT /v1/secret/app/x HTTP/1.1', ['Host: 127.0.0.1', `Reauthentication: ${reader}`, 'Content-Length: 1000'], '{"Secret":'),
      );
      return socket;
    });
    counted.raw += stalled.length;
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await expectServing('50 stalled connections');
      const read = await fetch(`${server.url}/v1/secret/app/x`, { headers: { Reauthentication: reader } });
      expect(await read.json()).toMatchObject({ secret: CANARY, version: 1 });
    } finally {
      for (const socket of stalled) socket.destroy();
    }
  });

  it('is still whole at the end: the secret unchanged, logins and writes work', async () => {
    const read = await fetch(`${server.url}/v1/secret/app/x`, { headers: { Reauthentication: await server.login('web') } });
    expect(await read.json()).toEqual({ name: 'app/x', secret: CANARY, version: 1, roles: ['web'] });
    const write = await fetch(`${server.url}/v1/secret/app/y`, { method: 'PUT', headers: { Reauthentication: reader }, body: JSON.stringify({ Secret: 'y', Roles: ['web'] }) });
    expect(write.status).toBe(200);
    expect(server.process.exitCode).toBeNull();
    // Nothing any client sent, broken off or garbled, was logged as a server error.
    expect(server.output()).not.toMatch(/"level":"error"/);
  });
});
