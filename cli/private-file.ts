// The client's own files, the nonce seed and the token cache: read only when they are this
// user's alone. In a shared directory another user could plant one (a seed they know, so
// every server's nonce; a token of their choosing), or read one left open.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { DssssClientError } from './errors';

/**
 * The content of `path`, or undefined when there is none. Refuses (`no_credentials`, with
 * `fix` said) a symbolic link, anything but a regular file, a file another user owns, and
 * one that group or others may read or write. The checks are made on the file as opened
 * (O_NOFOLLOW, then fstat), so nothing can be swapped in between the check and the read.
 */
export async function readPrivateFile(path: string, what: string, fix: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO planted in its place must not hang the open (it is refused below).
    handle = await open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw refused(`${what} ${path} is a symbolic link`, fix);
    throw new DssssClientError('no_credentials', `cannot read ${what} ${path} (${code ?? 'error'})`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw refused(`${what} ${path} is not a regular file`, fix);
    // Without POSIX owners (Windows) there is nothing more to check.
    if (typeof process.getuid === 'function') {
      if (stats.uid !== process.getuid()) throw refused(`${what} ${path} belongs to another user`, fix);
      if ((stats.mode & 0o077) !== 0) throw refused(`${what} ${path} is open to other users (mode ${(stats.mode & 0o777).toString(8)})`, fix);
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

function refused(problem: string, fix: string): DssssClientError {
  return new DssssClientError('no_credentials', `${problem}; refusing to use it: ${fix}`);
}
