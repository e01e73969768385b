// `dssss put NAME --roles a,b [--value-file F]`: the value from stdin or a file, never from argv.

import { clientFor, COMMON, parseOptions, readAll, readValueFile, roleList, type Command } from '../args';
import { CliError, EXIT } from '../errors';

export const put: Command = {
  name: 'put',
  usage: 'dssss put NAME --roles a,b [--value-file F]',
  summary: 'store the value read from stdin (or F) as a new version readable by the roles',
  details: 'Never from the command line, where a value would sit in shell history and process listings.',
  async run(args, io) {
    const { values, positionals } = parseOptions('put', args, { ...COMMON, roles: { type: 'string' }, 'value-file': { type: 'string' } }, [1, 1]);
    const roles = roleList(values.roles);
    if (roles.length === 0) throw new CliError(EXIT.usage, 'put needs --roles role[,role...]');
    const client = clientFor(values, io);
    const value = typeof values['value-file'] === 'string' ? await readValueFile(values['value-file']) : await readAll(io.stdin);
    const { name, version } = await client.put(positionals[0]!, value, { roles });
    io.stderr.write(`stored ${name} version ${version}\n`);
    return EXIT.ok;
  },
};
