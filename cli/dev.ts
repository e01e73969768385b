// `dssss dev ...`: local-mode helpers. `register` maps an instance to an account and role;
// `identity` registers a fresh fake instance and prints a dev-CA-signed identity document.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ensureDevCa } from '../lambda/adapters/dev-ca-files';
import { LocalRegistry } from '../lambda/adapters/local-registry';
import { loadConfig } from '../lambda/config';
import { signIdentityDocument } from '../lambda/identity/dev-ca';
import { CliError, EXIT } from './errors';

export const DEV_ACCOUNT = '123456789012';
export const DEV_REGION = 'us-east-1';

export async function dev(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  if (config.backend !== 'local') throw new CliError(EXIT.usage, 'dssss dev commands work on the local backend only (unset DSSSS_BACKEND)');
  const dataDir = config.dataDir;
  const registry = new LocalRegistry(dataDir);

  if (command === 'register') {
    const { values } = parseArgs({
      args: rest,
      options: { 'instance-id': { type: 'string' }, account: { type: 'string' }, role: { type: 'string' } },
    });
    const instanceId = required(values['instance-id'], '--instance-id');
    await registry.register(instanceId, required(values.account, '--account'), required(values.role, '--role'));
    process.stderr.write(`registered ${instanceId}\n`);
    return 0;
  }

  if (command === 'identity') {
    const { values } = parseArgs({
      args: rest,
      options: { role: { type: 'string' }, account: { type: 'string' }, region: { type: 'string' } },
    });
    const role = required(values.role, '--role');
    const account = values.account ?? DEV_ACCOUNT;
    const region = values.region ?? DEV_REGION;
    const instanceId = `i-${randomBytes(8).toString('hex').slice(0, 17)}`;
    await registry.register(instanceId, account, role);
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
    process.stdout.write(`${signIdentityDocument(document, ca)}\n`);
    return 0;
  }

  throw new CliError(EXIT.usage, 'dev commands: register, identity');
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new CliError(EXIT.usage, `${flag} is required`);
  return value;
}
