// AWS SDK failures as domain errors. The SDK has already retried throttles with jittered
// backoff by the time an error reaches here, so what is left is the client's to retry.

import { DssssError } from '../core/errors';

const THROTTLES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyUpdates',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
]);

export function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** `what` names the dependency for the message, e.g. "Parameter Store". */
export function dependencyError(err: unknown, what: string): DssssError {
  if (err instanceof DssssError) return err;
  const name = errorName(err);
  if (name !== undefined && THROTTLES.has(name)) {
    return new DssssError('rate_limited', `${what} is throttling requests; retry later`, 2);
  }
  return new DssssError('unavailable', `${what} request failed${name ? ` (${name})` : ''}; retry later`, 1);
}
