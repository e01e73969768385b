// The app as a Lambda function behind an API Gateway REST API (proxy integration): one
// composition root per container. handler.ts builds the one a real container runs; the fleet
// simulation builds many, one per simulated container.

import { handle } from 'hono/aws-lambda';
import { createApp, type RequestContext } from './app';
import type { Config } from './config';
import { createAuditSink, createRuntime, type Overrides, type Runtime } from './runtime';

/** What API Gateway hands the function, as far as this shell reads it. */
export type LambdaEvent = Parameters<ReturnType<typeof handle>>[0];
export type LambdaResult = Awaited<ReturnType<ReturnType<typeof handle>>>;
export type LambdaHandler = (event: LambdaEvent) => Promise<LambdaResult>;

/** Starts building the container's runtime now (in Lambda's init phase) and serves events once it is ready. */
export function createLambdaHandler(config: Config, overrides: Overrides = {}): LambdaHandler {
  const ready = Promise.all([createRuntime(config, overrides), createAuditSink(config), metricsFor(config)]).then(([runtime, audit, metrics]) => {
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
  return async (event) => (await ready)(event);
}

async function metricsFor(config: Config) {
  if (config.metrics === 'off') return undefined;
  const { emfRecorder } = await import('./adapters/emf');
  return (runtime: Runtime) => emfRecorder(config.deployment, runtime.cacheCounts, runtime.eventFailures);
}
