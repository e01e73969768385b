import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { DssssError } from '../../lambda/core/errors';
import { awsTrustStore, certificateIssuerAndSerial, TrustStore } from '../../lambda/identity/certs';
import { createDevCa, signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import { MAX_DOCUMENT_CHARS, verifyIdentityDocument } from '../../lambda/identity/pkcs7';
import { armoured, awsSigner, editGenuine, forgeDocument, GENUINE, genuineSignatureRange, IDENTITY, lines, OID, withSerialOf, type Forgery } from './forge';

const aws = awsTrustStore();

/** The refusal `verify` throws; fails the test if it accepts. */
function refusal(verify: () => unknown): DssssError {
  try {
    verify();
  } catch (err) {
    expect(err).toBeInstanceOf(DssssError);
    expect((err as DssssError).code).toBe('invalid_credentials');
    return err as DssssError;
  }
  throw new Error('the document was accepted');
}

function refuses(document: string, trust: TrustStore, message: RegExp): DssssError {
  const err = refusal(() => verifyIdentityDocument(document, trust));
  expect(err.message).toMatch(message);
  return err;
}

describe('verifyIdentityDocument: the genuine AWS document (DSA/SHA-1, BER, indefinite lengths)', () => {
  const expected = { instanceId: 'i-f79fe56c', accountId: '121659014334', region: 'us-east-1' };

  it('accepts it against the bundled AWS certificates and returns the identity inside', () => {
    expect(verifyIdentityDocument(GENUINE, aws)).toEqual({
      ...expected,
      pendingTime: '2016-04-08T03:01:38Z',
      availabilityZone: 'us-east-1a',
      imageId: 'ami-fce3c696',
      instanceType: 't2.micro',
      architecture: 'x86_64',
      privateIp: '172.30.0.252',
    });
  });

  it('accepts it inside PEM armour', () => {
    expect(verifyIdentityDocument(armoured(GENUINE), aws)).toMatchObject(expected);
    expect(verifyIdentityDocument(armoured(GENUINE, 'CMS'), aws)).toMatchObject(expected);
  });

  it('accepts it with line breaks every 64 characters, as IMDS serves it, and with CRLF', () => {
    expect(verifyIdentityDocument(lines(GENUINE).join('\n'), aws)).toMatchObject(expected);
    expect(verifyIdentityDocument(`${lines(GENUINE).join('\r\n')}\r\n`, aws)).toMatchObject(expected);
  });

  it('refuses it with one digit of the accountId changed inside the content', () => {
    const altered = editGenuine((bytes) => {
      const at = bytes.indexOf('"accountId" : "121659014334"');
      expect(at).toBeGreaterThan(0);
      bytes[at + '"accountId" : "'.length] = '2'.charCodeAt(0);
    });
    expect(Buffer.from(altered, 'base64').includes('"accountId" : "221659014334"')).toBe(true);
    refuses(altered, aws, /messageDigest attribute does not match the content/);
  });

  it('refuses it with the signature altered', () => {
    const { end } = genuineSignatureRange();
    const altered = editGenuine((bytes) => {
      bytes[end - 1]! ^= 0x01; // the last byte of s: the DER around it stays valid
    });
    refuses(altered, aws, /signature does not verify/);
  });

  it('refuses it when the trust store lacks AWS certificate: empty, or only the development CA', () => {
    refuses(GENUINE, TrustStore.fromPems([]), /no trusted certificate for the signer/);
    refuses(GENUINE, TrustStore.fromPems([createDevCa().certPem]), /no trusted certificate for the signer/);
  });

  it('refuses it with bytes after the PKCS#7 structure', () => {
    const document = Buffer.concat([Buffer.from(GENUINE, 'base64'), Buffer.from([0x05, 0x00])]).toString('base64');
    refuses(document, aws, /trailing bytes/);
  });

  it('refuses it truncated', () => {
    const bytes = Buffer.from(GENUINE, 'base64');
    for (const length of [bytes.length - 2, bytes.length - 60, 400, 20, 2]) {
      refuses(bytes.subarray(0, length).toString('base64'), aws, /not a PKCS#7 SignedData: not valid BER/);
    }
  });
});

describe('verifyIdentityDocument: documents from the development CA (RSA-2048/SHA-256, like the rsa2048 endpoint)', () => {
  let ca: DevCa;
  let trusted: TrustStore;
  const document = { ...IDENTITY, pendingTime: '2026-11-24T00:00:00Z', imageId: null, kernelId: null };

  beforeAll(() => {
    ca = createDevCa();
    trusted = awsTrustStore([ca.certPem]);
  });

  it('accepts one when the development CA certificate is in the store', () => {
    expect(verifyIdentityDocument(signIdentityDocument(document, ca), trusted)).toEqual({ ...IDENTITY, pendingTime: '2026-11-24T00:00:00Z' });
  });

  it('accepts one digested with SHA-1', () => {
    expect(verifyIdentityDocument(signIdentityDocument(document, ca, { digest: 'sha1' }), trusted)).toMatchObject(IDENTITY);
  });

  it('refuses one when the development CA certificate is not in the store', () => {
    refuses(signIdentityDocument(document, ca), aws, /no trusted certificate for the signer/);
  });

  it('refuses one that carries its own certificate, though that certificate verifies it', () => {
    const untrusted = createDevCa();
    const carrying = signIdentityDocument(document, untrusted, { embedCertificate: true });
    // The embedded certificate would verify it: a store that trusts the certificate accepts it.
    expect(verifyIdentityDocument(carrying, awsTrustStore([untrusted.certPem]))).toMatchObject(IDENTITY);
    refuses(carrying, trusted, /no trusted certificate for the signer/);
  });

  it('tries every trusted certificate that shares the signer issuer and serial number', () => {
    const twin = createDevCa();
    const store = TrustStore.fromPems([ca.certPem, withSerialOf(twin.certPem, ca.certPem)]);
    const signer = certificateIssuerAndSerial(new Uint8Array(new X509Certificate(ca.certPem).raw));
    expect(verifyIdentityDocument(forgeDocument({ key: keyOf(twin), signer }), store)).toEqual(IDENTITY);
    expect(verifyIdentityDocument(signIdentityDocument(document, ca), store)).toMatchObject(IDENTITY);
  });

  it('refuses one signed by another key under the development CA issuer and serial', () => {
    const impostor = createDevCa();
    const signer = certificateIssuerAndSerial(new Uint8Array(new X509Certificate(ca.certPem).raw));
    refuses(forgeDocument({ key: keyOf(impostor), signer }), trusted, /signature does not verify/);
  });
});

describe('verifyIdentityDocument: forgeries under AWS certificates', () => {
  const dsaKey = generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey;
  const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const defaultSigner = awsSigner('pkcs7', 'default');
  const rsaSigner = awsSigner('rsa2048', 'us-east-1');
  const forge = (f: Partial<Forgery>) => forgeDocument({ key: dsaKey, signer: defaultSigner, ...f });

  it('refuses a DSA document that names AWS issuer and serial but is signed by another key', () => {
    refuses(forge({}), aws, /signature does not verify/);
  });

  it('refuses an RSA-2048/SHA-256 document that names an AWS rsa2048 certificate but is signed by another key', () => {
    refuses(forge({ key: rsaKey, signer: rsaSigner }), aws, /signature does not verify/);
  });

  it('refuses an RSA signature that names AWS DSA certificate', () => {
    refuses(forge({ key: rsaKey }), aws, /signature algorithm does not match the trusted certificate's key type/);
  });

  it('refuses a signer named by subject key identifier', () => {
    refuses(forge({ signer: 'subjectKeyIdentifier' }), aws, /issuer and serial number are required/);
  });

  it('refuses a document with no signed attributes (a signature over the content itself)', () => {
    refuses(forge({ signedAttrs: 'none' }), aws, /no signed attributes/);
  });

  it('refuses a document with two signers', () => {
    refuses(forge({ signerCount: 2 }), aws, /2 signers; exactly one/);
  });

  it('refuses a digest algorithm other than SHA-1 and SHA-256', () => {
    refuses(forge({ digestOid: OID.sha512 }), aws, /digest algorithm is not SHA-1 or SHA-256/);
  });

  it('refuses a ContentInfo that is not signedData', () => {
    refuses(forge({ contentInfoType: OID.envelopedData }), aws, /not a PKCS#7 SignedData: the content type is not signedData/);
  });

  it('refuses signed content that is not id-data', () => {
    refuses(forge({ eContentType: OID.signedData }), aws, /signed content is not of type id-data/);
  });
});

describe('verifyIdentityDocument: the rules after the signature, with a trusted key', () => {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  let ca: DevCa;
  let trust: TrustStore;
  let forge: (f: Partial<Forgery>) => string;

  beforeAll(() => {
    ca = createDevCa();
    trust = TrustStore.fromPems([ca.certPem]);
    const signer = certificateIssuerAndSerial(new Uint8Array(new X509Certificate(ca.certPem).raw));
    forge = (f) => forgeDocument({ key: keyOf(ca), signer, ...f });
  });

  it('accepts what the forger makes when nothing is wrong (so the refusals below are about their one change)', () => {
    expect(verifyIdentityDocument(forge({}), trust)).toEqual(IDENTITY);
  });

  it('accepts content that BER splits into OCTET STRING pieces, nested or not', () => {
    expect(verifyIdentityDocument(forge({ contentLayout: 'split' }), trust)).toEqual(IDENTITY);
    expect(verifyIdentityDocument(forge({ contentLayout: 'nested' }), trust)).toEqual(IDENTITY);
  });

  it('accepts signed attributes sent with indefinite length, verifying their DER', () => {
    expect(verifyIdentityDocument(forge({ signedAttrs: 'indefinite' }), trust)).toEqual(IDENTITY);
  });

  it('refuses a messageDigest of other content', () => {
    refuses(forge({ messageDigestOf: Buffer.from('{}') }), trust, /messageDigest attribute does not match the content/);
  });

  it('refuses a contentType attribute other than id-data', () => {
    refuses(forge({ contentTypeAttribute: OID.signedData }), trust, /contentType attribute is not id-data/);
  });

  it('refuses a signature algorithm that contradicts the digest algorithm', () => {
    refuses(forge({ signatureOid: '1.2.840.113549.1.1.5', digest: 'sha256' }), trust, /signature algorithm and the digest algorithm disagree/);
  });

  it('refuses content that is not JSON, not UTF-8, or not an object', () => {
    refuses(forge({ content: 'instanceId=i-0123456789abcdef0' }), trust, /not UTF-8 JSON/);
    refuses(forge({ content: Buffer.from([0x7b, 0xff, 0x7d]) }), trust, /not UTF-8 JSON/);
    refuses(forge({ content: '["i-0123456789abcdef0"]' }), trust, /not a JSON object/);
  });

  it.each([
    ['instanceId', { instanceId: 'i-XYZ' }],
    ['instanceId', { instanceId: 'i-0123456789abcdef01' }],
    ['instanceId', { instanceId: 12345678 }],
    ['accountId', { accountId: '11112222333' }],
    ['accountId', { accountId: '111122223333 ' }],
    ['region', { region: 'Mars' }],
    ['region', { region: undefined }],
    ['pendingTime', { pendingTime: 1 }],
  ])('refuses a document whose %s is malformed: %j', (field, change) => {
    refuses(forge({ content: JSON.stringify({ ...IDENTITY, ...change }) }), trust, new RegExp(`document's ${field} is missing or malformed`));
  });

  it('maps AWS nulls to absent fields and ignores fields it does not know', () => {
    const content = JSON.stringify({ ...IDENTITY, privateIp: null, architecture: 'arm64', kernelId: null, billingProducts: null });
    expect(verifyIdentityDocument(forge({ content }), trust)).toEqual({ ...IDENTITY, architecture: 'arm64' });
  });
});

describe('verifyIdentityDocument: input handling', () => {
  it.each([
    ['empty input', '', /empty/],
    ['whitespace', ' \n ', /empty/],
    ['characters outside base64', `${GENUINE.slice(0, 100)}!${GENUINE.slice(101)}`, /not valid base64/],
    ['base64url', GENUINE.replace(/\+/g, '-').replace(/\//g, '_'), /not valid base64/],
    ['missing padding', GENUINE.replace(/=+$/, ''), /not valid base64/],
    ['non-zero spare bits', `${GENUINE.slice(0, -3)}B==`, /not valid base64/],
    ['unclosed PEM armour', `-----BEGIN PKCS7-----\n${GENUINE}\n`, /malformed PEM armour/],
    ['mismatched PEM armour', `-----BEGIN PKCS7-----\n${GENUINE}\n-----END CMS-----`, /malformed PEM armour/],
    ['text', Buffer.from('{"instanceId": "i-0123456789abcdef0"}').toString('base64'), /not a PKCS#7 SignedData/],
    ['hash bytes', createHash('sha512').update('garbage').digest('base64'), /not a PKCS#7 SignedData|trailing bytes/],
    ['an indefinite length cut off before its end-of-contents', Buffer.from([0x30, 0x80]).toString('base64'), /not valid BER/],
    ['a lone SEQUENCE', Buffer.from([0x30, 0x00]).toString('base64'), /not a PKCS#7 SignedData/],
    ['an X.509 certificate', certificateBase64(), /not a PKCS#7 SignedData/],
  ])('refuses %s', (_name, input, message) => {
    refuses(input, awsTrustStore(), message);
  });

  it(`refuses input longer than ${MAX_DOCUMENT_CHARS} characters before decoding it`, () => {
    const padded = `${lines(GENUINE).join('\n')}${' '.repeat(MAX_DOCUMENT_CHARS)}`;
    refuses(padded, awsTrustStore(), /longer than 16384 characters/);
  });

  it('never quotes the input, its content or its signature in a refusal', () => {
    const signature = Buffer.from(GENUINE, 'base64').subarray(genuineSignatureRange().start, genuineSignatureRange().end);
    const inputs = [
      GENUINE,
      editGenuine((bytes) => {
        bytes[bytes.indexOf('121659014334')] = '3'.charCodeAt(0);
      }),
      editGenuine((bytes) => {
        bytes[genuineSignatureRange().end - 1]! ^= 0x01;
      }),
      `${GENUINE.slice(0, 200)}*${GENUINE.slice(201)}`,
      GENUINE.slice(0, 400),
    ];
    for (const input of inputs) {
      const { message } = refusal(() => verifyIdentityDocument(input, TrustStore.fromPems([])));
      expect(message.length).toBeLessThan(160);
      for (const secret of [input.slice(0, 24), input.slice(-24), '121659014334', '1216590143', 'i-f79fe56c', signature.toString('hex').slice(0, 16), signature.toString('base64').slice(0, 16)]) {
        expect(message).not.toContain(secret);
      }
    }
  });
});

function keyOf(ca: DevCa): KeyObject {
  return createPrivateKey(ca.keyPem);
}

function certificateBase64(): string {
  return Buffer.from(new X509Certificate(createDevCa().certPem).raw).toString('base64');
}
