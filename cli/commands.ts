// `dssss login|get|put|ls|rm|restore|history|revert|exec|admin`: the common jobs, one line each.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LOCAL_SERVER_ID } from '../lambda/config';
import { DssssClient, defaultTokenFile, secretPath, type LoginMethod } from './client';
import { readGoDssss } from './dssss-go';
import { CliError, EXIT } from './errors';
import { DEFAULT_RETRY_FOR_SECONDS, parseRetryFor } from './retry';
import { formatExport, parseFormat, parseImport } from './transfer';
import { writeFileAtomic } from '../lambda/adapters/files';

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
  'retry-for': { type: 'string' },
} as const satisfies Options;

export const COMMANDS = ['login', 'get', 'put', 'ls', 'rm', 'restore', 'history', 'revert', 'exec', 'export', 'import', 'admin'] as const;

interface SecretAnswer {
  name: string;
  secret: string;
  version: number;
  roles: string[];
}

interface HistoryEntry {
  version: number;
  operation: string;
  deleted: boolean;
  at: string;
  by: { role: string; principal: string };
  roles: string[];
}

export async function runCommand(command: (typeof COMMANDS)[number], args: string[], io: Io): Promise<number> {
  switch (command) {
    case 'login': {
      const { client } = parse(args, {}, io);
      const login = await client.login();
      io.stderr.write(`logged in as role ${login.role} (${login.method}) until ${login.expiresAt}\n`);
      return EXIT.ok;
    }
    case 'get': {
      const { client, positionals, values } = parse(args, { version: { type: 'string' } }, io, 1);
      const version = values.version === undefined ? '' : `?version=${versionNumber(values.version as string)}`;
      const response = await client.request('GET', `${secretPath(positionals[0]!)}${version}`, { accept: 'text/plain' });
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
      const { name, version } = await putSecret(client, positionals[0]!, value, roles);
      io.stderr.write(`stored ${name} version ${version}\n`);
      return EXIT.ok;
    }
    case 'ls': {
      const { client, positionals, values } = parse(args, { deleted: { type: 'boolean' } }, io, 0, 1);
      const pages = await listAll(client, positionals[0] ?? '', { deleted: values.deleted === true });
      for (const page of pages) for (const name of page.names) io.stdout.write(`${name}\n`);
      return EXIT.ok;
    }
    case 'rm': {
      const { client, positionals, values } = parse(args, { purge: { type: 'boolean' }, yes: { type: 'boolean' } }, io, 1);
      const name = positionals[0]!;
      const path = secretPath(name);
      if (values.purge === true) {
        await confirmPurge(name, values.yes === true, io);
        await client.expectOk(await client.request('DELETE', `${path}?purge=true`), 'rm --purge');
        io.stderr.write(`destroyed every version of ${name}\n`);
      } else {
        await client.expectOk(await client.request('DELETE', path), 'rm');
        io.stderr.write(`deleted ${name} (its versions are kept: dssss restore ${name})\n`);
      }
      return EXIT.ok;
    }
    case 'restore': {
      const { client, positionals } = parse(args, {}, io, 1);
      const { name, version } = (await client.expectOk(await client.request('POST', `${secretPath(positionals[0]!)}/restore`), 'restore')) as {
        name: string;
        version: number;
      };
      io.stderr.write(`restored ${name} as version ${version}\n`);
      return EXIT.ok;
    }
    case 'history': {
      const { client, positionals } = parse(args, {}, io, 1);
      const { versions } = (await client.expectOk(await client.request('GET', `${secretPath(positionals[0]!)}/versions`), 'history')) as {
        versions: HistoryEntry[];
      };
      io.stdout.write('VERSION\tAT\tOPERATION\tBY\tROLES\n');
      for (const v of versions) {
        io.stdout.write(`${v.version}\t${v.at}\t${v.operation}\t${v.by.role}/${v.by.principal}\t${v.roles.join(',')}\n`);
      }
      return EXIT.ok;
    }
    case 'revert': {
      const { client, positionals } = parse(args, {}, io, 2);
      const [name, given] = positionals as [string, string];
      const version = versionNumber(given);
      const old = (await client.expectOk(await client.request('GET', `${secretPath(name)}?version=${version}`), 'revert')) as SecretAnswer;
      // A new version with the old value and roles, under the overwrite rule like any PUT.
      const written = await putSecret(client, name, old.secret, old.roles);
      io.stderr.write(`reverted ${written.name} to version ${version}'s value and roles, as version ${written.version}\n`);
      return EXIT.ok;
    }
    case 'exec':
      return exec(args, io);
    case 'export':
      return exportSecrets(args, io);
    case 'import':
      return importSecrets(args, io);
    case 'admin':
      return admin(args, io);
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
    throw new CliError(EXIT.usage, minPositionals === 1 && maxPositionals === 1 ? 'give one secret name' : 'wrong number of arguments');
  }
  const url = (values.url as string | undefined) ?? io.env.DSSSS_URL;
  if (!url) throw new CliError(EXIT.usage, 'no server: give --url or set DSSSS_URL');
  const method = (values.method as string | undefined) ?? undefined;
  if (method !== undefined && method !== 'ec2' && method !== 'iam') throw new CliError(EXIT.usage, '--method: ec2 or iam');
  const retryFor = parseRetryFor((values['retry-for'] as string | undefined) ?? io.env.DSSSS_RETRY_FOR);
  if (Number.isNaN(retryFor)) throw new CliError(EXIT.usage, '--retry-for (or DSSSS_RETRY_FOR): a number of seconds, 0 or more');
  const client = new DssssClient({
    url,
    serverId: (values['server-id'] as string | undefined) ?? io.env.DSSSS_SERVER_ID ?? LOCAL_SERVER_ID,
    method: method as LoginMethod | undefined,
    tokenFile: defaultTokenFile(io.env),
    env: io.env,
    warn: (message) => io.stderr.write(`dssss: warning: ${message}\n`),
    retry: { forMs: (retryFor ?? DEFAULT_RETRY_FOR_SECONDS) * 1000 },
  });
  return { client, positionals, values };
}

function versionNumber(given: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(given)) throw new CliError(EXIT.usage, 'a version is a positive whole number');
  return Number(given);
}

async function putSecret(client: DssssClient, name: string, value: string, roles: readonly string[]): Promise<{ name: string; version: number }> {
  const response = await client.request('PUT', secretPath(name), { body: JSON.stringify({ Secret: value, Roles: roles }) });
  return (await client.expectOk(response, 'put')) as { name: string; version: number };
}

/** `rm --purge` destroys every version: on a terminal the name is typed again; elsewhere --yes says so. */
async function confirmPurge(name: string, yes: boolean, io: Io): Promise<void> {
  if (yes) return;
  const terminal = (io.stdin as { isTTY?: boolean }).isTTY === true;
  if (!terminal) throw new CliError(EXIT.usage, 'rm --purge destroys every version for good: add --yes (no terminal to confirm on)');
  io.stderr.write(`This destroys every version of ${name} for good. Type the name again to confirm: `);
  const answer = await readLine(io.stdin);
  if (answer.trim() !== name) throw new CliError(EXIT.usage, 'the name did not match: nothing destroyed');
}

interface Page {
  names: string[];
  secrets?: SecretAnswer[];
  next?: string;
}

async function listAll(client: DssssClient, prefix: string, options: { values?: boolean; deleted?: boolean } = {}): Promise<Page[]> {
  const pages: Page[] = [];
  let next: string | undefined;
  do {
    const query = new URLSearchParams({
      prefix,
      ...(options.values ? { values: 'true' } : {}),
      ...(options.deleted ? { deleted: 'true' } : {}),
      ...(next === undefined ? {} : { next }),
    });
    const page = (await client.expectOk(await client.request('GET', `/v1/secrets?${query}`), 'ls')) as Page;
    pages.push(page);
    next = page.next;
  } while (next !== undefined);
  return pages;
}

const ADMIN_USAGE =
  'usage: dssss admin seal-keys | rotate-seal-key | retire-seal-key ID | rewrap [--rate N] | backup [--output F] | restore-backup F [--rate N] | import-dssss [--prefix P] [--roles a,b] [--rate N]';

/** `dssss admin ...` (distinguished roles): the seal-key ring, rewrap, backup and restore. */
async function admin(args: string[], io: Io): Promise<number> {
  const [action, ...rest] = args;
  switch (action) {
    case 'seal-keys': {
      const { client } = parse(rest, {}, io);
      io.stdout.write(`${JSON.stringify(await client.expectOk(await client.request('GET', '/v1/admin/seal-keys'), 'admin seal-keys'), null, 2)}\n`);
      return EXIT.ok;
    }
    case 'rotate-seal-key': {
      const { client } = parse(rest, {}, io);
      const key = (await client.expectOk(await client.request('POST', '/v1/admin/seal-keys'), 'admin rotate-seal-key')) as { id: string; slot: number };
      io.stderr.write(`seal key ${key.id} (slot ${key.slot}) now seals new records; run dssss admin rewrap to re-seal the older ones\n`);
      return EXIT.ok;
    }
    case 'retire-seal-key': {
      const { client, positionals } = parse(rest, {}, io, 1);
      await client.expectOk(await client.request('DELETE', `/v1/admin/seal-keys/${encodeURIComponent(positionals[0]!)}`), 'admin retire-seal-key');
      io.stderr.write(`retired seal key ${positionals[0]}\n`);
      return EXIT.ok;
    }
    case 'rewrap': {
      const { client, values } = parse(rest, { rate: { type: 'string' } }, io);
      await rewrap(client, writeRate(values.rate), io);
      return EXIT.ok;
    }
    case 'backup': {
      const { client, values } = parse(rest, { output: { type: 'string' } }, io);
      await backup(client, values.output as string | undefined, io);
      return EXIT.ok;
    }
    case 'restore-backup': {
      const { client, positionals, values } = parse(rest, { rate: { type: 'string' } }, io, 1);
      return restoreBackup(client, positionals[0]!, writeRate(values.rate), io);
    }
    case 'import-dssss': {
      const { client, values } = parse(rest, { prefix: { type: 'string' }, roles: { type: 'string' }, rate: { type: 'string' } }, io);
      const roles = typeof values.roles === 'string' ? values.roles.split(',').map((r) => r.trim()).filter(Boolean) : undefined;
      return importDssss(client, segmentPrefix(values.prefix), roles, writeRate(values.rate), io);
    }
    default:
      throw new CliError(EXIT.usage, ADMIN_USAGE);
  }
}

/** Whole segments: `app` means `app/`; the empty prefix is every name. */
function segmentPrefix(given: unknown): string {
  const prefix = typeof given === 'string' ? given : '';
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** Every secret under `prefix` the caller may read, by name, from bulk reads. */
async function readSecrets(client: DssssClient, prefix: string): Promise<Map<string, SecretAnswer>> {
  const secrets = new Map<string, SecretAnswer>();
  for (const page of await listAll(client, prefix, { values: true })) for (const secret of page.secrets ?? []) secrets.set(secret.name, secret);
  return secrets;
}

/** `dssss export --prefix P [--format dotenv|json] [--output F]`: what the caller may read, values in the clear. */
async function exportSecrets(args: string[], io: Io): Promise<number> {
  const { client, values } = parse(args, { prefix: { type: 'string' }, format: { type: 'string' }, output: { type: 'string' } }, io);
  const output = values.output as string | undefined;
  const format = parseFormat(values.format, output);
  const prefix = segmentPrefix(values.prefix);
  const secrets = [...(await readSecrets(client, prefix)).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const text = formatExport(
    secrets.map((s) => ({ relative: s.name.slice(prefix.length), key: environmentName(s.name, prefix), value: s.secret })),
    format,
  );
  if (output !== undefined) {
    // A fresh 0600 file renamed into place: the values are in the clear.
    await writeFileAtomic(output, text, 0o600);
    io.stderr.write(`exported ${secrets.length} secrets to ${output} (mode 0600, values in the clear)\n`);
  } else {
    if ((io.stdout as { isTTY?: boolean }).isTTY === true) io.stderr.write('dssss: warning: secret values in the clear on a terminal\n');
    io.stdout.write(text);
  }
  return EXIT.ok;
}

/**
 * `dssss import F --roles a,b [--prefix P] [--format dotenv|json] [--rate N]`: creates or
 * updates each secret, leaves the ones already current alone (no new version), at most
 * `rate` writes a second, and ends with counts. A failure midway leaves what was written;
 * the same command again finishes the job.
 */
async function importSecrets(args: string[], io: Io): Promise<number> {
  const { client, positionals, values } = parse(
    args,
    { roles: { type: 'string' }, prefix: { type: 'string' }, format: { type: 'string' }, rate: { type: 'string' } },
    io,
    1,
  );
  const file = positionals[0]!;
  const roles = typeof values.roles === 'string' ? values.roles.split(',').map((r) => r.trim()).filter(Boolean) : [];
  if (roles.length === 0) throw new CliError(EXIT.usage, 'import needs --roles role[,role...]');
  const rate = writeRate(values.rate);
  const prefix = segmentPrefix(values.prefix);
  const entries = parseImport(await readValueFile(file), parseFormat(values.format, file));
  const current = await readSecrets(client, prefix);
  const sameRoles = (a: readonly string[]) => a.length === roles.length && roles.every((r) => a.includes(r));
  const counts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
  const terminal = (io.stderr as { isTTY?: boolean }).isTTY === true;
  let done = 0;
  for (const [relative, value] of entries) {
    const name = `${prefix}${relative}`;
    const existing = current.get(name);
    if (existing && existing.secret === value && sameRoles(existing.roles)) {
      counts.unchanged++;
    } else {
      const started = Date.now();
      try {
        await putSecret(client, name, value, roles);
        counts[existing ? 'updated' : 'created']++;
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        counts.failed++;
        io.stderr.write(`${terminal ? '\n' : ''}dssss: ${name}: ${err.message}\n`);
      }
      const due = 1000 / rate - (Date.now() - started);
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    }
    done++;
    if (terminal) io.stderr.write(`\r${done}/${entries.size}`);
  }
  io.stderr.write(`${terminal ? '\n' : ''}created ${counts.created}, updated ${counts.updated}, unchanged ${counts.unchanged}, failed ${counts.failed}\n`);
  return counts.failed === 0 ? EXIT.ok : EXIT.error;
}

/** Parameter Store's default PutParameter rate, per account and Region. */
const PUT_PARAMETER_RATE = 3;

/** `--rate N`: writes per second, PutParameter's default quota unless given. */
function writeRate(given: unknown): number {
  const rate = given === undefined ? PUT_PARAMETER_RATE : Number(given);
  if (!Number.isFinite(rate) || rate <= 0) throw new CliError(EXIT.usage, '--rate: writes per second, more than 0');
  return rate;
}

const BACKUP_FORMAT = 'dssss-backup';

interface BackupFile {
  format: typeof BACKUP_FORMAT;
  version: 1;
  created: string;
  sealKeys: Record<string, string>;
  secrets: { name: string; records: { seq: number; record: string }[] }[];
}

/**
 * `dssss admin backup [--output F]`: every sealed record of every name (deleted ones too) and
 * the wrapped seal keys, as one JSON file. Nothing in it opens without the deployment's KMS
 * key, but it is written 0600 all the same.
 */
async function backup(client: DssssClient, output: string | undefined, io: Io): Promise<void> {
  const file: BackupFile = { format: BACKUP_FORMAT, version: 1, created: new Date().toISOString(), sealKeys: {}, secrets: [] };
  let next: string | undefined;
  do {
    const page = (await client.expectOk(
      await client.request('GET', `/v1/admin/backup${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`),
      'admin backup',
    )) as { sealKeys: Record<string, string>; secrets: BackupFile['secrets']; next?: string };
    // A rotation during the backup adds a slot; every page has every slot it knew of.
    Object.assign(file.sealKeys, page.sealKeys);
    file.secrets.push(...page.secrets);
    next = page.next;
  } while (next !== undefined);
  const text = `${JSON.stringify(file)}\n`;
  const records = file.secrets.reduce((n, s) => n + s.records.length, 0);
  if (output === undefined) io.stdout.write(text);
  else await writeFileAtomic(output, text, 0o600);
  io.stderr.write(`backed up ${file.secrets.length} secrets (${records} records) and ${Object.keys(file.sealKeys).length} seal keys${output === undefined ? '' : ` to ${output}`}\n`);
}

/**
 * `dssss admin import-dssss [--prefix P] [--roles a,b] [--rate N]`: every secret of an original
 * Go dssss deployment (read with the operator's AWS credentials, cli/dssss-go.ts) written here
 * under P with its roles (`--roles` for those stored without any), one line per name. A name
 * that already holds the same value and roles is left alone; one that holds something else
 * is never overwritten. Run again, it writes only what is missing.
 */
async function importDssss(client: DssssClient, prefix: string, defaultRoles: string[] | undefined, rate: number, io: Io): Promise<number> {
  // Distinguished roles only, and said before anything is read from the original.
  await client.expectOk(await client.request('GET', '/v1/admin/seal-keys'), 'admin import-dssss');
  const original = await readGoDssss(io.env, client.retryTiming.forMs);
  // A distinguished role lists every name, and reads those whose roles include it.
  const pages = await listAll(client, prefix, { values: true });
  const names = new Set(pages.flatMap((page) => page.names));
  const current = new Map(pages.flatMap((page) => (page.secrets ?? []).map((secret) => [secret.name, secret] as const)));
  const counts = { imported: 0, unchanged: 0, present: 0, skipped: 0, failed: original.failed.length };
  for (const { name, why } of original.failed) io.stderr.write(`failed ${name}: ${why}\n`);
  for (const secret of original.secrets) {
    const name = `${prefix}${secret.name}`;
    const roles = secret.roles !== null && secret.roles.length > 0 ? [...secret.roles] : defaultRoles;
    const existing = current.get(name);
    if (names.has(name)) {
      if (existing === undefined) {
        // Its roles leave this role out: it cannot be compared, and is never overwritten.
        counts.present++;
        io.stderr.write(`present ${name}: it exists here (not readable by this role, so not compared); left as it is\n`);
      } else if (existing.secret === secret.value && (roles === undefined || (existing.roles.length === roles.length && roles.every((r) => existing.roles.includes(r))))) {
        counts.unchanged++;
        io.stderr.write(`unchanged ${name}\n`);
      } else {
        counts.skipped++;
        io.stderr.write(`skipped ${name}: it exists here with another value or roles; left as it is\n`);
      }
      continue;
    }
    if (roles === undefined) {
      counts.failed++;
      io.stderr.write(`failed ${name}: stored without roles; give --roles\n`);
      continue;
    }
    const started = Date.now();
    try {
      const { version } = await putSecret(client, name, secret.value, roles);
      counts.imported++;
      io.stderr.write(`imported ${name} (version ${version}, roles ${roles.join(',')})\n`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      counts.failed++;
      io.stderr.write(`failed ${name}: ${err.message}\n`);
    }
    const due = 1000 / rate - (Date.now() - started);
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
  }
  io.stderr.write(`imported ${counts.imported}, unchanged ${counts.unchanged}, present ${counts.present}, skipped ${counts.skipped}, failed ${counts.failed}\n`);
  return counts.failed === 0 && counts.skipped === 0 ? EXIT.ok : EXIT.error;
}

/**
 * `dssss admin restore-backup F [--rate N]`: each name of the backup back, the versions the
 * store lacks written on top (the server never overwrites a newer version), at most `rate`
 * writes a second. Interrupted, the same command again finishes the job.
 */
async function restoreBackup(client: DssssClient, path: string, rate: number, io: Io): Promise<number> {
  let file: BackupFile;
  try {
    file = JSON.parse(await readValueFile(path)) as BackupFile;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(EXIT.usage, `${path}: not a dssss backup (not JSON)`);
  }
  if (file?.format !== BACKUP_FORMAT || file.version !== 1 || !Array.isArray(file.secrets)) throw new CliError(EXIT.usage, `${path}: not a dssss backup`);
  const terminal = (io.stderr as { isTTY?: boolean }).isTTY === true;
  const counts = { restored: 0, unchanged: 0, conflict: 0, failed: 0 };
  let done = 0;
  for (const secret of file.secrets) {
    try {
      let status: 'restored' | 'unchanged' | 'conflict' | undefined;
      for (;;) {
        const started = Date.now();
        const answer = (await client.expectOk(
          await client.request('POST', '/v1/admin/restore-backup', { body: JSON.stringify({ sealKeys: file.sealKeys, name: secret.name, records: secret.records }) }),
          `restore ${secret.name}`,
        )) as { status: 'restored' | 'unchanged' | 'conflict'; written: number; remaining: number };
        if (status === undefined || answer.status === 'restored') status = answer.status;
        if (answer.remaining === 0) break;
        const due = (answer.written / rate) * 1000 - (Date.now() - started);
        if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      }
      counts[status]++;
      if (status === 'conflict') io.stderr.write(`${terminal ? '\n' : ''}dssss: ${secret.name}: the store holds versions the backup does not; left as it is\n`);
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      counts.failed++;
      io.stderr.write(`${terminal ? '\n' : ''}dssss: ${secret.name}: ${err.message}\n`);
    }
    done++;
    if (terminal) io.stderr.write(`\r${done}/${file.secrets.length}`);
  }
  io.stderr.write(`${terminal ? '\n' : ''}restored ${counts.restored}, unchanged ${counts.unchanged}, conflict ${counts.conflict}, failed ${counts.failed}\n`);
  return counts.conflict === 0 && counts.failed === 0 ? EXIT.ok : EXIT.error;
}

/**
 * Re-seals every record under the newest seal key, a page at a time, at most `rate` writes a
 * second so it leaves PutParameter's quota to everyone else. Idempotent: an interrupted run,
 * started again, skips what is done (the server counts it unchanged).
 */
async function rewrap(client: DssssClient, rate: number, io: Io): Promise<void> {
  const terminal = (io.stderr as { isTTY?: boolean }).isTTY === true;
  let next: string | undefined;
  let rewrapped = 0;
  let unchanged = 0;
  do {
    const started = Date.now();
    const page = (await client.expectOk(
      await client.request('POST', `/v1/admin/rewrap${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`),
      'admin rewrap',
    )) as { rewrapped: number; unchanged: number; next?: string };
    rewrapped += page.rewrapped;
    unchanged += page.unchanged;
    next = page.next;
    if (terminal) io.stderr.write(`\rre-sealed ${rewrapped}, already current ${unchanged}`);
    const due = (page.rewrapped / rate) * 1000 - (Date.now() - started);
    if (next !== undefined && due > 0) await new Promise((resolve) => setTimeout(resolve, due));
  } while (next !== undefined);
  io.stderr.write(`${terminal ? '\r' : ''}re-sealed ${rewrapped}, already current ${unchanged}: every record is under the newest seal key\n`);
}

/** `dssss exec --prefix app/ -- CMD ARGS...`: the secrets under the prefix as environment variables. */
async function exec(args: string[], io: Io): Promise<number> {
  const dash = args.indexOf('--');
  if (dash < 0 || dash === args.length - 1) throw new CliError(EXIT.usage, 'usage: dssss exec --prefix PREFIX -- COMMAND [ARGS...]');
  const { client, values } = parse(args.slice(0, dash), { prefix: { type: 'string' }, only: { type: 'string' } }, io);
  // --only: the variables the command expects, and nothing else (an allow-list).
  const only = typeof values.only === 'string' ? new Set(values.only.split(',').map((v) => v.trim()).filter(Boolean)) : undefined;
  if (only !== undefined && (only.size === 0 || [...only].some((v) => !/^[A-Z_][A-Z0-9_]*$/.test(v)))) {
    throw new CliError(EXIT.usage, '--only: variable names (A-Z, 0-9, _), comma-separated');
  }
  // Whole segments: --prefix billing must not pick up billingpath.
  const prefix = segmentPrefix(values.prefix);
  const [command, ...commandArgs] = args.slice(dash + 1) as [string, ...string[]];

  // One bulk read: a page of up to 100 names per request, with the values the caller may
  // read (a distinguished role may list names it cannot read; those set nothing).
  const secrets = await readSecrets(client, prefix);
  const variables = new Map<string, string>();
  for (const name of secrets.keys()) {
    const variable = environmentName(name, prefix);
    if (only !== undefined && !only.has(variable)) continue;
    // Whoever may create a name under the prefix must not get to steer the command: no
    // overriding what the environment already holds, nothing that loads code or moves PATH.
    if (variable in io.env || isProtectedVariable(variable)) {
      throw new CliError(EXIT.error, `${name} would set ${variable}, which dssss exec does not override`);
    }
    const earlier = variables.get(variable);
    if (earlier !== undefined) throw new CliError(EXIT.error, `${earlier} and ${name} both map to ${variable}`);
    variables.set(variable, name);
  }
  const missing = only === undefined ? [] : [...only].filter((v) => !variables.has(v));
  if (missing.length > 0) throw new CliError(EXIT.notFound, `no secret you may read under ${prefix || 'the root'} for ${missing.join(', ')}`);
  const env: Record<string, string | undefined> = { ...io.env };
  for (const [variable, name] of variables) {
    const value = secrets.get(name)!.secret;
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

/**
 * Variables that decide what runs or how: loaders, interpreters' and tools' options, paths,
 * pagers and editors, TLS and resolver configuration, credentials, dssss itself. A deny-list
 * is never complete: `exec --only` is the allow-list, and the writer rules decide who can
 * create a name under a prefix at all.
 */
const PROTECTED_VARIABLES = new RegExp(
  '^(' +
    [
      'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'IFS', 'ENV', 'BASH_ENV', 'BASH_FUNC_.*', 'SHELLOPTS', 'BASHOPTS', 'CDPATH', 'PS[0-9]', 'PROMPT_COMMAND',
      'TMPDIR', 'TZ', 'TZDIR', 'LANG', 'LANGUAGE', 'LC_.*', 'TERM', 'TERMINFO.*', 'XDG_.*', 'HOSTALIASES', 'LOCALDOMAIN', 'RES_OPTIONS', 'GCONV_PATH', 'GLIBC_TUNABLES', 'MALLOC_.*',
      'NODE_.*', 'NPM_CONFIG_.*', 'YARN_.*', 'LD_.*', 'DYLD_.*', 'PYTHON.*', 'PIP_.*', 'CONDA_.*', 'VIRTUAL_ENV', 'PERL.*', 'RUBY.*', 'GEM_.*', 'BUNDLE_.*', 'PHPRC', 'PHP_INI_SCAN_DIR',
      'LUA_.*', 'TCLLIBPATH', 'R_LIBS.*', 'R_PROFILE.*', 'R_ENVIRON.*',
      'GO(FLAGS|PATH|ROOT|PROXY|PRIVATE|NOPROXY|NOSUMDB|NOSUMCHECK|INSECURE|TOOLCHAIN|ENV|BIN|CACHE|MODCACHE|EXPERIMENT|DEBUG|OS|ARCH|WORK|SUMDB|VCS|AUTH)', 'CGO_.*', 'CARGO_.*', 'RUST.*', 'DOTNET_.*', 'COMPLUS_.*', 'CORECLR_.*',
      'JAVA_HOME', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'CLASSPATH', 'MAVEN_OPTS', 'GRADLE_.*',
      'GIT_.*', 'SSH_.*', 'GNUPGHOME', 'GPG_.*', 'EDITOR', 'VISUAL', 'PAGER', '.*_PAGER', 'LESS.*', 'MANPAGER', 'BROWSER',
      'OPENSSL_.*', 'SSL_.*', 'SSLKEYLOGFILE', 'CURL_.*', 'WGETRC', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS',
      'HTTPS?_PROXY', 'ALL_PROXY', 'NO_PROXY', 'FTP_PROXY', 'KUBECONFIG', 'DOCKER_.*', 'CONTAINER_HOST', 'HELM_.*', 'TF_.*',
      'AWS_.*', 'DSSSS_.*', 'ECS_.*',
    ].join('|') +
    ')$',
);

export function isProtectedVariable(variable: string): boolean {
  return PROTECTED_VARIABLES.test(variable);
}

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
    throw new CliError(EXIT.usage, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const end = text.indexOf('\n');
    if (end >= 0) return text.slice(0, end);
  }
  return text;
}
