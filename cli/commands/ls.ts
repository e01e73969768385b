// `dssss ls [PREFIX] [-l] [--deleted]`: the names you may read, with their metadata on -l.

import { clientFor, COMMON, parseOptions, type Command } from '../args';
import { EXIT } from '../errors';

export const ls: Command = {
  name: 'ls',
  usage: 'dssss ls [PREFIX] [-l] [--deleted]',
  summary: 'list the names you may read (-l: version, updated, by whom, roles; --deleted: soft-deleted ones, distinguished roles)',
  details: 'With -l, tab-separated: NAME VERSION UPDATED BY ROLES; a name you may only list (distinguished roles) shows "-" for the rest.',
  async run(args, io) {
    const { values, positionals } = parseOptions('ls', args, { ...COMMON, long: { type: 'boolean', short: 'l' }, deleted: { type: 'boolean' } }, [0, 1]);
    const entries = await clientFor(values, io).list(positionals[0] ?? '', { deleted: values.deleted === true });
    if (values.long !== true) {
      for (const entry of entries) io.stdout.write(`${entry.name}\n`);
      return EXIT.ok;
    }
    io.stdout.write('NAME\tVERSION\tUPDATED\tBY\tROLES\n');
    for (const e of entries) {
      const by = e.by === undefined ? '-' : `${e.by.role}/${e.by.principal}`;
      io.stdout.write(`${e.name}\t${e.version ?? '-'}\t${e.updated ?? '-'}\t${by}\t${e.roles?.join(',') ?? '-'}\n`);
    }
    return EXIT.ok;
  },
};
