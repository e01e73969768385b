// Domain errors: a stable code for programs, a message for people, and the one map
// from code to HTTP status. Messages never carry secret material.

export type ErrorCode =
  | 'bad_request'
  | 'invalid_name'
  | 'unauthenticated'
  | 'invalid_credentials'
  | 'token_expired'
  | 'forbidden'
  | 'not_found'
  | 'deleted'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'misconfigured'
  | 'unknown_role'
  | 'integrity'
  | 'method_not_allowed'
  | 'internal';

export const STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  bad_request: 400,
  invalid_name: 400,
  unauthenticated: 401,
  invalid_credentials: 401,
  token_expired: 401,
  forbidden: 403,
  not_found: 404,
  /** Soft-deleted: restore or purge it (distinguished roles). */
  deleted: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  /** The server's own configuration is wrong (credentials, KMS key, permissions): not worth a retry. */
  misconfigured: 503,
  /** A role named in a secret's roles does not exist in the deployment's account. */
  unknown_role: 400,
  // A stored record that fails to open: the store was altered outside dssss.
  integrity: 503,
  method_not_allowed: 405,
  internal: 500,
});

/** Why an error happened, in terms safe to log: names and codes, never values. */
export interface ErrorDetail {
  /** The dependency, e.g. "ssm". */
  readonly service?: string;
  /** The AWS error name or code, e.g. "AccessDeniedException". */
  readonly awsCode?: string;
  /** A finer reason than the code, e.g. "not_a_reader" behind a 404. */
  readonly reason?: string;
}

export class DssssError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds a client should wait before retrying (429 and 503). */
    readonly retryAfter?: number,
    /** For the operational log and metrics only, never sent: what failed underneath. */
    readonly detail?: ErrorDetail,
  ) {
    super(message);
    this.name = 'DssssError';
  }

  get status(): number {
    return STATUS[this.code];
  }
}

export const badRequest = (message: string) => new DssssError('bad_request', message);
/**
 * A login refused. `reason` (audit log, metrics) tells an operator attack from
 * misconfiguration: see the README's "RefusedLoginSpike" runbook for the list.
 */
export const invalidCredentials = (message: string, reason = 'bad_credentials') =>
  new DssssError('invalid_credentials', message, undefined, { reason });
export const forbidden = (message: string) => new DssssError('forbidden', message);
export const notFound = (message: string) => new DssssError('not_found', message);
export const conflict = (message: string) => new DssssError('conflict', message);
export const tooLarge = (message: string) => new DssssError('too_large', message);
export const unavailable = (message: string, retryAfter = 1) =>
  new DssssError('unavailable', message, retryAfter);

/**
 * Any thrown value as a domain error. A failed local file or network call is a dependency
 * failure (503); anything else is a bug (500), reported without its message, which might
 * quote input.
 */
export function toDssssError(err: unknown): DssssError {
  if (err instanceof DssssError) return err;
  // The client's own connection broke off mid-request (every outbound call is wrapped by
  // its adapter): the client's doing, not a failure of ours.
  if (isClientAbort(err)) return new DssssError('bad_request', 'the request was broken off');
  if (isSystemError(err)) return new DssssError('unavailable', 'a storage operation failed; try again', 1);
  return new DssssError('internal', 'internal error');
}

function isClientAbort(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return err instanceof Error && (err as NodeJS.ErrnoException).syscall === undefined && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE');
}

function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
