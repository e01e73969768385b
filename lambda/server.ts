// Local HTTP entry: `npm start` serves the API on local backends, like `vault server -dev`.

import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { getRequestListener } from '@hono/node-server';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
import { createAuditSink, createRuntime } from './runtime';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string' } },
    strict: true,
  });
  const config = loadConfig();
  const port = values.port === undefined ? config.port : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('--port must be 0 to 65535');
  const host = values.host ?? '127.0.0.1';
  const app = createApp(await createRuntime(config), { audit: await createAuditSink(config) });

  // Requests Node parses but the adapter cannot turn into a Request (a bad Host header, a
  // raw non-ASCII path) still get the JSON error model.
  // The app learns of the Node request only what RequestContext says: the raw path.
  const listener = getRequestListener((request, env: { incoming: { url?: string } }) => app.fetch(request, { request: { rawPath: env.incoming.url } }), {
    hostname: host,
    errorHandler: () => Response.json(errorBody('bad_request', 'malformed request'), { status: 400 }),
  });
  // HTTP/1.0 clients and bare tools send no Host: serve them rather than answer outside the error model.
  const server = createServer({ requireHostHeader: false }, listener);
  // What Node's HTTP parser refuses, and CONNECT, are answered here, in JSON too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    rawReply(socket, tooLarge ? 431 : 400, tooLarge ? 'too_large' : 'bad_request', tooLarge ? 'request headers too large' : 'malformed request');
  });
  server.on('connect', (_req, socket: Socket) => rawReply(socket, 405, 'method_not_allowed', 'CONNECT is not supported'));
  server.on('checkExpectation', (_req, res: ServerResponse) => {
    res.writeHead(417, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(errorBody('bad_request', 'only Expect: 100-continue is supported')));
  });

  server.listen(port, host, () => {
    const info = server.address() as AddressInfo;
    const url = `http://${info.family === 'IPv6' ? `[${info.address}]` : info.address}:${info.port}`;
    if (config.backend === 'local') {
      console.log(`dssss local server listening on ${url}  (data: ${config.dataDir})`);
      console.log(`audit log: ${auditDestination(config.auditLog)}`);
      console.log(`next: curl -H "Authentication: $(npx dssss dev identity --role web)" ${url}/v1/auth`);
    } else {
      console.log(`dssss server listening on ${url}  (AWS backends, parameters under ${config.parameterPrefix})`);
      console.log(`audit log: ${auditDestination(config.auditLog)}`);
      console.log(`next: curl ${url}/v1/health`);
    }
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function rawReply(socket: Socket, status: number, code: string, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(code, message));
  const reason = status === 431 ? 'Request Header Fields Too Large' : status === 405 ? 'Method Not Allowed' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}

function auditDestination(log: Config['auditLog']): string {
  return typeof log === 'string' ? log : log.file;
}

main().catch((err: unknown) => {
  console.error(`dssss: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
