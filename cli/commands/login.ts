// `dssss login [--document FILE]`: log in now and cache the token.

import { clientFor, COMMON, parseOptions, readValueFile, type Command } from '../args';
import { EXIT } from '../errors';

export const login: Command = {
  name: 'login',
  usage: 'dssss login [--method ec2|iam] [--document FILE]',
  summary: 'log in and cache the token (in DSSSS_TOKEN_FILE, default ~/.dssss/token.json, mode 0600)',
  details: `On EC2 with an instance role: IAM login with the role's credentials from IMDS (the server spends one STS call).
On EC2 without a role, or with --method ec2: the instance identity document from IMDS.
Elsewhere (ECS, Lambda, a profile, static keys): IAM login with those credentials.
--document FILE: log in with that identity document (e.g. from dssss dev identity), no IMDS needed.`,
  async run(args, io) {
    const { values } = parseOptions('login', args, { ...COMMON, document: { type: 'string' } }, [0, 0]);
    const file = values.document as string | undefined;
    const client = clientFor(values, io, file === undefined ? {} : { document: () => readValueFile(file) });
    const info = await client.login();
    io.stderr.write(`logged in as role ${info.role} (${info.method}) until ${info.expiresAt}\n`);
    return EXIT.ok;
  },
};
