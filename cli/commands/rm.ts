// `dssss rm NAME`, `dssss rm --purge NAME [--yes]`, `dssss restore NAME` (distinguished roles).

import { clientFor, COMMON, isTerminal, parseOptions, readLine, type Command, type Io } from '../args';
import { CliError, EXIT } from '../errors';

export const rm: Command = {
  name: 'rm',
  usage: 'dssss rm NAME\ndssss rm --purge NAME [--yes]',
  summary: 'soft delete, every version kept (--purge: destroy every version for good); distinguished roles',
  details: '--purge asks for the name again on a terminal; elsewhere it needs --yes.',
  async run(args, io) {
    const { values, positionals } = parseOptions('rm', args, { ...COMMON, purge: { type: 'boolean' }, yes: { type: 'boolean' } }, [1, 1]);
    const name = positionals[0]!;
    const client = clientFor(values, io);
    if (values.purge === true) {
      await confirmPurge(name, values.yes === true, io);
      await client.delete(name, { purge: true });
      io.stderr.write(`destroyed every version of ${name}\n`);
    } else {
      await client.delete(name);
      io.stderr.write(`deleted ${name} (its versions are kept: dssss restore ${name})\n`);
    }
    return EXIT.ok;
  },
};

export const restore: Command = {
  name: 'restore',
  usage: 'dssss restore NAME',
  summary: 'make the last live version the latest again, as a new version (distinguished roles)',
  async run(args, io) {
    const { values, positionals } = parseOptions('restore', args, COMMON, [1, 1]);
    const { name, version } = await clientFor(values, io).restore(positionals[0]!);
    io.stderr.write(`restored ${name} as version ${version}\n`);
    return EXIT.ok;
  },
};

/** `rm --purge` destroys every version: on a terminal the name is typed again; elsewhere --yes says so. */
async function confirmPurge(name: string, yes: boolean, io: Io): Promise<void> {
  if (yes) return;
  if (!isTerminal(io.stdin)) throw new CliError(EXIT.usage, 'rm --purge destroys every version for good: add --yes (no terminal to confirm on)');
  io.stderr.write(`This destroys every version of ${name} for good. Type the name again to confirm: `);
  const answer = await readLine(io.stdin);
  if (answer.trim() !== name) throw new CliError(EXIT.usage, 'the name did not match: nothing destroyed');
}
