// AWS Lambda entry (API Gateway REST API, proxy integration): the same app as the local server.

import { handle } from 'hono/aws-lambda';
import { createApp } from './app';
import { loadConfig } from './config';
import { createService } from './runtime';

const ready = createService(loadConfig()).then((service) => handle(createApp(service)));

export const handler = async (event: Parameters<Awaited<typeof ready>>[0]) => (await ready)(event);
