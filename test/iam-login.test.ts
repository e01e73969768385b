// POST /v1/auth/iam through the app, with STS played by a loopback stand-in: the happy path,
// what STS's answers mean, and the refusals, with proof that a refused request never left.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { signGetCallerIdentity, type IamLoginBody } from '../cli/credentials';
import { HttpStsGateway } from '../lambda/adapters/sts-http';
import { createApp } from '../lambda/app';
import { ConfigError, loadConfig } from '../lambda/config';
import { createRuntime } from '../lambda/runtime';
import { DssssError } from '../lambda/core/errors';
import { recordStateChange } from '../lambda/instance-events';
import type { StsGateway } from '../lambda/ports';
import { MemoryBookkeeping } from './core/fakes';
import { errorOf, localFixture, type Fixture } from './helpers';

const stateChange = (instance: string, state: string, time: string) => ({
  source: 'aws.ec2',
  'detail-type': 'EC2 Instance State-change Notification',
  account: '111122223333',
  time,
  detail: { 'instance-id': instance, state },
});
const scope = { account: '111122223333', nowMs: Date.parse('2026-12-01T12:00:00Z') };

const SERVER_ID = 'dssss-test';
const credentials = async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' });

/** What the stand-in STS answers next, and what it was sent. */
const sts = {
  status: 200,
  arn: 'arn:aws:sts::111122223333:assumed-role/worker/ecs-task-1',
  account: '111122223333',
  received: [] as { url: string; headers: Record<string, string | string[] | undefined>; body: string }[],
  errorCode: 'SignatureDoesNotMatch',
};

let server: Server;
let endpoint: string;
let f: Fixture;
/** The server's own STS gateway, counted: a refused request must never reach it, whatever host it names. */
const forwarded = { count: 0 };
const gateway = new HttpStsGateway();
const countedSts: StsGateway = {
  getCallerIdentity: (request) => {
    forwarded.count++;
    return gateway.getCallerIdentity(request);
  },
};

function answer(): string {
  if (sts.status !== 200) {
    return `<ErrorResponse><Error><Type>Sender</Type><Code>${sts.errorCode}</Code><Message>no</Message></Error></ErrorResponse>`;
  }
  return `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>
    <Arn>${sts.arn}</Arn><UserId>AROAEXAMPLE:ecs-task-1</UserId><Account>${sts.account}</Account>
  </GetCallerIdentityResult></GetCallerIdentityResponse>`;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      sts.received.push({ url: req.url ?? '', headers: req.headers, body });
      res.writeHead(sts.status, { 'Content-Type': 'text/xml' }).end(answer());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  f = await localFixture({ AWS_ENDPOINT_URL_STS: endpoint, DSSSS_SERVER_ID: SERVER_ID, DSSSS_ALLOWED_ACCOUNTS: '111122223333' }, { sts: countedSts });
});

afterAll(() => {
  server.close();
});

beforeEach(() => {
  Object.assign(sts, { status: 200, errorCode: 'SignatureDoesNotMatch', arn: 'arn:aws:sts::111122223333:assumed-role/worker/ecs-task-1', account: '111122223333' });
  sts.received = [];
  forwarded.count = 0;
});

async function body(serverId = SERVER_ID): Promise<IamLoginBody> {
  return signGetCallerIdentity(serverId, { AWS_ENDPOINT_URL_STS: endpoint }, credentials);
}

const login = (payload: unknown) => f.request('POST', '/v1/auth/iam', { body: payload });

describe('POST /v1/auth/iam', () => {
  it('instance role credentials (a session named i-...) meet the EC2 defences: running instance, same role, nonce (finding 1)', async () => {
    const nonceFixture = await localFixture({ AWS_ENDPOINT_URL_STS: endpoint, DSSSS_SERVER_ID: SERVER_ID, DSSSS_ALLOWED_ACCOUNTS: '111122223333', DSSSS_NONCE_MODE: 'required' });
    const iamLogin = (payload: unknown, headers: Record<string, string> = {}) => nonceFixture.request('POST', '/v1/auth/iam', { body: payload, headers });
    const instance = 'i-0aaaaaaaaaaaaaaa1';
    sts.arn = `arn:aws:sts::111122223333:assumed-role/webapp/${instance}`;
    // Not a registered (running) instance: refused, as its EC2 login would be.
    expect((await errorOf(await iamLogin(await body()))).status).toBe(401);
    // Running, but as another role: refused.
    await nonceFixture.registry.register(instance, '111122223333', 'other');
    expect((await errorOf(await iamLogin(await body()))).status).toBe(401);
    await nonceFixture.registry.register(instance, '111122223333', 'webapp');
    // required: no nonce, no login, by either path.
    expect(await errorOf(await iamLogin(await body()))).toMatchObject({ status: 401, message: expect.stringMatching(/X-Dssss-Nonce/) });
    const nonce = 'n'.repeat(24);
    expect((await iamLogin(await body(), { 'X-Dssss-Nonce': nonce })).status).toBe(200);
    // The binding made over IAM holds for the identity document too, and the other way round.
    expect((await iamLogin(await body(), { 'X-Dssss-Nonce': 'm'.repeat(24) })).status).toBe(401);
    const ec2 = await nonceFixture.request('GET', '/v1/auth', { headers: { Authentication: nonceFixture.document(instance), 'X-Dssss-Nonce': 'm'.repeat(24) } });
    expect(ec2.status).toBe(401);
    // An ECS task's session (not an instance id) is not affected.
    sts.arn = 'arn:aws:sts::111122223333:assumed-role/worker/ecs-task-1';
    expect((await iamLogin(await body())).status).toBe(200);
  });

  it('with a bookkeeping table: instance role credentials are refused once EC2 reports the instance stopped or terminated; EC2 is asked only to bind', async () => {
    const bookkeeping = new MemoryBookkeeping();
    const resolveRole = vi.fn(async () => ({ role: 'webapp' }));
    const tabled = await localFixture(
      { AWS_ENDPOINT_URL_STS: endpoint, DSSSS_SERVER_ID: SERVER_ID, DSSSS_ALLOWED_ACCOUNTS: '111122223333', DSSSS_NONCE_MODE: 'required' },
      { bookkeeping, roles: { resolveRole } },
    );
    const instance = 'i-0bbbbbbbbbbbbbbb2';
    sts.arn = `arn:aws:sts::111122223333:assumed-role/webapp/${instance}`;
    const nonce = { 'X-Dssss-Nonce': 'n'.repeat(24) };
    // Not reported yet (a fresh launch): let in; the nonce is still required, and binds in the table.
    expect(await errorOf(await tabled.request('POST', '/v1/auth/iam', { body: await body() }))).toMatchObject({ status: 401, message: expect.stringMatching(/X-Dssss-Nonce/) });
    expect((await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: nonce })).status).toBe(200);
    expect([...bookkeeping.values.keys()]).toEqual([`nonce-${instance}`]);
    await recordStateChange(stateChange(instance, 'running', '2026-12-01T10:00:00Z'), bookkeeping, scope);
    expect((await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: nonce })).status).toBe(200);
    // Terminated: its credentials still verify at STS for hours, but not here.
    await recordStateChange(stateChange(instance, 'terminated', '2026-12-01T11:00:00Z'), bookkeeping, scope);
    expect(await errorOf(await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: nonce }))).toMatchObject({ status: 401, message: 'instance is not running' });
    expect(tabled.audit.at(-1)).toMatchObject({ reason: 'instance_not_running' });
    // A late report of an earlier state does not undo the termination.
    await recordStateChange(stateChange(instance, 'running', '2026-12-01T10:30:00Z'), bookkeeping, scope);
    expect((await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: nonce })).status).toBe(401);
    // EC2 was asked once: to prove the session's role was the instance's before binding its nonce.
    expect(resolveRole).toHaveBeenCalledTimes(1);
  });

  it("refuses to bind an instance's nonce for a session of another role or account named after it (pre-binding locks the instance out)", async () => {
    const bookkeeping = new MemoryBookkeeping();
    const victim = 'i-0ccccccccccccccc3';
    // EC2's answer: the instance runs as webapp in 111122223333; any other account does not have it.
    const resolveRole = vi.fn(async (identity: { instanceId: string; accountId: string }) => {
      if (identity.accountId !== '111122223333') throw new DssssError('invalid_credentials', 'instance not found in this account and Region', undefined, { reason: 'unknown_instance' });
      return { role: 'webapp' };
    });
    const tabled = await localFixture(
      { AWS_ENDPOINT_URL_STS: endpoint, DSSSS_SERVER_ID: SERVER_ID, DSSSS_ALLOWED_ACCOUNTS: '111122223333,444455556666' },
      { bookkeeping, roles: { resolveRole } },
    );
    const attackerNonce = { 'X-Dssss-Nonce': 'a'.repeat(24) };
    for (const [account, role] of [['111122223333', 'intruder'], ['444455556666', 'webapp']]) {
      Object.assign(sts, { arn: `arn:aws:sts::${account}:assumed-role/${role}/${victim}`, account });
      const refused = await errorOf(await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: attackerNonce }));
      expect(refused.status, `${account}:${role}`).toBe(401);
      expect(bookkeeping.values.size, `${account}:${role} bound nothing`).toBe(0);
    }
    // The instance's own role binds its own nonce, and logs in with it from then on.
    Object.assign(sts, { arn: `arn:aws:sts::111122223333:assumed-role/webapp/${victim}`, account: '111122223333' });
    const own = { 'X-Dssss-Nonce': 'o'.repeat(24) };
    expect((await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: own })).status).toBe(200);
    expect((await tabled.request('POST', '/v1/auth/iam', { body: await body(), headers: own })).status).toBe(200);
  });

  it('forwards the signed request to STS and issues a token for the role in the answer', async () => {
    const response = await login(await body());
    expect(response.status).toBe(200);
    const { token, role, expiresAt } = (await response.json()) as { token: string; role: string; expiresAt: string };
    expect(role).toBe('worker');
    expect(response.headers.get('Reauthentication')).toBe(token);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());

    expect(sts.received).toHaveLength(1);
    expect(sts.received[0]!.body).toBe('Action=GetCallerIdentity&Version=2011-06-15');
    expect(sts.received[0]!.headers['x-dssss-server-id']).toBe(SERVER_ID);
    expect(sts.received[0]!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 /);

    // The token works like any other: the worker reads a secret scoped to it, and only that.
    const admin = await f.login('dssssadmin');
    await f.request('PUT', '/v1/secret/app/queue', { token: admin, body: { Secret: 'amqp://q', Roles: ['worker'] } });
    await f.request('PUT', '/v1/secret/app/db', { token: admin, body: { Secret: 'hunter2', Roles: ['web'] } });
    expect(await (await f.request('GET', '/v1/secret/app/queue', { token })).json()).toMatchObject({ secret: 'amqp://q' });
    expect((await f.request('GET', '/v1/secret/app/db', { token })).status).toBe(404);
  });

  it('returns the bare token with Accept: text/plain', async () => {
    const response = await f.request('POST', '/v1/auth/iam', { body: await body(), headers: { Accept: 'text/plain' } });
    expect(await response.text()).toMatch(/^dssss\.v2\./);
  });

  it.each([
    ['a foreign host', (b: IamLoginBody) => ({ ...b, url: 'https://attacker.example.com/' })],
    ['the IMDS address', (b: IamLoginBody) => ({ ...b, url: 'http://169.254.169.254/latest/meta-data/' })],
    ['http to a real STS host', (b: IamLoginBody) => ({ ...b, url: 'http://sts.amazonaws.com/' })],
    ['another action', (b: IamLoginBody) => ({ ...b, body: Buffer.from('Action=AssumeRole&Version=2011-06-15').toString('base64') })],
    ['another method', (b: IamLoginBody) => ({ ...b, method: 'GET' })],
    ['no server-id header', (b: IamLoginBody) => ({ ...b, headers: Object.fromEntries(Object.entries(b.headers).filter(([k]) => k !== 'x-dssss-server-id')) })],
  ])('refuses %s with 400, and sends nothing', async (_, tamper) => {
    const response = await login(tamper(await body()));
    expect(await errorOf(response)).toMatchObject({ status: 400, code: 'bad_request' });
    expect(sts.received).toHaveLength(0);
    expect(forwarded.count).toBe(0);
  });

  it('refuses a request signed for another server with 400, and sends nothing', async () => {
    expect(await errorOf(await login(await body('another-service')))).toMatchObject({ status: 400 });
    expect(forwarded.count).toBe(0);
  });

  it('refuses malformed JSON and an oversize body without sending anything', async () => {
    expect((await login('{')).status).toBe(400);
    expect((await login('x'.repeat(20_000))).status).toBe(413);
    expect(forwarded.count).toBe(0);
  });

  it('refuses an IAM user and an account that is not allowed with 401', async () => {
    sts.arn = 'arn:aws:iam::111122223333:user/alice';
    expect(await errorOf(await login(await body()))).toMatchObject({ status: 401, code: 'invalid_credentials' });
    Object.assign(sts, { arn: 'arn:aws:sts::999999999999:assumed-role/worker/s', account: '999999999999' });
    expect(await errorOf(await login(await body()))).toMatchObject({ status: 401, message: expect.stringMatching(/account/) });
  });

  it('maps STS refusing the signature to 401, throttling to 429 and failure to 503 with Retry-After', async () => {
    sts.status = 403;
    expect(await errorOf(await login(await body()))).toMatchObject({ status: 401, message: expect.stringContaining('SignatureDoesNotMatch') });
    Object.assign(sts, { status: 400, errorCode: 'Throttling' });
    const throttled = await login(await body());
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('Retry-After')).not.toBeNull();
    Object.assign(sts, { status: 500, errorCode: 'InternalFailure' });
    const failed = await login(await body());
    expect(failed.status).toBe(503);
    expect(failed.headers.get('Retry-After')).not.toBeNull();
  });

  it('answers 503 when STS cannot be reached', async () => {
    const down = await localFixture({ AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9', DSSSS_SERVER_ID: SERVER_ID, DSSSS_ALLOWED_ACCOUNTS: '111122223333' });
    const payload = await signGetCallerIdentity(SERVER_ID, { AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9' }, credentials);
    expect(await errorOf(await down.request('POST', '/v1/auth/iam', { body: payload }))).toMatchObject({ status: 503 });
  });

  it('never echoes the signed request in an error', async () => {
    const response = await login({ ...(await body()), url: 'https://evil.example.com/' });
    expect(await response.text()).not.toMatch(/Signature=|AKIDEXAMPLE|evil/);
  });

  it('is off (404) in local mode without allowed accounts: any AWS account could log in as any role', async () => {
    const open = await localFixture({ AWS_ENDPOINT_URL_STS: endpoint }, { sts: countedSts });
    expect(await errorOf(await open.request('POST', '/v1/auth/iam', { body: await body('dssss-local') }))).toMatchObject({ status: 404 });
    expect(forwarded.count).toBe(0);
  });

  it('is off (404) on AWS backends without DSSSS_SERVER_ID', async () => {
    const config = loadConfig({ DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*', DSSSS_KMS_KEY_ID: 'alias/k', DSSSS_ALLOWED_ACCOUNTS: '111122223333', AWS_REGION: 'us-east-1' });
    expect(config.iamLogin).toBeUndefined();
    const app = createApp(await createRuntime(config, { sts: countedSts }));
    expect(await errorOf(await app.request('/v1/auth/iam', { method: 'POST', body: JSON.stringify(await body()) }))).toMatchObject({ status: 404 });
    expect(forwarded.count).toBe(0);
  });
});

describe('IAM login configuration', () => {
  const aws = { DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*', DSSSS_KMS_KEY_ID: 'alias/k', DSSSS_ALLOWED_ACCOUNTS: '111122223333' };

  it('is on in local mode only with allowed accounts (server id dssss-local), and on AWS only with DSSSS_SERVER_ID', () => {
    expect(loadConfig({}).iamLogin).toBeUndefined();
    expect(loadConfig({ DSSSS_ALLOWED_ACCOUNTS: '111122223333' }).iamLogin).toMatchObject({ serverId: 'dssss-local', partition: 'aws', iamUsers: [] });
    expect(loadConfig({ ...aws, DSSSS_SERVER_ID: 'prod' }).iamLogin).toMatchObject({ serverId: 'prod' });
  });

  it('takes the partition from the Region unless DSSSS_PARTITION says otherwise', () => {
    const local = { DSSSS_ALLOWED_ACCOUNTS: '111122223333' };
    expect(loadConfig({ ...local, AWS_REGION: 'cn-north-1' }).iamLogin?.partition).toBe('aws-cn');
    expect(loadConfig({ ...local, AWS_REGION: 'us-gov-west-1' }).iamLogin?.partition).toBe('aws-us-gov');
    expect(loadConfig({ ...local, AWS_REGION: 'eu-west-1', DSSSS_PARTITION: 'aws-cn' }).iamLogin?.partition).toBe('aws-cn');
  });

  it('refuses a bad partition, server id, IAM user list or STS endpoint', () => {
    const local = { DSSSS_ALLOWED_ACCOUNTS: '111122223333' };
    expect(() => loadConfig({ ...local, DSSSS_PARTITION: 'mars' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...local, DSSSS_SERVER_ID: 'has space' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...local, DSSSS_IAM_USERS: 'ok,not ok' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...local, AWS_ENDPOINT_URL_STS: 'not a url' })).toThrow(ConfigError);
  });
});
