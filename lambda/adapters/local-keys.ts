// KeyWrapper for local mode: a 32-byte key file (mode 0600) stands in for KMS. Data keys
// are sealed under it (sealed-box.ts), as KMS would encrypt them under a customer key.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeStrict, encode } from '../core/b64';
import { DssssError } from '../core/errors';
import { memoize } from '../core/memo';
import { KEY_BYTES, newKey, open, openBytes, seal } from '../core/sealed-box';
import type { KeyWrapper } from '../ports';
import { assertPrivate, createFileExclusive } from './files';

export const LOCAL_KEY_FILE = 'local-kms.key';

export class LocalKeyWrapper implements KeyWrapper {

  constructor(private readonly dataDir: string) {}

  async generateDataKey(): Promise<{ plaintext: Uint8Array; wrapped: string }> {
    const plaintext = newKey();
    return { plaintext, wrapped: seal(plaintext, await this.key()) };
  }

  async unwrap(wrapped: string): Promise<Uint8Array> {
    const kek = await this.key();
    // Data dirs from before the one framing hold "nonce.box".
    const [nonce, box] = wrapped.split('.').map((part) => decodeStrict(part, 'base64'));
    const plain = box === undefined ? open(wrapped, kek) : nonce && openBytes(Buffer.concat([nonce, box]), kek);
    if (!plain) {
      throw new DssssError('integrity', `the seal key does not open with ${LOCAL_KEY_FILE}: was the key file replaced?`, 60);
    }
    return plain;
  }

  private readonly key = memoize(async () => {
    const path = join(this.dataDir, LOCAL_KEY_FILE);
    await assertPrivate(this.dataDir, 'the data dir');
    await assertPrivate(path, 'the local KMS key');
    await createFileExclusive(path, encode(newKey(), 'base64') + '\n', 0o600);
    const key = decodeStrict((await readFile(path, 'utf8')).trim(), 'base64');
    if (!key || key.length !== KEY_BYTES) throw new DssssError('integrity', `${LOCAL_KEY_FILE} is not a 32-byte base64 key`, 60);
    return key;
  });
}
