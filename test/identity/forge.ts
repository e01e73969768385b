// Test helpers for identity documents: the genuine AWS sample and edits of its bytes, and a
// PKCS#7 builder with a knob for every rule the verifier enforces, to forge what it must refuse.
// Independent of lambda/identity/dev-ca.ts on purpose: two encoders, one verifier.

import { createHash, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as asn1js from 'asn1js';
import bundled from '../../lambda/identity/aws-certs.json' with { type: 'json' };
import { certificateIssuerAndSerial, type IssuerAndSerial } from '../../lambda/identity/certs';

/** A document as EC2's `pkcs7` endpoint served it: us-east-1, i-f79fe56c, 2016, DSA/SHA-1. */
export const GENUINE = readFileSync(new URL('../fixtures/us-east-1-2016.pkcs7.b64', import.meta.url), 'utf8').trim();

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha512: '2.16.840.1.101.3.4.2.3',
  dsaWithSha1: '1.2.840.10040.4.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
} as const;

/** The issuer and serial number of a bundled AWS certificate, as a SignerInfo names it. */
export function awsSigner(set: 'pkcs7' | 'rsa2048', region: string): IssuerAndSerial {
  const pems: Record<string, string> = bundled[set];
  const pem = pems[region];
  if (pem === undefined) throw new Error(`no bundled ${set} certificate for ${region}`);
  return certificateIssuerAndSerial(new Uint8Array(new X509Certificate(pem).raw));
}

/** The genuine sample with its decoded bytes edited in place; base64 again. */
export function editGenuine(edit: (bytes: Buffer) => void): string {
  const bytes = Buffer.from(GENUINE, 'base64');
  edit(bytes);
  return bytes.toString('base64');
}

/** Where the genuine sample's signature value sits in its bytes. */
export function genuineSignatureRange(): { start: number; end: number } {
  const bytes = Buffer.from(GENUINE, 'base64');
  const root = asn1js.fromBER(bytes, { parseEmbedded: false }).result as asn1js.Sequence;
  const signedData = (root.valueBlock.value[1] as asn1js.Constructed).valueBlock.value[0] as asn1js.Sequence;
  const signerInfos = signedData.valueBlock.value[signedData.valueBlock.value.length - 1] as asn1js.Set;
  const signerInfo = signerInfos.valueBlock.value[0] as asn1js.Sequence;
  const signature = signerInfo.valueBlock.value[5] as asn1js.OctetString;
  const value = Buffer.from(signature.valueBlock.valueHexView);
  const start = bytes.indexOf(value);
  return { start, end: start + value.length };
}

/**
 * `pem` with its serial number replaced by `serialOf`'s (same length), so two certificates share
 * issuer and serial. Its own signature goes stale, which a trust store never checks.
 */
export function withSerialOf(pem: string, serialOf: string): string {
  const der = (text: string) => new Uint8Array(new X509Certificate(text).raw);
  const bytes = Buffer.from(der(pem));
  const from = Buffer.from(certificateIssuerAndSerial(der(pem)).serial);
  const to = Buffer.from(certificateIssuerAndSerial(der(serialOf)).serial);
  if (to.length !== from.length) throw new Error('serial numbers of different lengths');
  to.copy(bytes, bytes.indexOf(from));
  return `-----BEGIN CERTIFICATE-----\n${lines(bytes.toString('base64')).join('\n')}\n-----END CERTIFICATE-----\n`;
}

export function armoured(base64: string, label = 'PKCS7'): string {
  return `-----BEGIN ${label}-----\n${lines(base64).join('\n')}\n-----END ${label}-----\n`;
}

export function lines(base64: string, width = 64): string[] {
  return base64.match(new RegExp(`.{1,${width}}`, 'g')) ?? [];
}

export const IDENTITY = {
  instanceId: 'i-0123456789abcdef0',
  accountId: '111122223333',
  region: 'eu-west-1',
};

export interface Forgery {
  /** The private key that signs. DSA keys sign dsa-with-sha1, RSA keys rsaEncryption. */
  readonly key: KeyObject;
  /** Whom the SignerInfo names; `subjectKeyIdentifier` names it the other way CMS allows. */
  readonly signer: IssuerAndSerial | 'subjectKeyIdentifier';
  readonly content?: string | Uint8Array;
  /** How BER lays out the content: one OCTET STRING, several, or pieces nested two deep. */
  readonly contentLayout?: 'whole' | 'split' | 'nested';
  readonly digest?: 'sha1' | 'sha256';
  readonly digestOid?: string;
  readonly signatureOid?: string;
  readonly contentInfoType?: string;
  readonly eContentType?: string;
  readonly contentTypeAttribute?: string;
  /** The messageDigest attribute is the digest of these bytes instead of the content. */
  readonly messageDigestOf?: Uint8Array;
  /** `none`: PKCS#7 allows signing the content itself, which the verifier refuses. */
  readonly signedAttrs?: 'definite' | 'indefinite' | 'none';
  readonly certificates?: readonly Uint8Array[];
  readonly signerCount?: number;
}

/** A SignedData, base64, shaped like IMDS's (indefinite lengths) unless a knob says otherwise. */
export function forgeDocument(f: Forgery): string {
  const dsa = f.key.asymmetricKeyType === 'dsa';
  const digest = f.digest ?? (dsa ? 'sha1' : 'sha256');
  const content = typeof f.content === 'string' ? Buffer.from(f.content) : Buffer.from(f.content ?? JSON.stringify(IDENTITY, null, 2));
  const digestAlgorithm = algorithm(f.digestOid ?? (digest === 'sha1' ? OID.sha1 : OID.sha256), true);

  const attributes = [
    attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: f.contentTypeAttribute ?? OID.data })),
    attribute(OID.signingTime, new asn1js.UTCTime({ valueDate: new Date() })),
    attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: createHash(digest).update(f.messageDigestOf ?? content).digest() })),
  ]
    .map((block) => ({ block, der: Buffer.from(block.toBER()) }))
    .sort((a, b) => Buffer.compare(a.der, b.der))
    .map(({ block }) => block);
  const mode = f.signedAttrs ?? 'definite';
  const signedBytes = mode === 'none' ? content : Buffer.from(new asn1js.Set({ value: attributes }).toBER());
  const signature = sign(digest, signedBytes, f.key);

  const sid =
    f.signer === 'subjectKeyIdentifier'
      ? new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: new Uint8Array(20) })
      : new asn1js.Sequence({ value: [parsed(f.signer.issuer), new asn1js.Integer({ valueHex: f.signer.serial })] });
  const signedAttrs =
    mode === 'none'
      ? []
      : [new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, lenBlock: { isIndefiniteForm: mode === 'indefinite' }, value: attributes })];
  const signerInfo = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      sid,
      digestAlgorithm,
      ...signedAttrs,
      algorithm(f.signatureOid ?? (dsa ? OID.dsaWithSha1 : OID.rsaEncryption), !dsa),
      new asn1js.OctetString({ valueHex: signature }),
    ],
  });

  const indefinite = { isIndefiniteForm: true };
  const certificates = f.certificates?.length
    ? [new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: f.certificates.map(parsed) })]
    : [];
  const signedData = new asn1js.Sequence({
    lenBlock: indefinite,
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [digestAlgorithm] }),
      new asn1js.Sequence({
        lenBlock: indefinite,
        value: [
          new asn1js.ObjectIdentifier({ value: f.eContentType ?? OID.data }),
          new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, lenBlock: indefinite, value: [octetString(content, f.contentLayout ?? 'whole')] }),
        ],
      }),
      ...certificates,
      new asn1js.Set({ value: Array.from({ length: f.signerCount ?? 1 }, () => signerInfo) }),
    ],
  });
  const contentInfo = new asn1js.Sequence({
    lenBlock: indefinite,
    value: [
      new asn1js.ObjectIdentifier({ value: f.contentInfoType ?? OID.signedData }),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, lenBlock: indefinite, value: [signedData] }),
    ],
  });
  return Buffer.from(contentInfo.toBER()).toString('base64');
}

function octetString(content: Uint8Array, layout: 'whole' | 'split' | 'nested'): asn1js.OctetString {
  const piece = (bytes: Uint8Array) => new asn1js.OctetString({ valueHex: bytes });
  const constructed = (value: asn1js.OctetString[]) => new asn1js.OctetString({ isConstructed: true, isIndefiniteForm: true, value });
  const third = Math.ceil(content.length / 3);
  const [a, b, c] = [content.subarray(0, third), content.subarray(third, 2 * third), content.subarray(2 * third)];
  if (layout === 'whole') return constructed([piece(content)]);
  if (layout === 'split') return constructed([piece(a), piece(b), piece(c)]);
  return constructed([piece(a), constructed([piece(b), constructed([piece(c)])])]);
}

function algorithm(oid: string, withNull: boolean): asn1js.Sequence {
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), ...(withNull ? [new asn1js.Null()] : [])] });
}

function attribute(type: string, value: asn1js.BaseBlock): asn1js.Sequence {
  return new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), new asn1js.Set({ value: [value] })] });
}

function parsed(der: Uint8Array): asn1js.BaseBlock {
  return asn1js.fromBER(der, { parseEmbedded: false }).result;
}
