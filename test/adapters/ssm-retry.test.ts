// Throttling against a real SSM client (retry middleware included), served by a stand-in
// for Parameter Store on loopback: retried with backoff, then a 429 the client can act on.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SsmSecretStore } from '../../lambda/adapters/ssm-store';

let server: Server;
let endpoint: string;
let throttles = 0;
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      if (throttles > 0) {
        throttles--;
        res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ Parameter: { Name: '/dssss/secrets/x', Value: 'record', Version: 7 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => server.close());

function store() {
  const client = new SSMClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 3,
  });
  return new SsmSecretStore(client, '/dssss/');
}

describe('Parameter Store throttling', () => {
  it('is retried by the client: two throttles, then the read succeeds', async () => {
    requests = 0;
    throttles = 2;
    expect(await store().latest('x')).toEqual({ record: 'record', seq: 7 });
    expect(requests).toBe(3);
  });

  it('becomes a 429 with Retry-After once the attempts are spent', async () => {
    requests = 0;
    throttles = 10;
    await expect(store().latest('x')).rejects.toMatchObject({ code: 'rate_limited', status: 429, retryAfter: expect.any(Number) });
    expect(requests).toBe(3);
  });
});
