// RoleResolver for local mode: instance id -> account and role, one small file per
// instance in the data dir, written by `dssss dev register`. Read on every login, so
// registrations apply without a restart, and concurrent registrations never collide.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { DssssError, invalidCredentials } from '../core/errors';
import { isRoleName } from '../core/roles';
import type { InstanceIdentity, ResolvedRole, RoleResolver } from '../ports';
import { assertPrivate, isMissing, writeFileAtomic } from './files';

export const REGISTRY_DIR = 'instances';
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const ACCOUNT = /^\d{12}$/;

const Entry = z.object({ account: z.string(), role: z.string() });

export class LocalRegistry implements RoleResolver {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, REGISTRY_DIR);
  }

  async resolveRole(identity: InstanceIdentity): Promise<ResolvedRole> {
    if (!INSTANCE_ID.test(identity.instanceId)) throw invalidCredentials('instance is not registered', 'unknown_instance');
    // A registration planted by another user would name the role a stranger's document logs in as.
    const file = join(this.dir, `${identity.instanceId}.json`);
    await assertPrivate(this.dir, 'the instance registry');
    await assertPrivate(file, 'an instance registration');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (isMissing(err)) throw invalidCredentials('instance is not registered', 'unknown_instance');
      throw err;
    }
    const entry = Entry.safeParse(safeJson(text));
    if (!entry.success) throw new DssssError('unavailable', 'an instance registration in the data dir is malformed', 60);
    if (entry.data.account !== identity.accountId) throw invalidCredentials('instance is registered to another account', 'account_mismatch');
    return { role: entry.data.role };
  }

  async register(instanceId: string, account: string, role: string): Promise<void> {
    if (!INSTANCE_ID.test(instanceId)) throw new DssssError('bad_request', 'instance id must look like i-0123456789abcdef0');
    if (!ACCOUNT.test(account)) throw new DssssError('bad_request', 'account must be 12 digits');
    if (!isRoleName(role)) throw new DssssError('bad_request', 'role must be an IAM role name');
    await writeFileAtomic(join(this.dir, `${instanceId}.json`), JSON.stringify({ account, role }) + '\n');
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
