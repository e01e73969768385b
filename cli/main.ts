// `dssss` command dispatch. Exit codes: see cli/errors.ts (and the README).

import { COMMANDS, runCommand, type Io } from './commands';
import { dev } from './dev';
import { ConfigError } from '../lambda/config';
import { DssssError } from '../lambda/core/errors';
import { CliError, EXIT, exitCodeForStatus } from './errors';

const USAGE = `usage: dssss COMMAND [--url URL] [--server-id ID] [--method ec2|iam] [--retry-for SECONDS] ...
  dssss login                          log in (EC2 identity document, or IAM) and cache the token
  dssss get NAME [--version N]         print a secret's value (or an older version's)
  dssss put NAME --roles a,b [--value-file F]   store the value read from stdin (or F)
  dssss ls [PREFIX] [--deleted]        list the names you may read (--deleted: soft-deleted ones; distinguished roles)
  dssss history NAME                   every kept version: number, time, operation, writer, roles
  dssss revert NAME N                  write version N's value and roles again, as a new version
  dssss rm NAME                        delete a secret, keeping its versions (distinguished roles)
  dssss restore NAME                   bring a deleted secret back (distinguished roles)
  dssss rm --purge NAME [--yes]        destroy every version for good (distinguished roles)
  dssss exec --prefix P [--only A,B] -- CMD ARGS...  run CMD with the secrets under P as environment variables (only A and B)
  dssss export --prefix P [--format dotenv|json] [--output F]   what you may read, values in the clear
  dssss import F --roles a,b [--prefix P] [--format dotenv|json] [--rate N]   create or update each secret in F
  dssss admin seal-keys | rotate-seal-key | retire-seal-key ID | rewrap [--rate N] | backup [--output F] | restore-backup F [--rate N]
  dssss admin import-dssss [--prefix P] [--roles a,b]   bring the secrets of an original (Go) dssss over
  dssss dev register --instance-id ID --account ACCOUNT --role ROLE
  dssss dev identity --role ROLE [--account ACCOUNT] [--region REGION]
The server is --url or DSSSS_URL; the token is cached in DSSSS_TOKEN_FILE (default ~/.dssss/token.json).
429, 502-504 and connection failures are retried for --retry-for or DSSSS_RETRY_FOR seconds (default 60).`;

export async function main(argv: string[], io: Io = { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'dev') return await dev(rest);
    if ((COMMANDS as readonly string[]).includes(command ?? '')) return await runCommand(command as (typeof COMMANDS)[number], rest, io);
    io.stderr.write(`${USAGE}\n`);
    return command === undefined || command === 'help' || command === '--help' ? EXIT.ok : EXIT.usage;
  } catch (err) {
    // Only messages written for people; anything else could quote what it choked on.
    const told = err instanceof CliError || err instanceof DssssError || err instanceof ConfigError;
    io.stderr.write(`dssss: ${told ? err.message : `unexpected error (${err instanceof Error ? err.name : typeof err})`}\n`);
    if (err instanceof CliError) return err.exitCode;
    if (err instanceof DssssError) return exitCodeForStatus(err.status);
    return err instanceof ConfigError ? EXIT.usage : EXIT.error;
  }
}
