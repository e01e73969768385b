// CloudWatch metrics in Embedded Metric Format: one JSON line per request on stdout, which
// Lambda ships to CloudWatch Logs and CloudWatch turns into metrics, with no API call and
// nothing to flush. A few lines rather than Powertools' metrics utility: the format is
// small and fixed, and the utility would add its logger and dependencies to the bundle.

import type { RequestMetrics } from '../app';
import { DIMENSION, METRIC, METRICS_NAMESPACE } from '../metrics';

type Line = Record<string, unknown>;

/** The metrics of one request; `write` defaults to stdout. */
export function emfRecorder(
  deployment: string,
  cache?: { hits: number; misses: number },
  events?: { count: number },
  write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
) {
  let seen = { hits: 0, misses: 0 };
  let eventFailuresSeen = 0;
  return (request: RequestMetrics): void => {
    const values: Record<string, number> = { [METRIC.requests]: 1, [METRIC.latency]: request.latencyMs };
    const sets: string[][] = [[DIMENSION.deployment], [DIMENSION.deployment, DIMENSION.operation, DIMENSION.outcome]];
    const dims: Line = { [DIMENSION.deployment]: deployment, [DIMENSION.operation]: request.operation, [DIMENSION.outcome]: request.outcome };
    if (request.status >= 500) values[METRIC.serverErrors] = 1;
    if (request.status === 401 || request.status === 403) {
      values[METRIC.refusals] = 1;
      dims[DIMENSION.code] = request.code ?? 'unknown';
      sets.push([DIMENSION.deployment, DIMENSION.code]);
      if (request.reason !== undefined) {
        dims[DIMENSION.reason] = request.reason;
        sets.push([DIMENSION.deployment, DIMENSION.reason]);
      }
    }
    if (request.operation === 'login' || request.operation === 'login_iam') {
      values[METRIC.logins] = 1;
      dims[DIMENSION.method] = request.operation === 'login' ? 'ec2' : 'iam';
      sets.push([DIMENSION.deployment, DIMENSION.method, DIMENSION.outcome]);
    }
    // Refused logins, also those made with a document on a secret route.
    if (request.status === 401 && (values[METRIC.logins] === 1 || request.auth === 'ec2' || request.auth === 'iam')) values[METRIC.loginFailures] = 1;
    if (request.service !== undefined && (request.status === 429 || request.status >= 500)) {
      values[request.status === 429 ? METRIC.dependencyThrottles : METRIC.dependencyFailures] = 1;
      dims[DIMENSION.service] = request.service;
      sets.push([DIMENSION.deployment, DIMENSION.service]);
    }
    if (events && events.count > eventFailuresSeen) {
      values[METRIC.eventPublishFailures] = events.count - eventFailuresSeen;
      eventFailuresSeen = events.count;
    }
    if (cache) {
      values[METRIC.cacheHits] = cache.hits - seen.hits;
      values[METRIC.cacheMisses] = cache.misses - seen.misses;
      seen = { ...cache };
    }
    const line: Line = {
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [
          {
            Namespace: METRICS_NAMESPACE,
            Dimensions: sets,
            Metrics: Object.keys(values).map((name) => ({ Name: name, Unit: name === METRIC.latency ? 'Milliseconds' : 'Count' })),
          },
        ],
      },
      ...dims,
      ...values,
    };
    write(JSON.stringify(line));
  };
}
