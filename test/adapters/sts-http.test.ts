// The STS gateway against misbehaving loopback servers: a hang, a redirect, an answer it
// cannot read. Each is a clear 503, and nothing is followed anywhere.

import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HttpStsGateway } from '../../lambda/adapters/sts-http';

async function withServer(listener: RequestListener, run: (url: string) => Promise<void>): Promise<void> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

const request = (url: string) => ({ url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=GetCallerIdentity&Version=2011-06-15' });

describe('HttpStsGateway', () => {
  it('gives up on a hanging STS after its timeout with 503', async () => {
    await withServer(
      () => undefined, // never answers
      async (url) => {
        await expect(new HttpStsGateway(200).getCallerIdentity(request(url))).rejects.toMatchObject({ code: 'unavailable', status: 503 });
      },
    );
  });

  it('does not follow a redirect', async () => {
    let followed = 0;
    await withServer(
      () => followed++,
      async (elsewhere) => {
        await withServer(
          (_req, res) => res.writeHead(307, { Location: elsewhere }).end(),
          async (url) => {
            await expect(new HttpStsGateway(1000).getCallerIdentity(request(url))).rejects.toMatchObject({ status: 503 });
          },
        );
      },
    );
    expect(followed).toBe(0);
  });

  it('refuses an answer without an ARN and account, and one that is not XML', async () => {
    for (const body of ['<GetCallerIdentityResponse/>', 'not xml <<<', '']) {
      await withServer(
        (_req, res) => res.end(body),
        async (url) => {
          await expect(new HttpStsGateway(1000).getCallerIdentity(request(url))).rejects.toMatchObject({ code: 'unavailable' });
        },
      );
    }
  });
});
