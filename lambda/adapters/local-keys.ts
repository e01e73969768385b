// KeyWrapper for local mode: a 32-byte key file (mode 0600) stands in for KMS. Data keys
// are sealed under it with secretbox, as KMS would encrypt them under a customer key.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { decodeStrict, encode } from '../core/b64';
import { DssssError } from '../core/errors';
import type { KeyWrapper } from '../ports';
import { createFileExclusive } from './files';

export const LOCAL_KEY_FILE = 'local-kms.key';

export class LocalKeyWrapper implements KeyWrapper {
  private kek: Promise<Uint8Array> | undefined;

  constructor(private readonly dataDir: string) {}

  async generateDataKey(): Promise<{ plaintext: Uint8Array; wrapped: string }> {
    const plaintext = nacl.randomBytes(32);
    const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
    const box = nacl.secretbox(plaintext, nonce, await this.key());
    return { plaintext, wrapped: `${encode(nonce, 'base64')}.${encode(box, 'base64')}` };
  }

  async unwrap(wrapped: string): Promise<Uint8Array> {
    const [nonceText = '', boxText = ''] = wrapped.split('.');
    const nonce = decodeStrict(nonceText, 'base64');
    const box = decodeStrict(boxText, 'base64');
    const plain =
      nonce && box && nonce.length === nacl.secretbox.nonceLength
        ? nacl.secretbox.open(box, nonce, await this.key())
        : null;
    if (!plain) {
      throw new DssssError('integrity', `the seal key does not open with ${LOCAL_KEY_FILE}: was the key file replaced?`, 60);
    }
    return plain;
  }

  private key(): Promise<Uint8Array> {
    this.kek ??= this.loadOrCreate().catch((err: unknown) => {
      this.kek = undefined;
      throw err;
    });
    return this.kek;
  }

  private async loadOrCreate(): Promise<Uint8Array> {
    const path = join(this.dataDir, LOCAL_KEY_FILE);
    await createFileExclusive(path, encode(nacl.randomBytes(32), 'base64') + '\n', 0o600);
    const key = decodeStrict((await readFile(path, 'utf8')).trim(), 'base64');
    if (!key || key.length !== 32) throw new DssssError('integrity', `${LOCAL_KEY_FILE} is not a 32-byte base64 key`, 60);
    return key;
  }
}
