// Crash-safe file writes for the local backends: a file is either absent or whole.

import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DssssError } from '../core/errors';

async function writeTemp(path: string, data: string | Uint8Array, mode: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = join(dirname(path), `.tmp-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** Replaces `path` atomically. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = await writeTemp(path, data, mode);
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Creates `path` whole, only if absent (across processes too); false if it already existed. */
export async function createFileExclusive(path: string, data: string | Uint8Array, mode = 0o600): Promise<boolean> {
  const temp = await writeTemp(path, data, mode);
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    // Once the link exists the write has landed: a temp file left behind must not turn
    // that into a reported failure.
    await rm(temp, { force: true }).catch(() => undefined);
  }
}

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Refuses a data dir, key or CA that another user owns or that others may read or write:
 * a planted key or CA would let whoever planted it read secrets or mint identity
 * documents. A missing path is fine (it will be created, private).
 */
export async function assertPrivate(path: string, what: string): Promise<void> {
  if (typeof process.getuid !== 'function') return; // no POSIX owners to check
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  const fix = stats.isDirectory() ? `chmod 700 ${path}` : `chmod 600 ${path}`;
  if (stats.isSymbolicLink()) throw new DssssError('misconfigured', `${what} ${path} is a symbolic link; refusing to use it`);
  if (stats.uid !== process.getuid()) throw new DssssError('misconfigured', `${what} ${path} belongs to another user; refusing to use it`);
  if ((stats.mode & 0o077) !== 0) {
    throw new DssssError('misconfigured', `${what} ${path} is open to other users (mode ${(stats.mode & 0o777).toString(8)}); run ${fix}, or start from a fresh data dir`);
  }
}
