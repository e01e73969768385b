// AWS SDK failures as domain errors. The SDK has already retried throttles with jittered
// backoff by the time an error reaches here, so what is left is the client's to retry,
// unless it is the deployment's own configuration (credentials, permissions, the KMS key):
// that is `misconfigured`, not "retry later". The cause (service and AWS error name) rides
// along for the operational log and metrics, never to the client.

import { DssssError } from '../core/errors';
import type { DependencyService } from '../metrics';

const THROTTLES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyUpdates',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
]);

const MISCONFIGURED = new Set([
  'CredentialsProviderError',
  'AccessDeniedException',
  'AccessDenied',
  'UnauthorizedOperation',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredTokenException',
  'NotFoundException', // KMS: no such key
  'DisabledException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
]);

export function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** `what` names the dependency for the message, e.g. "Parameter Store"; `service` for metrics. */
export function dependencyError(err: unknown, what: string, service: DependencyService = serviceOf(what)): DssssError {
  if (err instanceof DssssError) return err;
  const name = errorName(err);
  const detail = { service, ...(name === undefined ? {} : { awsCode: name }) };
  if (name !== undefined && THROTTLES.has(name)) {
    // Spread the retries of a whole fleet: 1 to 4 s.
    return new DssssError('rate_limited', `${what} is throttling requests; retry later`, 1 + Math.floor(Math.random() * 4), detail);
  }
  if (name !== undefined && MISCONFIGURED.has(name)) {
    return new DssssError('misconfigured', `the server cannot use ${what} (${name}): its configuration or permissions are wrong`, 60, detail);
  }
  return new DssssError('unavailable', `${what} request failed${name ? ` (${name})` : ''}; retry later`, 1, detail);
}

function serviceOf(what: string): DependencyService {
  const known: Record<string, DependencyService> = { 'Parameter Store': 'ssm', KMS: 'kms', EC2: 'ec2', IAM: 'iam', STS: 'sts', DynamoDB: 'dynamodb', EventBridge: 'events' };
  return known[what] ?? 'ssm';
}
