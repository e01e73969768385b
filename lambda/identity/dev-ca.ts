// The local development CA: a self-signed RSA certificate whose key signs identity documents
// in the shape of AWS's `rsa2048` endpoint, so `dssss dev identity` can log in to a local
// server. Local mode and tests only: nothing on the Lambda path imports it.

import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { certificateIssuerAndSerial } from './certs';

export interface DevCa {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface SignOptions {
  /** Put the CA certificate in the document's `certificates` field, which verifiers must ignore. */
  readonly embedCertificate?: boolean;
  readonly digest?: 'sha256' | 'sha1';
}

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  contentType: '1.2.840.113549.1.9.3',
  signingTime: '1.2.840.113549.1.9.5',
  messageDigest: '1.2.840.113549.1.9.4',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
} as const;

const DAY_MS = 24 * 60 * 60 * 1000;

export function createDevCa(): DevCa {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40; // positive, and all 16 bytes significant
  const name = new asn1js.Sequence({
    value: [rdn(OID.organization, 'dssss'), rdn(OID.commonName, 'dssss local development CA')],
  });
  const now = Date.now();
  const tbs = new asn1js.Sequence({
    value: [
      explicit(0, new asn1js.Integer({ value: 2 })), // v3
      new asn1js.Integer({ valueHex: serial }),
      algorithmIdentifier(OID.sha256WithRSA),
      name,
      new asn1js.Sequence({ value: [time(new Date(now - DAY_MS)), time(new Date(now + 3653 * DAY_MS))] }),
      name,
      reencoded(publicKey.export({ type: 'spki', format: 'der' })),
      explicit(
        3,
        new asn1js.Sequence({
          value: [
            extension(OID.basicConstraints, new asn1js.Sequence({ value: [new asn1js.Boolean({ value: true })] })),
            // digitalSignature (bit 0: it signs documents itself), keyCertSign (5), cRLSign (6).
            extension(OID.keyUsage, new asn1js.BitString({ valueHex: new Uint8Array([0x86]), unusedBits: 1 })),
          ],
        }),
      ),
    ],
  });
  const tbsDer = new Uint8Array(tbs.toBER());
  const certificate = new asn1js.Sequence({
    value: [
      tbs,
      algorithmIdentifier(OID.sha256WithRSA),
      new asn1js.BitString({ valueHex: sign('sha256', tbsDer, privateKey) }),
    ],
  });
  return {
    certPem: pem('CERTIFICATE', new Uint8Array(certificate.toBER())),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/**
 * A PKCS#7 SignedData over `doc` as pretty-printed JSON, laid out like an IMDS document:
 * indefinite-length BER, content in a constructed OCTET STRING, signed attributes
 * contentType, signingTime and messageDigest, an RSA signature, the signer named by the CA
 * certificate's issuer and serial number. Base64 on one line, without armour.
 */
export function signIdentityDocument(doc: object, ca: DevCa, opts: SignOptions = {}): string {
  const digest = opts.digest ?? 'sha256';
  const key = createPrivateKey(ca.keyPem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error('the development CA signs with an RSA key');
  const certDer = new Uint8Array(new X509Certificate(ca.certPem).raw);
  const { issuer, serial } = certificateIssuerAndSerial(certDer);
  const content = Buffer.from(JSON.stringify(doc, null, 2), 'utf8');
  const digestAlgorithm = algorithmIdentifier(digest === 'sha256' ? OID.sha256 : OID.sha1);

  const attributes = sortedByEncoding([
    attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: OID.data })),
    attribute(OID.signingTime, new asn1js.UTCTime({ valueDate: new Date() })),
    attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: createHash(digest).update(content).digest() })),
  ]);
  // Signed as a DER SET; carried under the [0] IMPLICIT tag.
  const signature = sign(digest, new Uint8Array(new asn1js.Set({ value: attributes }).toBER()), key);

  const signerInfo = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Sequence({ value: [reencoded(issuer), new asn1js.Integer({ valueHex: serial })] }),
      digestAlgorithm,
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: attributes }),
      algorithmIdentifier(OID.rsaEncryption),
      new asn1js.OctetString({ valueHex: signature }),
    ],
  });
  const indefinite = { isIndefiniteForm: true };
  const encapContentInfo = new asn1js.Sequence({
    lenBlock: indefinite,
    value: [
      new asn1js.ObjectIdentifier({ value: OID.data }),
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        lenBlock: indefinite,
        value: [new asn1js.OctetString({ isConstructed: true, isIndefiniteForm: true, value: [new asn1js.OctetString({ valueHex: content })] })],
      }),
    ],
  });
  const certificates = opts.embedCertificate
    ? [new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [reencoded(certDer)] })]
    : [];
  const signedData = new asn1js.Sequence({
    lenBlock: indefinite,
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [digestAlgorithm] }),
      encapContentInfo,
      ...certificates,
      new asn1js.Set({ value: [signerInfo] }),
    ],
  });
  const contentInfo = new asn1js.Sequence({
    lenBlock: indefinite,
    value: [
      new asn1js.ObjectIdentifier({ value: OID.signedData }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, lenBlock: indefinite, value: [signedData] }),
    ],
  });
  return Buffer.from(contentInfo.toBER()).toString('base64');
}

function rdn(type: string, value: string): asn1js.Set {
  return new asn1js.Set({
    value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), new asn1js.Utf8String({ value })] })],
  });
}

function algorithmIdentifier(oid: string): asn1js.Sequence {
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), new asn1js.Null()] });
}

function attribute(type: string, value: asn1js.BaseBlock): asn1js.Sequence {
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), new asn1js.Set({ value: [value] })] });
}

function extension(type: string, value: asn1js.BaseBlock): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      new asn1js.ObjectIdentifier({ value: type }),
      new asn1js.Boolean({ value: true }), // critical
      new asn1js.OctetString({ valueHex: value.toBER() }),
    ],
  });
}

function explicit(tag: number, value: asn1js.BaseBlock): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: tag }, value: [value] });
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime after. */
function time(date: Date): asn1js.UTCTime | asn1js.GeneralizedTime {
  return date.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate: date }) : new asn1js.GeneralizedTime({ valueDate: date });
}

/** DER orders a SET OF by the members' encodings. */
function sortedByEncoding(blocks: asn1js.BaseBlock[]): asn1js.BaseBlock[] {
  return blocks
    .map((block) => ({ block, der: Buffer.from(block.toBER()) }))
    .sort((a, b) => Buffer.compare(a.der, b.der))
    .map(({ block }) => block);
}

/** DER made by someone else (a public key, a name, a certificate) as a node to nest, checked to re-encode unchanged. */
function reencoded(der: Uint8Array): asn1js.BaseBlock {
  const parsed = asn1js.fromBER(der, { parseEmbedded: false });
  if (parsed.offset !== der.byteLength || parsed.result.error !== '' || Buffer.compare(Buffer.from(parsed.result.toBER()), der) !== 0) {
    throw new Error('the development CA cannot re-encode a DER structure unchanged');
  }
  return parsed.result;
}

function pem(label: string, der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
