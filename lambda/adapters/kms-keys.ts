// KeyWrapper on KMS: the seal key is a KMS data key, stored only as its ciphertext blob.
// The encryption context names the deployment, so a blob from another deployment (or any
// other use of the same KMS key) does not decrypt here.

import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DssssError } from '../core/errors';
import { decodeStrict, encode } from '../core/b64';
import type { KeyWrapper } from '../ports';
import { dependencyError, errorName } from './aws-errors';

const WHAT = 'KMS';

export { KMSClient };

export class KmsKeyWrapper implements KeyWrapper {
  private readonly context: Record<string, string>;

  constructor(
    private readonly kms: Pick<KMSClient, 'send'>,
    private readonly keyId: string,
    /** The parameter prefix: it names the deployment. */
    deployment: string,
  ) {
    this.context = { 'dssss:prefix': deployment };
  }

  async generateDataKey(): Promise<{ plaintext: Uint8Array; wrapped: string }> {
    try {
      const out = await this.kms.send(
        new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: this.context }),
      );
      if (!out.Plaintext || !out.CiphertextBlob) throw new DssssError('unavailable', `${WHAT} returned no data key`, 1);
      return { plaintext: out.Plaintext, wrapped: encode(out.CiphertextBlob, 'base64') };
    } catch (err) {
      throw dependencyError(err, WHAT);
    }
  }

  async unwrap(wrapped: string): Promise<Uint8Array> {
    const blob = decodeStrict(wrapped, 'base64');
    if (!blob) throw new DssssError('integrity', 'the stored seal key is not valid base64', 60);
    try {
      const out = await this.kms.send(
        new DecryptCommand({ CiphertextBlob: blob, KeyId: this.keyId, EncryptionContext: this.context }),
      );
      if (!out.Plaintext) throw new DssssError('unavailable', `${WHAT} returned no plaintext`, 1);
      return out.Plaintext;
    } catch (err) {
      if (errorName(err) === 'InvalidCiphertextException' || errorName(err) === 'IncorrectKeyException') {
        throw new DssssError('integrity', 'the stored seal key does not decrypt with this deployment\'s KMS key and context', 60);
      }
      throw dependencyError(err, WHAT);
    }
  }
}
