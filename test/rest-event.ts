// An API Gateway REST API (proxy integration) event, as Lambda hands it to the handler: for
// the handler tests and the cold-start benchmark.

export function restEvent(method: string, path: string, headers: Record<string, string> = {}, body: string | null = null) {
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      httpMethod: method,
      path: `/prod${path}`,
      stage: 'prod',
      requestId: 'req-1',
      resourcePath: '/{proxy+}',
      identity: { sourceIp: '10.0.0.1' },
    },
    body,
    isBase64Encoded: false,
  };
}
