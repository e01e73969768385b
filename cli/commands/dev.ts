// `dssss dev ...`: local-mode helpers. `identity` registers a fake instance of a role and
// prints its identity document, signed by the local server's development CA; `login` logs in
// with one; `register` maps an instance to an account and role. They use the server's data
// dir, found the way git finds .git: DSSSS_DATA_DIR, else the nearest .dssss/ holding a
// development CA from here up. They never create one: a second CA is one the server does
// not trust.

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { clientFor, COMMON, parseOptions, type Command, type Io } from '../args';
import { CliError, EXIT } from '../errors';

export const DEV_REGION = 'us-east-1';
/** The development CA's file in the data dir (lambda/adapters/dev-ca-files.ts, loaded only when a dev command runs). */
export const DEV_CA_FILE = 'dev-ca.json';

/** What the dev commands need of the local backends, loaded when one runs: every other command starts without it. */
async function local() {
  const [{ ensureDevCa }, { LocalRegistry }, { DEV_ACCOUNT }, { signIdentityDocument }] = await Promise.all([
    import('../../lambda/adapters/dev-ca-files'),
    import('../../lambda/adapters/local-registry'),
    import('../../lambda/config'),
    import('../../lambda/identity/dev-ca'),
  ]);
  return { ensureDevCa, LocalRegistry, DEV_ACCOUNT, signIdentityDocument };
}
/** Parent directories looked at, at most: a path deeper than this is not a checkout. */
const MAX_DEPTH = 64;

const DEV_USAGE = 'dssss dev identity --role ROLE [--account A] [--region R] | login --role ROLE [--account A] | register --instance-id ID --account A --role ROLE';

export const dev: Command = {
  name: 'dev',
  usage: `dssss dev identity --role ROLE [--account ACCOUNT] [--region REGION]
dssss dev login --role ROLE [--account ACCOUNT] [--url URL]
dssss dev register --instance-id ID --account ACCOUNT --role ROLE`,
  summary: 'local server only: a fake instance of a role (its identity document, or logged in as it)',
  details: `identity: registers a fresh fake instance with that role and prints its identity document, signed by the local
  development CA, as IMDS would serve it. login: the same, then logs in with it and caches the token, so every other
  command works against npm start's server without IMDS. The data dir is DSSSS_DATA_DIR, else the nearest .dssss/
  with a development CA from the current directory up (where npm start keeps it); none found is an error, never a new one.`,
  remote: false,
  async run(args, io) {
    const [action = '', ...rest] = args;
    if (io.env.DSSSS_BACKEND && io.env.DSSSS_BACKEND !== 'local') throw new CliError(EXIT.usage, 'dssss dev commands work on the local backend only (unset DSSSS_BACKEND)');
    switch (action) {
      case 'identity': {
        const { values } = parseOptions('dev identity', rest, { role: { type: 'string' }, account: { type: 'string' }, region: { type: 'string' } }, [0, 0]);
        io.stdout.write(`${await fakeInstanceDocument(await findDataDir(io), values, io)}\n`);
        return EXIT.ok;
      }
      case 'login': {
        const { values } = parseOptions('dev login', rest, { ...COMMON, role: { type: 'string' }, account: { type: 'string' }, region: { type: 'string' } }, [0, 0]);
        const dataDir = await findDataDir(io);
        const document = await fakeInstanceDocument(dataDir, values, io);
        const info = await clientFor(values, io, { document: async () => document }).login();
        io.stderr.write(`logged in as role ${info.role} (a fake instance, ${dataDir}) until ${info.expiresAt}\n`);
        return EXIT.ok;
      }
      case 'register': {
        const { values } = parseOptions('dev register', rest, { 'instance-id': { type: 'string' }, account: { type: 'string' }, role: { type: 'string' } }, [0, 0]);
        const instanceId = required(values['instance-id'], '--instance-id');
        const { LocalRegistry } = await local();
        await new LocalRegistry(await findDataDir(io)).register(instanceId, required(values.account, '--account'), required(values.role, '--role'));
        io.stderr.write(`registered ${instanceId}\n`);
        return EXIT.ok;
      }
      default:
        throw new CliError(EXIT.usage, action === '' ? `usage: ${DEV_USAGE}` : `dev: unknown command ${JSON.stringify(action.slice(0, 40))} (usage: ${DEV_USAGE})`);
    }
  },
};

/** A fresh fake instance of the role, registered in the data dir, and its signed identity document. */
async function fakeInstanceDocument(dataDir: string, values: Record<string, unknown>, _io: Io): Promise<string> {
  const role = required(values.role, '--role');
  const { ensureDevCa, LocalRegistry, DEV_ACCOUNT, signIdentityDocument } = await local();
  const account = (values.account as string | undefined) ?? DEV_ACCOUNT;
  const region = (values.region as string | undefined) ?? DEV_REGION;
  const instanceId = `i-${randomBytes(8).toString('hex').slice(0, 17)}`;
  await new LocalRegistry(dataDir).register(instanceId, account, role);
  const ca = await ensureDevCa(dataDir);
  const document = {
    accountId: account,
    architecture: 'x86_64',
    availabilityZone: `${region}a`,
    imageId: 'ami-00000000000000000',
    instanceId,
    instanceType: 't3.micro',
    pendingTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    privateIp: '10.0.0.1',
    region,
    version: '2017-09-30',
  };
  return signIdentityDocument(document, ca);
}

/**
 * The local server's data dir: DSSSS_DATA_DIR (it must hold the development CA), else the
 * nearest `.dssss/` holding one, from the working directory up.
 */
export async function findDataDir(io: Io): Promise<string> {
  const cwd = io.cwd ?? process.cwd();
  const given = io.env.DSSSS_DATA_DIR;
  if (given) {
    const dir = resolve(cwd, given);
    if (!(await hasDevCa(dir))) {
      throw new CliError(EXIT.usage, `DSSSS_DATA_DIR (${dir}) holds no development CA: start the local server with this DSSSS_DATA_DIR first (npm start)`);
    }
    return dir;
  }
  let dir = resolve(cwd);
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const candidate = join(dir, '.dssss');
    if (await hasDevCa(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new CliError(
    EXIT.usage,
    `no local server data dir (.dssss/ with ${DEV_CA_FILE}) in ${resolve(cwd)} or above: start the server first (npm start, in the checkout), run this from inside the checkout, or set DSSSS_DATA_DIR to the server's data dir`,
  );
}

async function hasDevCa(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, DEV_CA_FILE))).isFile();
  } catch {
    return false;
  }
}

function required(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new CliError(EXIT.usage, `${flag} is required`);
  return value;
}
