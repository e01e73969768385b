// The local development CA's files in the data dir: created on first use, shared by the
// server (which trusts it) and `dssss dev identity` (which signs with it).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDevCa, type DevCa } from '../identity/dev-ca';
import { assertPrivate, createFileExclusive, isMissing } from './files';

export const DEV_CA_FILE = 'dev-ca.json';

export async function ensureDevCa(dataDir: string): Promise<DevCa> {
  const path = join(dataDir, DEV_CA_FILE);
  // A CA someone else could have planted or read mints identity documents: refuse it.
  await assertPrivate(dataDir, 'the data dir');
  await assertPrivate(path, 'the development CA');
  // A CA already there is used as it is: making its RSA key pair takes 50 to 250 ms.
  const existing = await readFile(path, 'utf8').catch((err: unknown) => {
    if (isMissing(err)) return undefined;
    throw err;
  });
  if (existing !== undefined) return JSON.parse(existing) as DevCa;
  // Exclusive create: two first uses at once still end with one CA.
  await createFileExclusive(path, JSON.stringify(createDevCa()) + '\n', 0o600);
  return JSON.parse(await readFile(path, 'utf8')) as DevCa;
}
