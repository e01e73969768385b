// How every AWS SDK client of the function behaves, in one place: retries and deadlines.

import { StandardRetryStrategy } from '@smithy/core/retry';
import type { RetryErrorInfo, StandardRetryToken } from '@smithy/types';

/** Attempts per call for network errors, timeouts and 5xx. */
export const MAX_ATTEMPTS = 3;

/**
 * The SDK's standard retries, but a throttle is not retried here: it goes back to the caller
 * at once as a 429 with a spread Retry-After (aws-errors.ts), and the client waits it out
 * with jittered backoff. Retried in the function, a throttled call holds its container for
 * seconds while a booting fleet keeps arriving: Lambda starts more containers, each with a
 * cold read cache that spends more of the same quota, and the throttling feeds itself.
 */
export class ThrottlesToCallerRetryStrategy extends StandardRetryStrategy {
  constructor() {
    super(MAX_ATTEMPTS);
  }

  override refreshRetryTokenForRetry(token: StandardRetryToken, errorInfo: RetryErrorInfo): Promise<StandardRetryToken> {
    if (errorInfo.errorType === 'THROTTLING') return Promise.reject(new Error('throttled: left to the caller'));
    return super.refreshRetryTokenForRetry(token, errorInfo);
  }
}

/**
 * One client's options (each client its own retry capacity). Every attempt has a deadline,
 * so a hung call fails in time (throwOnRequestTimeout: without it the SDK only logs a
 * warning). Worst case per call: 3 attempts of 2 s; a cold PUT makes four calls, within the
 * function's 29 s.
 */
export function awsClientOptions() {
  return {
    maxAttempts: MAX_ATTEMPTS,
    retryStrategy: new ThrottlesToCallerRetryStrategy(),
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  };
}
