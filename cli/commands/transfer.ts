// `dssss export` and `dssss import`: secrets in and out as dotenv or JSON (formats: cli/transfer.ts).

import { writeFileAtomic } from '../../lambda/adapters/files';
import { clientFor, COMMON, isTerminal, parseOptions, readValueFile, roleList, writeRate, type Command } from '../args';
import { segmentPrefix } from '../client';
import { CliError, DssssClientError, EXIT } from '../errors';
import { environmentName } from './exec';

export const exportCommand: Command = {
  name: 'export',
  usage: 'dssss export --prefix P [--format dotenv|json] [--output F]',
  summary: 'every secret under P you may read, values in the clear: to F (a fresh 0600 file) or stdout',
  details: `JSON is {"name under P": "value"}, lossless; dotenv keys are the variables exec would set (db-password is
DB_PASSWORD), values quoted so that dotenv reads them back unchanged. A warning when stdout is a terminal.`,
  async run(args, io) {
    const { values } = parseOptions('export', args, { ...COMMON, prefix: { type: 'string' }, format: { type: 'string' }, output: { type: 'string' } }, [0, 0]);
    const { formatExport, parseFormat } = await import('../transfer');
    const output = values.output as string | undefined;
    const format = parseFormat(values.format, output);
    const prefix = segmentPrefix((values.prefix as string | undefined) ?? '');
    const secrets = [...(await clientFor(values, io).getAll(prefix)).values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    const text = formatExport(
      secrets.map((s) => ({ relative: s.name.slice(prefix.length), key: environmentName(s.name, prefix), value: s.value })),
      format,
    );
    if (output !== undefined) {
      // A fresh 0600 file renamed into place: the values are in the clear.
      await writeFileAtomic(output, text, 0o600);
      io.stderr.write(`exported ${secrets.length} secrets to ${output} (mode 0600, values in the clear)\n`);
    } else {
      if (isTerminal(io.stdout)) io.stderr.write('dssss: warning: secret values in the clear on a terminal\n');
      io.stdout.write(text);
    }
    return EXIT.ok;
  },
};

export const importCommand: Command = {
  name: 'import',
  usage: 'dssss import F --roles a,b [--prefix P] [--format dotenv|json] [--rate N]',
  summary: 'create or update each secret of F under P, leaving current ones alone; at most N writes a second (default 3)',
  details: `dotenv DB_PASSWORD becomes P + db-password. A failed write is reported and counted and the rest go on; ends with
created, updated, unchanged, failed (exit 1 if any failed). Run it again after an interruption: what landed is unchanged.`,
  async run(args, io) {
    const { values, positionals } = parseOptions(
      'import',
      args,
      { ...COMMON, roles: { type: 'string' }, prefix: { type: 'string' }, format: { type: 'string' }, rate: { type: 'string' } },
      [1, 1],
    );
    const { parseFormat, parseImport } = await import('../transfer');
    const file = positionals[0]!;
    const roles = roleList(values.roles);
    if (roles.length === 0) throw new CliError(EXIT.usage, 'import needs --roles role[,role...]');
    const rate = writeRate(values.rate);
    const prefix = segmentPrefix((values.prefix as string | undefined) ?? '');
    const entries = parseImport(await readValueFile(file), parseFormat(values.format, file));
    const client = clientFor(values, io);
    // What is already current is told by reading it back: an importer that cannot read what
    // it writes would write it all again on every run (or be refused).
    const { role } = await client.whoami();
    const bare = (r: string) => r.slice(Math.max(r.lastIndexOf(':'), r.lastIndexOf('/')) + 1);
    if (!roles.some((r) => bare(r) === bare(role))) {
      throw new CliError(EXIT.usage, `import: your role ${role} is not in --roles, so it could not read back what it writes to leave it alone when run again; add ${bare(role)} to --roles`);
    }
    const current = await client.getAll(prefix);
    const sameRoles = (a: readonly string[]) => a.length === roles.length && roles.every((r) => a.includes(r));
    const counts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
    const terminal = isTerminal(io.stderr);
    let done = 0;
    for (const [relative, value] of entries) {
      const name = `${prefix}${relative}`;
      const existing = current.get(name);
      if (existing && existing.value === value && sameRoles(existing.roles)) {
        counts.unchanged++;
      } else {
        const started = Date.now();
        try {
          await client.put(name, value, { roles });
          counts[existing ? 'updated' : 'created']++;
        } catch (err) {
          if (!(err instanceof DssssClientError)) throw err;
          counts.failed++;
          io.stderr.write(`${terminal ? '\n' : ''}dssss: ${name}: ${err.message} (${err.code})\n`);
        }
        const due = 1000 / rate - (Date.now() - started);
        if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      }
      done++;
      if (terminal) io.stderr.write(`\r${done}/${entries.size}`);
    }
    io.stderr.write(`${terminal ? '\n' : ''}created ${counts.created}, updated ${counts.updated}, unchanged ${counts.unchanged}, failed ${counts.failed}\n`);
    return counts.failed === 0 ? EXIT.ok : EXIT.error;
  },
};
