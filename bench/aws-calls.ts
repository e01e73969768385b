// AWS calls per operation, counted by the shared stand-in: the SSM and KMS clients' `send`
// mocked (aws-sdk-client-mock), EC2 and IAM reached over their query protocol on loopback,
// the real adapters and runtime.ts wiring above them, and each request through the app
// bracketed by a count of the calls it made.

import { signGetCallerIdentity } from '../cli/credentials';
import { awsFixture, SERVER_ID, SERVICES, type CallLog, type Service } from './aws-fixture';
import type { App } from './local-fixture';

export type CountedService = Service;

export interface CallFigure {
  readonly id: string;
  readonly operation: string;
  /** Calls per service; null when the operation could not be measured (see `note`). */
  readonly counts: Readonly<Record<CountedService, number>> | null;
  /** The calls by command name, e.g. {"GetParameter": 2, "Decrypt": 1}. */
  readonly commands: Readonly<Record<string, number>>;
  readonly note?: string;
  readonly machine: string;
}

export const LIST_NAMES = 1000;

export async function runAwsCalls(machine: string, log: (line: string) => void): Promise<CallFigure[]> {
  const aws = await awsFixture();
  // Nothing here may use fetch (STS, EC2 and IAM go to the stand-in over node:http): a fetch fails the run.
  const originalFetch = globalThis.fetch;
  globalThis.fetch = async (input) => {
    throw new Error(`the benchmark refuses a fetch to ${new URL(input instanceof Request ? input.url : String(input)).origin}`);
  };
  try {
    const figures: CallFigure[] = [];
    const snapshot = () => ({ log: aws.calls() });

    /** What `work` returned, and the AWS calls it made. */
    const callsOf = async <T>(work: () => Promise<T>) => {
      const before = snapshot();
      const result = await work();
      const after = snapshot();
      const counts: Record<CountedService, number> = countDiff(before.log, after.log);
      const commands = tally(before.log, after.log);
      return { result, counts, commands };
    };
    const record = (id: string, operation: string, calls: Pick<CallFigure, 'commands'> & { counts: Record<CountedService, number> }) => {
      figures.push({ id, operation, counts: calls.counts, commands: calls.commands, machine });
      log(`  ${operation}: ${describeCounts(calls.counts)}`);
    };
    /** One request, which must answer `status`, and the calls it made. */
    const counted = async (id: string, operation: string, request: () => Promise<Response>, status = 200): Promise<Response> => {
      const { result: response, ...calls } = await callsOf(request);
      if (response.status !== status) throw new Error(`${operation}: answered ${response.status}, expected ${status}: ${await response.clone().text()}`);
      record(id, operation, calls);
      return response;
    };
    const get = (app: App, path: string, headers: Record<string, string>) => Promise.resolve(app.request(path, { headers }));
    const send = (app: App, method: string, path: string, headers: Record<string, string>, body?: string) =>
      Promise.resolve(app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }));
    const tokenOf = async (response: Response) => ((await response.json()) as { token: string }).token;

    // Container A: the very first request of a new deployment, then warm.
    const a = await aws.container();
    const webDocument = aws.identity('web');
    const web = await tokenOf(
      await counted('login-first-deployment', 'First EC2 login, first request of a new deployment (creates the seal key)', () =>
        get(a, '/v1/auth', { Authentication: webDocument }),
      ),
    );
    const auth = { Reauthentication: web };
    const body = (value: string) => JSON.stringify({ Secret: value, Roles: ['web'] });
    await counted('put-new', 'PUT, new name', () => send(a, 'PUT', '/v1/secret/bench/db', auth, body('v1')));
    await counted('put-overwrite', 'PUT, existing name', () => send(a, 'PUT', '/v1/secret/bench/db', auth, body('v2')));
    await counted('get-warm', 'Warm GET', () => get(a, '/v1/secret/bench/db', auth));
    await counted('get-version', 'Warm GET ?version=1', () => get(a, '/v1/secret/bench/db?version=1', auth));
    await counted('login-cached', 'EC2 login, instance cached (warm container)', () => get(a, '/v1/auth', { Authentication: webDocument }));
    await counted('login-first', 'First EC2 login of an instance (warm container)', () => get(a, '/v1/auth', { Authentication: aws.identity('web') }));
    // An instance that binds its logins to a nonce (X-Dssss-Nonce, the replay defence).
    const nonceLogin = { Authentication: aws.identity('web'), 'X-Dssss-Nonce': 'bench-nonce-0123456789abcdef' };
    await counted('login-nonce-first', 'First EC2 login with a nonce (binds it; warm container)', () => get(a, '/v1/auth', nonceLogin));
    await counted('login-nonce-cached', 'EC2 login with its nonce, instance cached', () => get(a, '/v1/auth', nonceLogin));

    log(`  (storing ${LIST_NAMES} secrets for LIST)`);
    for (let i = 0; i < LIST_NAMES; i++) {
      const response = await send(a, 'PUT', `/v1/secret/list/item-${String(i).padStart(4, '0')}`, auth, body(`value ${i}`));
      if (response.status !== 200) throw new Error(`storing LIST secrets: ${response.status}`);
    }
    await counted('list-100', 'LIST, one page of 100 names', () => get(a, '/v1/secrets?prefix=list/&limit=100', auth));
    const { result: pages, ...listCalls } = await callsOf(async () => {
      let next: string | undefined;
      let names = 0;
      let pageCount = 0;
      do {
        const response = await get(a, `/v1/secrets?prefix=list/&limit=100${next === undefined ? '' : `&next=${encodeURIComponent(next)}`}`, auth);
        if (response.status !== 200) throw new Error(`LIST answered ${response.status}`);
        const page = (await response.json()) as { names: string[]; next?: string };
        names += page.names.length;
        pageCount++;
        next = page.next;
      } while (next !== undefined);
      if (names !== LIST_NAMES) throw new Error(`LIST returned ${names} names, expected ${LIST_NAMES}`);
      return pageCount;
    });
    record('list-all', `LIST ${LIST_NAMES.toLocaleString('en-US')} names (${pages} pages of 100, following next)`, listCalls);

    const admin = await tokenOf(await get(a, '/v1/auth', { Authentication: aws.identity('dssssadmin') }));
    await counted('delete', 'DELETE', () => send(a, 'DELETE', '/v1/secret/list/item-0000', { Reauthentication: admin }), 204);

    // IAM login, warm container. While the route is missing, or answers otherwise than a
    // login, the row says so instead of failing the run.
    const iamOperation = 'IAM login (POST /v1/auth/iam, warm container)';
    const { result: iam, ...iamCalls } = await callsOf(async () =>
      send(a, 'POST', '/v1/auth/iam', { 'Content-Type': 'application/json' }, await signedGetCallerIdentity(aws)),
    );
    if (iam.status === 200) {
      record('login-iam', iamOperation, iamCalls);
    } else {
      const error = ((await iam.json().catch(() => ({}))) as { error?: { code?: string; message?: string } }).error;
      const note =
        iam.status === 404 && error?.message === 'no such route'
          ? 'n/a (not built yet)'
          : `n/a (answered ${iam.status} ${error?.code ?? ''}: ${error?.message ?? ''})`;
      figures.push({ id: 'login-iam', operation: iamOperation, counts: null, commands: {}, note, machine });
      log(`  ${iamOperation}: ${note}`);
    }

    // Container B: a new container of the same deployment; its first request is a GET with a
    // token container A issued.
    const b = await aws.container();
    await counted('get-cold', 'Cold GET (first request of a container, with a token)', () => get(b, '/v1/secret/bench/db', auth));
    await counted('get-warm-after-cold', 'Warm GET (the same container, next request)', () => get(b, '/v1/secret/bench/db', auth));

    // Container C: a new container whose first request is a login.
    const c = await aws.container();
    await counted('login-cold', 'First EC2 login, cold container', () => get(c, '/v1/auth', { Authentication: aws.identity('web') }));

    // Container D: the default replay defence (nonce bindings, DSSSS_NONCE_MODE=optional)
    // looks the instance's binding up on every EC2 login; with it off, a cached login is free.
    const d = await aws.container({ DSSSS_NONCE_MODE: 'off' });
    const dDocument = aws.identity('web');
    await get(d, '/v1/auth', { Authentication: dDocument });
    await counted('login-cached-nonce-off', 'EC2 login, instance cached, DSSSS_NONCE_MODE=off', () => get(d, '/v1/auth', { Authentication: dDocument }));
    return figures;
  } finally {
    globalThis.fetch = originalFetch;
    await aws.restore();
  }
}

/** The body `dssss login --iam` posts: sts:GetCallerIdentity signed (SigV4) for this server by a session of the role web that the stand-in's STS knows. */
async function signedGetCallerIdentity(aws: Awaited<ReturnType<typeof awsFixture>>): Promise<string> {
  const session = aws.aws.assumeRole('web', 'bench-session');
  return JSON.stringify(await signGetCallerIdentity(SERVER_ID, { AWS_ENDPOINT_URL_STS: aws.url, AWS_REGION: 'us-east-1' }, async () => session));
}

function tally(before: CallLog, after: CallLog): Record<string, number> {
  const commands: Record<string, number> = {};
  for (const service of SERVICES) {
    for (const command of after[service].slice(before[service].length)) commands[command] = (commands[command] ?? 0) + 1;
  }
  return commands;
}

function countDiff(before: CallLog, after: CallLog): Record<Service, number> {
  return Object.fromEntries(SERVICES.map((service) => [service, after[service].length - before[service].length])) as Record<Service, number>;
}

export function describeCounts(counts: Readonly<Record<CountedService, number>>): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([service, n]) => `${service} ${n}`);
  return parts.length === 0 ? 'no AWS calls' : parts.join(', ');
}
