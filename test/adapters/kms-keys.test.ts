import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { KmsKeyWrapper } from '../../lambda/adapters/kms-keys';

const kms = mockClient(KMSClient);
const wrapper = new KmsKeyWrapper(new KMSClient({ region: 'us-east-1' }), 'arn:aws:kms:us-east-1:111122223333:key/k', '/dssss/');
const err = (name: string) => Object.assign(new Error(name), { name, $metadata: {} });

beforeEach(() => kms.reset());

describe('KMS key wrapper', () => {
  it('generates an AES-256 data key under the deployment\'s encryption context', async () => {
    const plaintext = new Uint8Array(32).fill(7);
    kms.on(GenerateDataKeyCommand).resolves({ Plaintext: plaintext, CiphertextBlob: new Uint8Array([1, 2, 3]) });
    expect(await wrapper.generateDataKey()).toEqual({ plaintext, wrapped: 'AQID' });
    expect(kms.commandCalls(GenerateDataKeyCommand)[0]!.args[0].input).toEqual({
      KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
      KeySpec: 'AES_256',
      EncryptionContext: { 'dssss:prefix': '/dssss/' },
    });
  });

  it('decrypts with the same key and context', async () => {
    kms.on(DecryptCommand).resolves({ Plaintext: new Uint8Array(32) });
    expect(await wrapper.unwrap('AQID')).toHaveLength(32);
    expect(kms.commandCalls(DecryptCommand)[0]!.args[0].input).toEqual({
      CiphertextBlob: new Uint8Array([1, 2, 3]),
      KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
      EncryptionContext: { 'dssss:prefix': '/dssss/' },
    });
  });

  it('refuses a blob that is not canonical base64 without calling KMS', async () => {
    await expect(wrapper.unwrap('AQID!')).rejects.toMatchObject({ code: 'integrity' });
    expect(kms.calls()).toHaveLength(0);
  });

  it('reports a blob from another key or context as an integrity failure', async () => {
    kms.on(DecryptCommand).rejects(err('InvalidCiphertextException'));
    await expect(wrapper.unwrap('AQID')).rejects.toMatchObject({ code: 'integrity' });
  });

  it('maps throttling to 429 and outages to 503', async () => {
    kms.on(GenerateDataKeyCommand).rejects(err('ThrottlingException'));
    await expect(wrapper.generateDataKey()).rejects.toMatchObject({ code: 'rate_limited' });
    kms.on(DecryptCommand).rejects(err('KMSInternalException'));
    await expect(wrapper.unwrap('AQID')).rejects.toMatchObject({ code: 'unavailable' });
  });
});
