// AWS Lambda entry (API Gateway REST API, proxy integration): the same app as the local server.

import { createLambdaHandler } from './aws-lambda';
import { loadConfig } from './config';

export const handler = createLambdaHandler(loadConfig());
