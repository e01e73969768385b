// Exit codes a script can rely on, and the one error type the CLI reports.

export const EXIT = Object.freeze({
  ok: 0,
  /** Anything else: a 409, a network failure, an unexpected answer. */
  error: 1,
  /** Bad usage, or input the server refused as malformed (400, 413). */
  usage: 2,
  /** Could not authenticate: no credentials, or the server refused them (401). */
  auth: 3,
  /** Authenticated, but not allowed (403). */
  forbidden: 4,
  /** No such secret (404). */
  notFound: 5,
  /** The server or a dependency is throttled or down (429, 503): retry later. */
  unavailable: 6,
});

export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function exitCodeForStatus(status: number): number {
  if (status === 400 || status === 413) return EXIT.usage;
  if (status === 401) return EXIT.auth;
  if (status === 403) return EXIT.forbidden;
  if (status === 404) return EXIT.notFound;
  if (status === 429 || status === 503) return EXIT.unavailable;
  return EXIT.error;
}
