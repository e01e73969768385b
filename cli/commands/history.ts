// `dssss history NAME` and `dssss revert NAME N`: every kept version, and going back to one.

import { clientFor, COMMON, parseOptions, versionNumber, type Command } from '../args';
import { EXIT } from '../errors';

export const history: Command = {
  name: 'history',
  usage: 'dssss history NAME',
  summary: 'every kept version, newest first: number, time, operation, writer, roles (never a value)',
  async run(args, io) {
    const { values, positionals } = parseOptions('history', args, COMMON, [1, 1]);
    const versions = await clientFor(values, io).history(positionals[0]!);
    io.stdout.write('VERSION\tAT\tOPERATION\tBY\tROLES\n');
    for (const v of versions) io.stdout.write(`${v.version}\t${v.at}\t${v.operation}\t${v.by.role}/${v.by.principal}\t${v.roles.join(',')}\n`);
    return EXIT.ok;
  },
};

export const revert: Command = {
  name: 'revert',
  usage: 'dssss revert NAME N',
  summary: "write version N's value and roles again, as a new version (a PUT, under the overwrite rule)",
  async run(args, io) {
    const { values, positionals } = parseOptions('revert', args, COMMON, [2, 2]);
    const [name, given] = positionals as [string, string];
    const version = versionNumber(given);
    const client = clientFor(values, io);
    const old = await client.get(name, { version });
    const written = await client.put(name, old.value, { roles: old.roles });
    io.stderr.write(`reverted ${written.name} to version ${version}'s value and roles, as version ${written.version}\n`);
    return EXIT.ok;
  },
};
