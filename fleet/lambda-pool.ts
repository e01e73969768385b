// Lambda and API Gateway as a fleet boot meets them, in one process: independent containers,
// each with its own composition root (lambda/aws-lambda.ts, as a real container builds it),
// its own SDK clients and caches, each serving one request at a time; a new container, which
// pays its cold start, only when every container is busy, up to a concurrency cap. API
// Gateway in front turns HTTP requests into REST proxy events and answers 429 when Lambda
// refuses to scale further, and 504 past its 29 s integration limit.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLambdaHandler, type LambdaEvent, type LambdaHandler, type LambdaResult } from '../lambda/aws-lambda';
import type { Config } from '../lambda/config';
import type { Overrides } from '../lambda/runtime';

export interface PoolOptions {
  /** Every container's configuration (one function, one environment). */
  readonly config: Config;
  /** Lambda's concurrency limit for the function (the account's is 1,000 by default). */
  readonly concurrencyCap: number;
  /**
   * What a new container spends before its handler runs: starting the runtime and loading the
   * bundle, which one process that has every module loaded already does not pay. Its own
   * composition root (seal key from Parameter Store, KMS Decrypt) is real and comes on top.
   */
  readonly coldStartMs: number;
  /** Simulated seconds per real second: the pool's own waits (the cold start) are divided by it. */
  readonly compression: number;
  /** What every container's composition root replaces (the simulation's clock). */
  readonly overrides?: Overrides;
}

interface Container {
  readonly handler: Promise<LambdaHandler>;
}

export interface PoolStats {
  /** Containers started, i.e. cold starts. */
  readonly containers: number;
  readonly invocations: number;
  /** Requests refused because every container was busy at the cap. */
  readonly throttled: number;
  /** The most containers busy at once. */
  readonly peakConcurrency: number;
  readonly timedOut: number;
  /** Invocations by method and route: "GET /v1/secrets", "POST /v1/auth/iam", ... */
  readonly routes: Readonly<Record<string, number>>;
}

export class LambdaPool {
  private readonly containers: Container[] = [];
  private readonly idle: Container[] = [];
  private busy = 0;
  private counts = { invocations: 0, throttled: 0, peakConcurrency: 0, timedOut: 0 };
  private readonly routes: Record<string, number> = {};

  constructor(private readonly options: PoolOptions) {}

  /** One invocation (`route` names it in the stats), on an idle container or a new one; undefined when Lambda would throttle. */
  async invoke(event: LambdaEvent, route: string): Promise<LambdaResult | undefined> {
    this.routes[route] = (this.routes[route] ?? 0) + 1;
    let container = this.idle.pop();
    if (container === undefined) {
      if (this.containers.length >= this.options.concurrencyCap) {
        this.counts.throttled++;
        return undefined;
      }
      container = this.start();
    }
    this.busy++;
    this.counts.invocations++;
    this.counts.peakConcurrency = Math.max(this.counts.peakConcurrency, this.busy);
    try {
      return await (await container.handler)(event);
    } finally {
      this.busy--;
      this.idle.push(container);
    }
  }

  stats(): PoolStats {
    return { containers: this.containers.length, ...this.counts, routes: { ...this.routes } };
  }

  timedOut(): void {
    this.counts.timedOut++;
  }

  private start(): Container {
    const wait = this.options.coldStartMs / this.options.compression;
    const handler = new Promise<void>((resolve) => setTimeout(resolve, wait)).then(() => createLambdaHandler(this.options.config, this.options.overrides));
    const container: Container = { handler };
    this.containers.push(container);
    return container;
  }
}

export interface ApiGateway {
  /** http://127.0.0.1:PORT: the API's URL for the clients. */
  readonly url: string;
  close(): Promise<void>;
}

/** API Gateway (REST API, proxy integration) on 127.0.0.1, in front of the pool. */
export async function serveApiGateway(pool: LambdaPool, integrationTimeoutMs: number): Promise<ApiGateway> {
  const server: Server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void proxy(pool, req, Buffer.concat(chunks), integrationTimeoutMs).then((result) => reply(res, result));
    });
  });
  server.maxConnections = 20_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const gatewayError = (statusCode: number, message: string): LambdaResult => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ message }),
  isBase64Encoded: false,
});

async function proxy(pool: LambdaPool, req: IncomingMessage, body: Buffer, timeoutMs: number): Promise<LambdaResult> {
  const event = restEvent(req, body);
  const path = (req.url ?? '/').split('?')[0]!;
  const route = `${req.method} ${path.startsWith('/v1/secret/') ? '/v1/secret/…' : path}`;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const result = await Promise.race([pool.invoke(event, route), timeout]);
    if (result === 'timeout') {
      pool.timedOut();
      return gatewayError(504, 'Endpoint request timed out');
    }
    // Lambda's own throttle, as API Gateway passes it on.
    return result ?? gatewayError(429, 'Too Many Requests');
  } catch {
    return gatewayError(502, 'Internal server error');
  } finally {
    clearTimeout(timer);
  }
}

function restEvent(req: IncomingMessage, body: Buffer): LambdaEvent {
  const url = new URL(req.url ?? '/', 'http://gateway');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    query[name] = value;
    (multiQuery[name] ??= []).push(value);
  }
  const hasQuery = Object.keys(query).length > 0;
  const path = (req.url ?? '/').split('?')[0]!;
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'fleet',
      httpMethod: req.method ?? 'GET',
      path: `/prod${path}`,
      stage: 'prod',
      requestId: randomUUID(),
      resourcePath: '/{proxy+}',
      identity: { sourceIp: req.socket.remoteAddress ?? '127.0.0.1' },
    },
    body: body.length === 0 ? null : body.toString('utf8'),
    isBase64Encoded: false,
  } as unknown as LambdaEvent;
}

function reply(res: ServerResponse, result: LambdaResult): void {
  const headers: Record<string, string | string[]> = {};
  const r = result as { headers?: Record<string, string>; multiValueHeaders?: Record<string, string[]> };
  for (const [name, value] of Object.entries(r.headers ?? {})) headers[name] = value;
  for (const [name, values] of Object.entries(r.multiValueHeaders ?? {})) headers[name] = values;
  const body = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body ?? '', 'utf8');
  res.writeHead(result.statusCode, { ...headers, 'content-length': String(body.length) });
  res.end(body);
}
