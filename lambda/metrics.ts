// The metrics contract: names and dimensions the function emits (Embedded Metric Format on
// stdout) and the stack's alarms and dashboard read. One home, so neither side can drift.

export const METRICS_NAMESPACE = 'dssss';

export const METRIC = Object.freeze({
  /** Every request; dimension sets [Deployment] and [Deployment, Operation, Outcome]. */
  requests: 'Requests',
  /** 5xx answers; [Deployment]. */
  serverErrors: 'ServerErrors',
  /** Logins; [Deployment, Method, Outcome]. */
  logins: 'Logins',
  /** Logins answered 401; [Deployment]. */
  loginFailures: 'LoginFailures',
  /** Every 401 and 403; [Deployment], [Deployment, Code] and, when there is one, [Deployment, Reason]. */
  refusals: 'Refusals',
  /** A dependency throttled us; [Deployment] and [Deployment, Service]. */
  dependencyThrottles: 'DependencyThrottles',
  /** A dependency failed otherwise; [Deployment] and [Deployment, Service]. */
  dependencyFailures: 'DependencyFailures',
  cacheHits: 'CacheHits',
  cacheMisses: 'CacheMisses',
  /** Milliseconds in the app; [Deployment] and [Deployment, Operation]. */
  latency: 'Latency',
  eventPublishFailures: 'EventPublishFailures',
});

export const DIMENSION = Object.freeze({
  deployment: 'Deployment',
  operation: 'Operation',
  outcome: 'Outcome',
  method: 'Method',
  code: 'Code',
  reason: 'Reason',
  service: 'Service',
});

export type DependencyService = 'ssm' | 'kms' | 'ec2' | 'iam' | 'sts' | 'dynamodb' | 'events';
