// `dssss admin ...` (distinguished roles): the seal-key ring, rewrap, backup and
// restore-backup, and the import from an original (Go) dssss.

import { writeFileAtomic } from '../../lambda/adapters/files';
import { clientFor, COMMON, isTerminal, parseOptions, readValueFile, writeRate, type Command, type Io, type Options } from '../args';
import { segmentPrefix, type DssssClient } from '../client';
import { CliError, DssssClientError, EXIT } from '../errors';
import { DEFAULT_RETRY_FOR_SECONDS, parseRetryFor } from '../retry';

export const admin: Command = {
  name: 'admin',
  usage: `dssss admin seal-keys | rotate-seal-key | retire-seal-key ID | rewrap [--rate N]
dssss admin backup [--output F] | restore-backup F [--rate N]
dssss admin import-dssss [--prefix P] [--roles a,b] [--rate N]`,
  summary: 'the seal-key ring, rewrap, backup and restore, the import from an original dssss (distinguished roles)',
  details: `seal-keys: the ring as JSON; rotate-seal-key: a new seal key for new writes; retire-seal-key ID: remove one no record needs;
rewrap: re-seal every record under the newest key (resumable, at most N writes a second, default 3);
backup: every sealed record and the wrapped seal keys, as one 0600 JSON file or stdout;
restore-backup F: the versions a store lacks written back on top, never over a newer one;
import-dssss: the secrets of an original Go dssss, read with the operator's AWS credentials.`,
  run: runAdmin,
};

function parseAdmin(action: string, args: string[], options: Options, io: Io, positionals: number) {
  const parsed = parseOptions(`admin ${action}`, args, { ...COMMON, ...options }, [positionals, positionals]);
  const retryFor = parseRetryFor((parsed.values['retry-for'] as string | undefined) ?? io.env.DSSSS_RETRY_FOR);
  return { ...parsed, client: clientFor(parsed.values, io), retryForMs: (retryFor ?? DEFAULT_RETRY_FOR_SECONDS) * 1000 };
}

const ADMIN_USAGE =
  'usage: dssss admin seal-keys | rotate-seal-key | retire-seal-key ID | rewrap [--rate N] | backup [--output F] | restore-backup F [--rate N] | import-dssss [--prefix P] [--roles a,b] [--rate N]';

/** `dssss admin ...` (distinguished roles): the seal-key ring, rewrap, backup and restore. */
async function runAdmin(args: string[], io: Io): Promise<number> {
  const [action = '', ...rest] = args;
  switch (action) {
    case 'seal-keys': {
      const { client } = parseAdmin(action, rest, {}, io, 0);
      io.stdout.write(`${JSON.stringify(await client.request('GET', '/v1/admin/seal-keys'), null, 2)}\n`);
      return EXIT.ok;
    }
    case 'rotate-seal-key': {
      const { client } = parseAdmin(action, rest, {}, io, 0);
      const key = (await client.request('POST', '/v1/admin/seal-keys')) as { id: string; slot: number };
      io.stderr.write(`seal key ${key.id} (slot ${key.slot}) now seals new records; run dssss admin rewrap to re-seal the older ones\n`);
      return EXIT.ok;
    }
    case 'retire-seal-key': {
      const { client, positionals } = parseAdmin(action, rest, {}, io, 1);
      await client.request('DELETE', `/v1/admin/seal-keys/${encodeURIComponent(positionals[0]!)}`);
      io.stderr.write(`retired seal key ${positionals[0]}\n`);
      return EXIT.ok;
    }
    case 'rewrap': {
      const { client, values } = parseAdmin(action, rest, { rate: { type: 'string' } }, io, 0);
      await rewrap(client, writeRate(values.rate), io);
      return EXIT.ok;
    }
    case 'backup': {
      const { client, values } = parseAdmin(action, rest, { output: { type: 'string' } }, io, 0);
      await backup(client, values.output as string | undefined, io);
      return EXIT.ok;
    }
    case 'restore-backup': {
      const { client, positionals, values } = parseAdmin(action, rest, { rate: { type: 'string' } }, io, 1);
      return restoreBackup(client, positionals[0]!, writeRate(values.rate), io);
    }
    case 'import-dssss': {
      const { client, values, retryForMs } = parseAdmin(action, rest, { prefix: { type: 'string' }, roles: { type: 'string' }, rate: { type: 'string' } }, io, 0);
      const roles = typeof values.roles === 'string' ? values.roles.split(',').map((r) => r.trim()).filter(Boolean) : undefined;
      return importDssss(client, segmentPrefix((values.prefix as string | undefined) ?? ''), roles, writeRate(values.rate), retryForMs, io);
    }
    default:
      throw new CliError(EXIT.usage, action === '' ? ADMIN_USAGE : `admin: unknown command ${JSON.stringify(action.slice(0, 40))} (${ADMIN_USAGE})`);
  }
}

const BACKUP_FORMAT = 'dssss-backup';

interface BackupFile {
  format: typeof BACKUP_FORMAT;
  version: 1;
  created: string;
  sealKeys: Record<string, string>;
  secrets: { name: string; records: { seq: number; record: string }[]; head: { kid: string; mac: string } }[];
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
    const page = (await client.request('GET', `/v1/admin/backup${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`)) as { sealKeys: Record<string, string>; secrets: BackupFile['secrets']; next?: string };
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
async function importDssss(client: DssssClient, prefix: string, defaultRoles: string[] | undefined, rate: number, retryForMs: number, io: Io): Promise<number> {
  // Distinguished roles only, and said before anything is read from the original.
  await client.request('GET', '/v1/admin/seal-keys');
  const { readGoDssss } = await import('../dssss-go');
  const original = await readGoDssss(io.env, retryForMs);
  // A distinguished role lists every name, and reads those whose roles include it.
  const names = new Set((await client.list(prefix)).map((entry) => entry.name));
  const current = await client.getAll(prefix);
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
      } else if (existing.value === secret.value && (roles === undefined || (existing.roles.length === roles.length && roles.every((r) => existing.roles.includes(r))))) {
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
      const { version } = await client.put(name, secret.value, { roles });
      counts.imported++;
      io.stderr.write(`imported ${name} (version ${version}, roles ${roles.join(',')})\n`);
    } catch (err) {
      if (!(err instanceof DssssClientError || err instanceof CliError)) throw err;
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
  const terminal = isTerminal(io.stderr);
  const counts = { restored: 0, unchanged: 0, conflict: 0, failed: 0 };
  let done = 0;
  for (const secret of file.secrets) {
    try {
      let status: 'restored' | 'unchanged' | 'conflict' | undefined;
      for (;;) {
        const started = Date.now();
        const answer = (await client.request('POST', '/v1/admin/restore-backup', { body: { sealKeys: file.sealKeys, name: secret.name, records: secret.records, head: secret.head } })) as { status: 'restored' | 'unchanged' | 'conflict'; written: number; remaining: number };
        if (status === undefined || answer.status === 'restored') status = answer.status;
        if (answer.remaining === 0) break;
        const due = (answer.written / rate) * 1000 - (Date.now() - started);
        if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      }
      counts[status]++;
      if (status === 'conflict') io.stderr.write(`${terminal ? '\n' : ''}dssss: ${secret.name}: the store holds versions the backup does not; left as it is\n`);
    } catch (err) {
      if (!(err instanceof DssssClientError || err instanceof CliError)) throw err;
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
  const terminal = isTerminal(io.stderr);
  let next: string | undefined;
  let rewrapped = 0;
  let unchanged = 0;
  do {
    const started = Date.now();
    const page = (await client.request('POST', `/v1/admin/rewrap${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`)) as { rewrapped: number; unchanged: number; next?: string };
    rewrapped += page.rewrapped;
    unchanged += page.unchanged;
    next = page.next;
    if (terminal) io.stderr.write(`\rre-sealed ${rewrapped}, already current ${unchanged}`);
    const due = (page.rewrapped / rate) * 1000 - (Date.now() - started);
    if (next !== undefined && due > 0) await new Promise((resolve) => setTimeout(resolve, due));
  } while (next !== undefined);
  io.stderr.write(`${terminal ? '\r' : ''}re-sealed ${rewrapped}, already current ${unchanged}: every record is under the newest seal key\n`);
}

