// Local HTTP entry: `npm start` serves the API on local backends, like `vault server -dev`.

import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
import { createAuditSink, createService } from './runtime';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string' } },
    strict: true,
  });
  const port = Number(values.port ?? process.env.PORT ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('--port must be 0 to 65535');
  const host = values.host ?? '127.0.0.1';
  const config = loadConfig();
  const app = createApp(await createService(config), await createAuditSink(config));

  const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
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

function auditDestination(log: Config['auditLog']): string {
  return typeof log === 'string' ? log : log.file;
}

main().catch((err: unknown) => {
  console.error(`dssss: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
