// How every AWS SDK client of the function behaves, in one place: retries and deadlines.

/**
 * Throttles are retried with jittered backoff; each attempt has a deadline, so a hung call
 * fails in time (throwOnRequestTimeout: without it the SDK only logs a warning). Worst case
 * per call: 3 attempts of 2 s; a cold PUT makes four calls, within the function's 29 s.
 */
export const AWS_CLIENT_OPTIONS = {
  maxAttempts: 3,
  requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
} as const;
