// What every command shares: its io (environment and streams, never process.env), option
// parsing with one-line errors, and the client it talks through.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DssssClient } from './client';
import { CliError, EXIT } from './errors';
import { parseRetryFor } from './retry';
import { defaultTokenFile, FileTokenStore } from './token-store';
import { readFile } from 'node:fs/promises';

type Env = Readonly<Record<string, string | undefined>>;

export interface Io {
  readonly env: Env;
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Where relative paths and the data-dir search start (default: the process's). */
  readonly cwd?: string | undefined;
}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** The options every command that talks to a server takes. */
export const COMMON = {
  url: { type: 'string' },
  'server-id': { type: 'string' },
  method: { type: 'string' },
  'retry-for': { type: 'string' },
} as const satisfies Options;

export const COMMON_HELP = `Common options: --url URL (or DSSSS_URL), --server-id ID (or DSSSS_SERVER_ID), --method ec2|iam, --retry-for SECONDS (or DSSSS_RETRY_FOR, default 60)`;

/** Parses `args` strictly: an unknown option or a missing value is one line and exit 2. */
export function parseOptions(command: string, args: string[], options: Options, positionals: [number, number]): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] };
  } catch (err) {
    throw new CliError(EXIT.usage, `${command}: ${parseArgsMessage(err)} (see dssss help ${command.split(" ")[0]})`);
  }
  const [min, max] = positionals;
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    const what = parsed.positionals.length > max ? `unexpected argument ${JSON.stringify(parsed.positionals[max]!.slice(0, 40))}` : 'missing argument';
    throw new CliError(EXIT.usage, `${command}: ${what} (see dssss help ${command.split(" ")[0]})`);
  }
  return parsed;
}

function parseArgsMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const quoted = /'(-[^' ]*)/.exec(e.message ?? '')?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return quoted !== undefined && /argument missing/.test(e.message ?? '') ? `${quoted} needs a value` : `${quoted ?? 'an option'}: invalid value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return 'unexpected argument';
    default:
      return 'cannot read the options';
  }
}

/** The client a command talks through: the token cached in the 0600 token file, retries within --retry-for. */
export function clientFor(values: Values, io: Io, extra: { document?: () => Promise<string> } = {}): DssssClient {
  const url = (values.url as string | undefined) ?? io.env.DSSSS_URL;
  if (!url) throw new CliError(EXIT.usage, 'no server: give --url or set DSSSS_URL');
  const method = values.method as string | undefined;
  if (method !== undefined && method !== 'ec2' && method !== 'iam') throw new CliError(EXIT.usage, '--method: ec2 or iam');
  const retryFor = parseRetryFor((values['retry-for'] as string | undefined) ?? io.env.DSSSS_RETRY_FOR);
  if (Number.isNaN(retryFor)) throw new CliError(EXIT.usage, '--retry-for (or DSSSS_RETRY_FOR): a number of seconds, 0 or more');
  return new DssssClient({
    url,
    env: io.env,
    serverId: (values['server-id'] as string | undefined) ?? undefined,
    method: method as 'ec2' | 'iam' | undefined,
    tokenStore: new FileTokenStore(defaultTokenFile(io.env)),
    ...(retryFor === undefined ? {} : { retryForMs: retryFor * 1000 }),
    // One command, one read of each value: nothing to cache between commands.
    cacheTtlMs: 0,
    onWarning: (message) => io.stderr.write(`dssss: warning: ${message}\n`),
    ...(extra.document ? { document: extra.document } : {}),
  });
}

export function roleList(given: unknown): string[] {
  return typeof given === 'string' ? given.split(',').map((r) => r.trim()).filter(Boolean) : [];
}

export function versionNumber(given: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(given)) throw new CliError(EXIT.usage, 'a version is a positive whole number');
  return Number(given);
}

/** `--rate N`: writes a second, more than 0 (default 3, PutParameter's quota). */
export function writeRate(given: unknown): number {
  if (given === undefined) return 3;
  const rate = Number(given);
  if (!Number.isFinite(rate) || rate <= 0) throw new CliError(EXIT.usage, '--rate: writes a second, more than 0');
  return rate;
}

/** `--interval S`: seconds, more than 0. */
export function intervalSeconds(given: unknown, fallback: number): number {
  if (given === undefined) return fallback;
  const seconds = Number(given);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError(EXIT.usage, '--interval: seconds, more than 0');
  return seconds;
}

export async function readValueFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.usage, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export async function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const end = text.indexOf('\n');
    if (end >= 0) return text.slice(0, end);
  }
  return text;
}

/** One `dssss` command: its help and its run. */
export interface Command {
  readonly name: string;
  /** Usage lines, each starting with `dssss`. */
  readonly usage: string;
  /** One line for the command list. */
  readonly summary: string;
  /** More for `dssss help COMMAND`. */
  readonly details?: string;
  /** Takes the server options (--url, ...): false for dev commands. */
  readonly remote?: false;
  run(args: string[], io: Io): Promise<number>;
}

export function isTerminal(stream: NodeJS.ReadableStream | NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}
