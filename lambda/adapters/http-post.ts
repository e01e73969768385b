// One POST over node:http(s) with a keep-alive agent, a deadline to connect and one for the
// whole answer, and a cap on its size: the transport of the EC2/IAM query clients and of the
// STS gateway. Not fetch: its first call in a process loads undici's client, about 25 ms of
// a cold IAM login; node:http is already loaded. Redirects are never followed.

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface PostOptions {
  readonly connectionTimeoutMs: number;
  /** From the request's start to the answer's last byte. */
  readonly requestTimeoutMs: number;
  readonly maxResponseBytes: number;
  /** Names the service in errors: "EC2 answered more than ...". */
  readonly what: string;
}

/** Keep-alive agents, one pair per client (the SDK's defaults: up to 50 sockets). */
export class KeepAliveAgents {
  readonly http = new HttpAgent({ keepAlive: true, maxSockets: 50 });
  readonly https = new HttpsAgent({ keepAlive: true, maxSockets: 50 });

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** A failed POST: `name` TimeoutError (code ETIMEDOUT) or ResponseTooLarge; a socket's own errors pass through. */
export class PostError extends Error {
  constructor(name: 'TimeoutError' | 'ResponseTooLarge', message: string, readonly code?: string) {
    super(message);
    this.name = name;
  }
}

export function post(url: URL, headers: Readonly<Record<string, string>>, body: string, agents: KeepAliveAgents, options: PostOptions): Promise<{ status: number; text: string }> {
  const https = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    let settled = false;
    let connectionTimer: NodeJS.Timeout | undefined;
    const finish = (err: Error | undefined, value?: { status: number; text: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(requestTimer);
      clearTimeout(connectionTimer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    const timeout = (what: string, ms: number) => finish(new PostError('TimeoutError', `${options.what}: ${what} within ${ms} ms`, 'ETIMEDOUT'));
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxResponseBytes) finish(new PostError('ResponseTooLarge', `${options.what} answered more than ${options.maxResponseBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish(err));
    };
    const request = {
      method: 'POST',
      host: url.hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      agent: https ? agents.https : agents.http,
    };
    const req = https ? httpsRequest(request, onResponse) : httpRequest(request, onResponse);
    const requestTimer = setTimeout(() => timeout('no answer', options.requestTimeoutMs), options.requestTimeoutMs);
    req.on('socket', (socket) => {
      // A kept-alive socket is already connected.
      if (socket.connecting) {
        connectionTimer = setTimeout(() => timeout('no connection', options.connectionTimeoutMs), options.connectionTimeoutMs);
        socket.once('connect', () => clearTimeout(connectionTimer));
      }
    });
    req.on('error', (err) => finish(err));
    req.end(body);
  });
}
