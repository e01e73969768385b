// AWS Lambda entry (API Gateway REST API, proxy integration): the same app as the local server.

import { handle } from 'hono/aws-lambda';
import { createApp, type RequestContext } from './app';
import { loadConfig } from './config';
import { createAuditSink, createRuntime } from './runtime';

const config = loadConfig();
const ready = Promise.all([createRuntime(config), createAuditSink(config), metricsFor()]).then(([runtime, audit, metrics]) => {
  const app = createApp(runtime, { audit, metrics: metrics?.(runtime) });
  type LambdaEnv = { event?: { path?: unknown; requestContext?: { requestId?: unknown } } };
  // The app learns of the event only what RequestContext says: the raw path and the request id.
  const shell = {
    fetch: (request: Request, env: LambdaEnv) => {
      const context: RequestContext = {
        rawPath: typeof env.event?.path === 'string' ? env.event.path : undefined,
        requestId: typeof env.event?.requestContext?.requestId === 'string' ? env.event.requestContext.requestId : undefined,
      };
      return app.fetch(request, { request: context });
    },
  };
  return handle(shell as unknown as typeof app);
});

async function metricsFor() {
  if (config.metrics === 'off') return undefined;
  const { emfRecorder } = await import('./adapters/emf');
  return (runtime: Awaited<ReturnType<typeof createRuntime>>) => emfRecorder(config.deployment, runtime.cacheCounts, runtime.eventFailures);
}

export const handler = async (event: Parameters<Awaited<typeof ready>>[0]) => (await ready)(event);
