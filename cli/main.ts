// `dssss` command dispatch, help and error reporting. Exit codes: cli/errors.ts (and the README).

import { DssssError } from '../lambda/core/errors';
import { COMMON_HELP, type Io } from './args';
import { COMMANDS, findCommand } from './commands/index';
import { CliError, DssssClientError, EXIT, exitCodeFor } from './errors';
import { VERSION } from './version';

export type { Io } from './args';

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: dssss COMMAND [OPTIONS]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    COMMON_HELP,
    'dssss help COMMAND: its options. dssss --version: the version.',
    'Exit codes: 0 done, 1 error, 2 usage or malformed input, 3 cannot authenticate, 4 forbidden, 5 not found, 6 unavailable (retry later).',
  ].join('\n');
}

function commandHelp(name: string): string | undefined {
  const command = findCommand(name);
  if (command === undefined) return undefined;
  return [
    ...command.usage.split('\n').map((line, i) => `${i === 0 ? 'usage: ' : '       '}${line}`),
    '',
    command.summary,
    ...(command.details ? ['', command.details] : []),
    ...(command.remote === false ? [] : ['', COMMON_HELP]),
  ].join('\n');
}

export async function main(argv: string[], io: Io = { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h') {
      io.stdout.write(`${usage()}\n`);
      return EXIT.ok;
    }
    if (name === '--version' || name === '-V' || name === 'version') {
      io.stdout.write(`dssss ${VERSION}\n`);
      return EXIT.ok;
    }
    if (name === 'help') {
      if (rest.length === 0) {
        io.stdout.write(`${usage()}\n`);
        return EXIT.ok;
      }
      const help = commandHelp(rest[0]!);
      if (help === undefined) throw new CliError(EXIT.usage, `unknown command ${JSON.stringify(rest[0]!.slice(0, 40))}: dssss help lists them`);
      io.stdout.write(`${help}\n`);
      return EXIT.ok;
    }
    const command = findCommand(name);
    if (command === undefined) throw new CliError(EXIT.usage, `unknown command ${JSON.stringify(name.slice(0, 40))}: dssss help lists them`);
    const dash = rest.indexOf('--');
    const own = dash < 0 ? rest : rest.slice(0, dash);
    if (own.includes('--help') || own.includes('-h')) {
      io.stdout.write(`${commandHelp(name)}\n`);
      return EXIT.ok;
    }
    return await command.run(rest, io);
  } catch (err) {
    return report(err, io);
  }
}

/** One line on stderr, and the exit code. Only messages written for people: anything else could quote what it choked on. */
function report(err: unknown, io: Io): number {
  if (err instanceof DssssClientError) {
    io.stderr.write(`dssss: ${err.message} (${err.code})\n`);
    return exitCodeFor(err.code);
  }
  if (err instanceof CliError) {
    io.stderr.write(`dssss: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof DssssError) {
    io.stderr.write(`dssss: ${err.message} (${err.code})\n`);
    return exitCodeFor(err.code === 'internal' ? 'bad_response' : err.code);
  }
  io.stderr.write(`dssss: unexpected error (${err instanceof Error ? err.name : typeof err})\n`);
  return EXIT.error;
}
