// AWS Lambda entry (API Gateway REST API, proxy integration): the same app as the local server.

import { handle } from 'hono/aws-lambda';
import { createApp } from './app';
import { loadConfig } from './config';
import { createAuditSink, createService } from './runtime';

const config = loadConfig();
const ready = Promise.all([createService(config), createAuditSink(config)]).then(([service, audit]) => handle(createApp(service, audit)));

export const handler = async (event: Parameters<Awaited<typeof ready>>[0]) => (await ready)(event);
