// How every AWS client of the function behaves, in one place: retries, deadlines, and the
// per-call work the SDK may skip. The SDK clients take awsClientOptions(); the EC2 and IAM
// query clients (aws-query.ts) take the same numbers from here.

import { StandardRetryStrategy } from '@smithy/core/retry';
import type { RetryErrorInfo, StandardRetryToken } from '@smithy/types';

/** Attempts per call for network errors, timeouts and 5xx. */
export const MAX_ATTEMPTS = 3;

/** Deadlines of one attempt: to connect, and for the whole answer. */
export const CONNECTION_TIMEOUT_MS = 1000;
export const REQUEST_TIMEOUT_MS = 2000;

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
 *
 * cacheMiddleware: the SDK resolves a command's middleware stack once per command class
 * instead of on every call (about a fifth of the SDK's own cost per call: the benchmark's
 * aws suite measures both). Nothing here changes a client's middleware after its first call,
 * which is what the cache would miss. Keep-alive needs no setting: the SDK's HTTP handler
 * keeps connections open by default.
 */
export function awsClientOptions() {
  return {
    maxAttempts: MAX_ATTEMPTS,
    retryStrategy: new ThrottlesToCallerRetryStrategy(),
    cacheMiddleware: true,
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
  };
}
