// The one error type of the client library, with a stable code for programs, and the exit
// codes the `dssss` command maps those codes to.

/** The server's error codes (see the README's Errors table), as the API answers them. */
export type ServerErrorCode =
  | 'bad_request'
  | 'invalid_name'
  | 'unauthenticated'
  | 'invalid_credentials'
  | 'token_expired'
  | 'unknown_role'
  | 'forbidden'
  | 'not_found'
  | 'deleted'
  | 'method_not_allowed'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'misconfigured'
  | 'integrity'
  | 'internal';

/**
 * The client's own codes: `unreachable` (no answer from the server within the retry budget),
 * `unavailable` also for a 502-504 without a dssss body, `no_credentials` (nothing to log in
 * with, or a nonce or token file refused as not this user's alone), `imds_unavailable` (IMDS did not answer, or refused), `invalid_argument` (a name,
 * URL, option or input the client refuses before sending anything), `bad_response` (an
 * answer that is not what the API sends), `aborted` (the caller's AbortSignal).
 */
export type ClientErrorCode = 'unreachable' | 'no_credentials' | 'imds_unavailable' | 'invalid_argument' | 'bad_response' | 'aborted';

export type DssssErrorCode = ServerErrorCode | ClientErrorCode;

const SERVER_CODES: ReadonlySet<string> = new Set<ServerErrorCode>([
  'bad_request', 'invalid_name', 'unauthenticated', 'invalid_credentials', 'token_expired', 'unknown_role', 'forbidden', 'not_found',
  'deleted', 'method_not_allowed', 'conflict', 'too_large', 'rate_limited', 'unavailable', 'misconfigured', 'integrity', 'internal',
]);

export function isServerErrorCode(code: string): code is ServerErrorCode {
  return SERVER_CODES.has(code);
}

/**
 * Every failure of the library. `message` is for people and never carries a secret, token,
 * key or identity document; `code` is for programs; `status` is the HTTP status when the
 * server (or something in front of it) answered.
 */
export class DssssClientError extends Error {
  override readonly name = 'DssssClientError';
  constructor(
    readonly code: DssssErrorCode,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The code for a status that came without a dssss error body (API Gateway, a proxy). */
export function codeForStatus(status: number): DssssErrorCode {
  if (status === 400) return 'bad_request';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 405) return 'method_not_allowed';
  if (status === 409) return 'conflict';
  if (status === 413) return 'too_large';
  if (status === 429) return 'rate_limited';
  if (status >= 502 && status <= 504) return 'unavailable';
  if (status >= 500) return 'internal';
  return 'bad_response';
}

// --- the `dssss` command ------------------------------------------------------------

export const EXIT = Object.freeze({
  ok: 0,
  /** Anything else: a 409, an unexpected answer, a server that is misconfigured or holds an altered record. */
  error: 1,
  /** Bad usage, or input refused as malformed (400, 413). */
  usage: 2,
  /** Could not authenticate: no credentials, IMDS refused or silent, or the server refused them (401). */
  auth: 3,
  /** Authenticated, but not allowed (403). */
  forbidden: 4,
  /** No such secret (404). */
  notFound: 5,
  /** The server or a dependency is throttled, down or unreachable (429, 502-504, 503): retry later. */
  unavailable: 6,
});

/** A failure of the command itself (usage, a refused variable): its exit code and message. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** How the command reports a library error: one table, documented in the README. */
export function exitCodeFor(code: DssssErrorCode): number {
  switch (code) {
    case 'bad_request':
    case 'invalid_name':
    case 'unknown_role':
    case 'too_large':
    case 'invalid_argument':
      return EXIT.usage;
    case 'unauthenticated':
    case 'invalid_credentials':
    case 'token_expired':
    case 'no_credentials':
    case 'imds_unavailable':
      return EXIT.auth;
    case 'forbidden':
      return EXIT.forbidden;
    case 'not_found':
    case 'deleted':
      return EXIT.notFound;
    case 'rate_limited':
    case 'unavailable':
    case 'unreachable':
      return EXIT.unavailable;
    // 503s that no retry mends: the server's setup, or a record altered outside dssss.
    case 'misconfigured':
    case 'integrity':
    default:
      return EXIT.error;
  }
}
