// `dssss login|get|put|ls|rm|exec`: the common jobs, one line each.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LOCAL_SERVER_ID } from '../lambda/config';
import { DssssClient, defaultTokenFile, secretPath, type LoginMethod } from './client';
import { CliError, EXIT } from './errors';

type Env = Readonly<Record<string, string | undefined>>;

export interface Io {
  readonly env: Env;
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON = {
  url: { type: 'string' },
  'server-id': { type: 'string' },
  method: { type: 'string' },
} as const satisfies Options;

export const COMMANDS = ['login', 'get', 'put', 'ls', 'rm', 'exec'] as const;

export async function runCommand(command: (typeof COMMANDS)[number], args: string[], io: Io): Promise<number> {
  switch (command) {
    case 'login': {
      const { client } = parse(args, {}, io);
      const login = await client.login();
      io.stderr.write(`logged in as role ${login.role} (${login.method}) until ${login.expiresAt}\n`);
      return EXIT.ok;
    }
    case 'get': {
      const { client, positionals } = parse(args, {}, io, 1);
      const response = await client.request('GET', secretPath(positionals[0]!), { accept: 'text/plain' });
      if (!response.ok) await client.expectOk(response, 'get');
      io.stdout.write(await response.text());
      return EXIT.ok;
    }
    case 'put': {
      const { client, positionals, values } = parse(args, { roles: { type: 'string' }, 'value-file': { type: 'string' } }, io, 1);
      const roles = typeof values.roles === 'string' ? values.roles.split(',').map((r) => r.trim()).filter(Boolean) : [];
      if (roles.length === 0) throw new CliError(EXIT.usage, 'put needs --roles role[,role...]');
      // Never from argv: a value there would sit in shell history and in every process listing.
      const value = typeof values['value-file'] === 'string' ? await readValueFile(values['value-file']) : await readAll(io.stdin);
      const response = await client.request('PUT', secretPath(positionals[0]!), { body: JSON.stringify({ Secret: value, Roles: roles }) });
      const { name, version } = (await client.expectOk(response, 'put')) as { name: string; version: number };
      io.stderr.write(`stored ${name} version ${version}\n`);
      return EXIT.ok;
    }
    case 'ls': {
      const { client, positionals } = parse(args, {}, io, 0, 1);
      for (const name of await listAll(client, positionals[0] ?? '')) io.stdout.write(`${name}\n`);
      return EXIT.ok;
    }
    case 'rm': {
      const { client, positionals } = parse(args, {}, io, 1);
      await client.expectOk(await client.request('DELETE', secretPath(positionals[0]!)), 'rm');
      return EXIT.ok;
    }
    case 'exec':
      return exec(args, io);
  }
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

function parse(args: string[], options: Options, io: Io, minPositionals = 0, maxPositionals = minPositionals) {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true }));
  } catch (err) {
    throw new CliError(EXIT.usage, (err as Error).message);
  }
  if (positionals.length < minPositionals || positionals.length > maxPositionals) {
    throw new CliError(EXIT.usage, minPositionals === 1 ? 'give one secret name' : 'too many arguments');
  }
  const url = (values.url as string | undefined) ?? io.env.DSSSS_URL;
  if (!url) throw new CliError(EXIT.usage, 'no server: give --url or set DSSSS_URL');
  const method = (values.method as string | undefined) ?? undefined;
  if (method !== undefined && method !== 'ec2' && method !== 'iam') throw new CliError(EXIT.usage, '--method: ec2 or iam');
  const client = new DssssClient({
    url,
    serverId: (values['server-id'] as string | undefined) ?? io.env.DSSSS_SERVER_ID ?? LOCAL_SERVER_ID,
    method: method as LoginMethod | undefined,
    tokenFile: defaultTokenFile(io.env),
    env: io.env,
  });
  return { client, positionals, values };
}

async function listAll(client: DssssClient, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let next: string | undefined;
  do {
    const query = new URLSearchParams({ prefix, ...(next === undefined ? {} : { next }) });
    const page = (await client.expectOk(await client.request('GET', `/v1/secrets?${query}`), 'ls')) as { names: string[]; next?: string };
    names.push(...page.names);
    next = page.next;
  } while (next !== undefined);
  return names;
}

/** `dssss exec --prefix app/ -- CMD ARGS...`: the secrets under the prefix as environment variables. */
async function exec(args: string[], io: Io): Promise<number> {
  const dash = args.indexOf('--');
  if (dash < 0 || dash === args.length - 1) throw new CliError(EXIT.usage, 'usage: dssss exec --prefix PREFIX -- COMMAND [ARGS...]');
  const { client, values } = parse(args.slice(0, dash), { prefix: { type: 'string' } }, io);
  // Whole segments: --prefix billing must not pick up billingpath.
  const given = typeof values.prefix === 'string' ? values.prefix : '';
  const prefix = given === '' || given.endsWith('/') ? given : `${given}/`;
  const [command, ...commandArgs] = args.slice(dash + 1) as [string, ...string[]];

  const variables = new Map<string, string>();
  for (const name of await listAll(client, prefix)) {
    const variable = environmentName(name, prefix);
    // Whoever may create a name under the prefix must not get to steer the command: no
    // overriding what the environment already holds, nothing that loads code or moves PATH.
    if (variable in io.env || PROTECTED_VARIABLES.test(variable)) {
      throw new CliError(EXIT.error, `${name} would set ${variable}, which dssss exec does not override`);
    }
    const earlier = variables.get(variable);
    if (earlier !== undefined) throw new CliError(EXIT.error, `${earlier} and ${name} both map to ${variable}`);
    variables.set(variable, name);
  }
  const env: Record<string, string | undefined> = { ...io.env };
  for (const [variable, name] of variables) {
    const response = await client.request('GET', secretPath(name), { accept: 'text/plain' });
    if (!response.ok) await client.expectOk(response, `get ${name}`);
    const value = await response.text();
    if (value.includes('\0')) throw new CliError(EXIT.error, `${name} holds a NUL byte, which no environment variable can`);
    env[variable] = value;
  }

  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', (err: NodeJS.ErrnoException) => {
      io.stderr.write(`dssss: cannot run ${command}: ${err.code ?? err.message}\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15));
    });
  });
}

/** Variables that decide what runs or how: loaders, interpreters' options, paths, credentials, dssss itself. */
const PROTECTED_VARIABLES =
  /^(PATH|HOME|USER|SHELL|IFS|ENV|BASH_ENV|BASH_FUNC_.*|CDPATH|PS4|PROMPT_COMMAND|TMPDIR|TZ|LANG|LC_.*|NODE_.*|LD_.*|DYLD_.*|PYTHON.*|PERL.*|RUBY.*|GEM_.*|BUNDLE_.*|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS|CLASSPATH|GIT_.*|SSL_CERT_.*|CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE|HTTPS?_PROXY|ALL_PROXY|NO_PROXY|AWS_.*|DSSSS_.*|ECS_.*)$/;

/** `app/db-password` under `app/` -> `DB_PASSWORD`; `app/tls/cert.pem` -> `TLS_CERT_PEM`. */
export function environmentName(name: string, prefix: string): string {
  const rest = name.slice(prefix.length).replace(/^\/+/, '');
  const snake = rest.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').toUpperCase();
  if (snake === '') throw new CliError(EXIT.error, `${name} gives no variable name under prefix ${prefix}`);
  return /^[0-9]/.test(snake) ? `_${snake}` : snake;
}

async function readValueFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.usage, `cannot read --value-file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
