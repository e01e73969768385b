// In-process, warm, on the local backends: each operation called back to back in this
// process, no sockets, after a warm-up. HTTP-shaped operations go through the hono app's
// fetch, as both the Lambda handler and the local server hand requests to it.

import { readFile } from 'node:fs/promises';
import { awsTrustStore } from '../lambda/identity/certs';
import { signIdentityDocument } from '../lambda/identity/dev-ca';
import { verifyIdentityDocument } from '../lambda/identity/pkcs7';
import { ACCOUNT, localFixture } from './local-fixture';
import { summarize, timeLoop, type LoopOptions, type Summary } from './measure';

export interface LatencyFigure extends Summary {
  readonly id: string;
  readonly operation: string;
  /** What was called: the layer the figure covers. */
  readonly layer: string;
  readonly machine: string;
}

/** The genuine AWS `pkcs7` sample the tests verify too: us-east-1, 2016, DSA/SHA-1. */
const GENUINE_DSA_DOCUMENT = new URL('../test/fixtures/us-east-1-2016.pkcs7.b64', import.meta.url);

export const LIST_SIZE = 1000;

const FAST: LoopOptions = { warmup: 2000, iterations: 20_000, maxSeconds: 3 };
const SLOW: LoopOptions = { warmup: 20, iterations: 2000, maxSeconds: 4 };

export async function runInProcess(machine: string, log: (line: string) => void): Promise<LatencyFigure[]> {
  const fixture = await localFixture('inprocess');
  try {
    const figures: LatencyFigure[] = [];
    const measure = async (id: string, operation: string, layer: string, options: LoopOptions, fn: () => unknown) => {
      const summary = summarize(await timeLoop(fn, options));
      figures.push({ id, operation, layer, machine, ...summary });
      log(`  ${operation}: p50 ${summary.p50Us.toFixed(1)} us, p99 ${summary.p99Us.toFixed(1)} us, ${Math.round(summary.opsPerSec)} ops/s (${summary.iterations} calls)`);
    };
    const expectStatus = async (response: Response, status: number, what: string) => {
      if (response.status !== status) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    };

    const writer = await fixture.login('web');
    await fixture.put(writer, 'bench/get', 'hunter2', ['web', 'worker']);
    await fixture.put(writer, 'bench/put', 'v0', ['web']);

    await measure('token', 'Token validation', 'SecretService.authenticateToken', FAST, () => fixture.service.authenticateToken(writer));

    const getHeaders = { Reauthentication: writer };
    await measure('get', 'GET a secret, with a token', 'app.fetch: GET /v1/secret/bench/get', FAST, async () =>
      expectStatus(await fixture.request('GET', '/v1/secret/bench/get', getHeaders), 200, 'GET'),
    );

    // Overwrites of one name: the local store writes the file atomically and fsyncs it.
    const putBody = JSON.stringify({ Secret: 'a new value for the secret', Roles: ['web'] });
    await measure('put', 'PUT a secret (overwrite)', 'app.fetch: PUT /v1/secret/bench/put (file store, fsync)', SLOW, async () =>
      expectStatus(await fixture.request('PUT', '/v1/secret/bench/put', getHeaders, putBody), 200, 'PUT'),
    );

    // 1,000 names the reader may read: every record is opened to check its roles.
    log(`  (storing ${LIST_SIZE} secrets for LIST)`);
    const names = Array.from({ length: LIST_SIZE }, (_, i) => `list/item-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((name) => fixture.put(writer, name, `value ${name}`, ['web'])));
    }
    const reader = await fixture.login('web');
    await measure(
      'list',
      `LIST ${LIST_SIZE.toLocaleString('en-US')} names (10 pages of 100)`,
      'app.fetch: GET /v1/secrets?prefix=list/&limit=100, following next',
      { warmup: 5, iterations: 300, maxSeconds: 5 },
      async () => {
        let next: string | undefined;
        let count = 0;
        do {
          const query = `prefix=list/&limit=100${next === undefined ? '' : `&next=${encodeURIComponent(next)}`}`;
          const response = await fixture.request('GET', `/v1/secrets?${query}`, { Reauthentication: reader });
          if (response.status !== 200) throw new Error(`LIST answered ${response.status}`);
          const page = (await response.json()) as { names: string[]; next?: string };
          count += page.names.length;
          next = page.next;
        } while (next !== undefined);
        if (count !== LIST_SIZE) throw new Error(`LIST returned ${count} names, expected ${LIST_SIZE}`);
      },
    );

    const aws = awsTrustStore();
    const genuine = (await readFile(GENUINE_DSA_DOCUMENT, 'utf8')).trim();
    await measure('pkcs7-dsa', 'PKCS#7 verification, DSA (genuine AWS document)', 'verifyIdentityDocument, bundled AWS certificates', SLOW, () =>
      verifyIdentityDocument(genuine, aws),
    );

    const withDevCa = awsTrustStore([fixture.ca.certPem]);
    const rsa = signIdentityDocument({ instanceId: 'i-0123456789abcdef0', accountId: ACCOUNT, region: 'us-east-1' }, fixture.ca);
    await measure('pkcs7-rsa', 'PKCS#7 verification, RSA-2048 (dev-CA-signed document)', 'verifyIdentityDocument, AWS certificates + dev CA', SLOW, () =>
      verifyIdentityDocument(rsa, withDevCa),
    );

    const loginDocument = await fixture.identity('web');
    await measure('login', 'Login with an RSA-2048 document', 'app.fetch: GET /v1/auth (verify, registry file, token)', SLOW, async () =>
      expectStatus(await fixture.request('GET', '/v1/auth', { Authentication: loginDocument }), 200, 'login'),
    );
    return figures;
  } finally {
    await fixture.dispose();
  }
}
