// The certificates trusted to sign instance identity documents: AWS's published ones
// (bundled in aws-certs.json) plus any the operator adds, looked up the way a PKCS#7
// SignerInfo names its signer: by issuer and serial number.

import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import bundled from './aws-certs.json' with { type: 'json' };

export type SignerKeyType = 'rsa' | 'dsa';

export interface TrustedCertificate {
  /** The certificate's subject, for operators' eyes (log lines, errors about configuration). */
  readonly subject: string;
  readonly publicKey: KeyObject;
  readonly keyType: SignerKeyType;
}

/** The raw issuer Name and serial number of a certificate, as a SignerInfo quotes them. */
export interface IssuerAndSerial {
  readonly issuer: Uint8Array;
  readonly serial: Uint8Array;
}

/**
 * Parsed certificates by SHA-256 of their DER, for the process: a certificate is parsed once,
 * however many trust stores name it (AWS's ~40 took about 33 ms per store).
 */
const PARSED = new Map<string, { key: string; certificate: TrustedCertificate }>();

/** A certificate held as DER until a signer names it. */
interface Unparsed {
  readonly der: Buffer;
  readonly fingerprint: string;
  readonly index: number;
}

export class TrustStore {
  private constructor(
    private readonly bySigner: ReadonlyMap<string, readonly TrustedCertificate[]>,
    private readonly onDemand: readonly Unparsed[],
    /** How many distinct certificates the store holds. */
    readonly size: number,
  ) {}

  /**
   * Identical certificates count once; a malformed one or an unsupported key type throws.
   * `onDemandPems` (AWS's bundled set) are parsed only when a signer names them, so a first
   * login parses the one certificate it needs, not all ~40 (about 60 ms of a cold login).
   */
  static fromPems(pems: readonly string[], onDemandPems: readonly string[] = []): TrustStore {
    const seen = new Set<string>();
    const bySigner = new Map<string, TrustedCertificate[]>();
    pems.forEach((pem, index) => {
      const der = pemToDer(pem, index);
      const fingerprint = createHash('sha256').update(der).digest('hex');
      if (seen.has(fingerprint)) return;
      seen.add(fingerprint);
      const parsed = parseOnce(der, fingerprint, index);
      // Several certificates may share issuer and serial (or a key): keep every candidate.
      const candidates = bySigner.get(parsed.key) ?? [];
      candidates.push(parsed.certificate);
      bySigner.set(parsed.key, candidates);
    });
    const onDemand: Unparsed[] = [];
    onDemandPems.forEach((pem, i) => {
      const index = pems.length + i;
      const der = pemToDer(pem, index);
      const fingerprint = createHash('sha256').update(der).digest('hex');
      if (seen.has(fingerprint)) return;
      seen.add(fingerprint);
      onDemand.push({ der: Buffer.from(der.buffer, der.byteOffset, der.byteLength), fingerprint, index });
    });
    return new TrustStore(bySigner, onDemand, seen.size);
  }

  /** The trusted certificates a SignerInfo's issuer and serial number name; empty if none. */
  candidates(signer: IssuerAndSerial): readonly TrustedCertificate[] {
    const key = signerKey(signer);
    const found = this.bySigner.get(key) ?? [];
    if (this.onDemand.length === 0) return found;
    // A certificate's DER holds its issuer Name and serial number as they are signed: one
    // lacking either byte string cannot be the signer, and is left unparsed.
    const issuer = Buffer.from(signer.issuer);
    const serial = Buffer.from(withoutLeadingZeros(signer.serial));
    const more = this.onDemand
      .filter((entry) => entry.der.includes(issuer) && entry.der.includes(serial))
      .map((entry) => parseOnce(entry.der, entry.fingerprint, entry.index))
      .filter((parsed) => parsed.key === key)
      .map((parsed) => parsed.certificate);
    return more.length === 0 ? found : [...found, ...more];
  }
}

function parseOnce(der: Uint8Array, fingerprint: string, index: number): { key: string; certificate: TrustedCertificate } {
  let parsed = PARSED.get(fingerprint);
  if (!parsed) {
    parsed = { key: signerKey(certificateIssuerAndSerial(der, index)), certificate: trustedCertificate(der, index) };
    PARSED.set(fingerprint, parsed);
  }
  return parsed;
}

/** AWS's `pkcs7` and `rsa2048` certificates plus `extraPems` (new Regions, a development CA). */
export function awsTrustStore(extraPems: readonly string[] = []): TrustStore {
  // Extras first, so "certificate 2" in an error is the operator's second certificate.
  return TrustStore.fromPems(extraPems, [...Object.values(bundled.pkcs7), ...Object.values(bundled.rsa2048)]);
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into one PEM string per certificate; anything else in the text is an error. */
export function parsePemCertificates(text: string): string[] {
  const pems = [...text.matchAll(PEM_BLOCK)].map((match) => match[0]);
  if (text.replace(PEM_BLOCK, '').trim() !== '') {
    throw new Error('the certificate bundle holds text that is not a PEM "CERTIFICATE" block');
  }
  if (pems.length === 0) throw new Error('the certificate bundle holds no PEM "CERTIFICATE" block');
  pems.forEach((pem, index) => pemToDer(pem, index));
  return pems;
}

/** Issuer and serial number from a certificate's DER, read from the TBSCertificate as signed. */
export function certificateIssuerAndSerial(der: Uint8Array, index = 0): IssuerAndSerial {
  const bad = (why: string) => new Error(`certificate ${index + 1} is not an X.509 certificate: ${why}`);
  const parsed = asn1js.fromBER(der, { parseEmbedded: false });
  if (parsed.offset !== der.byteLength || parsed.result.error !== '') throw bad('not one DER structure');
  const certificate = parsed.result;
  if (!(certificate instanceof asn1js.Sequence)) throw bad('not a SEQUENCE');
  const tbs = certificate.valueBlock.value[0];
  if (!(tbs instanceof asn1js.Sequence)) throw bad('no TBSCertificate');
  const fields = [...tbs.valueBlock.value];
  // version is [0] EXPLICIT and absent in v1 certificates, like some of AWS's.
  if (fields[0]?.idBlock.tagClass === 3 && fields[0].idBlock.tagNumber === 0) fields.shift();
  const [serial, , issuer] = fields;
  if (!(serial instanceof asn1js.Integer)) throw bad('no serial number');
  if (!(issuer instanceof asn1js.Sequence)) throw bad('no issuer name');
  return { issuer: issuer.valueBeforeDecodeView.slice(), serial: serial.valueBlock.valueHexView.slice() };
}

function trustedCertificate(der: Uint8Array, index: number): TrustedCertificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(der);
  } catch {
    throw new Error(`certificate ${index + 1} cannot be read as an X.509 certificate`);
  }
  const publicKey = certificate.publicKey;
  const type = publicKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'dsa') {
    throw new Error(`certificate ${index + 1} has a ${type ?? 'unknown'} key; identity documents are signed with RSA or DSA`);
  }
  return { subject: certificate.subject.replace(/\n/g, ', '), publicKey, keyType: type };
}

function pemToDer(pem: string, index: number): Uint8Array {
  const match = /^\s*-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----\s*$/.exec(pem);
  const body = match?.[1]?.replace(/\s+/g, '') ?? '';
  const der = Buffer.from(body, 'base64');
  if (body === '' || der.toString('base64') !== body) {
    throw new Error(`certificate ${index + 1} is not a PEM "CERTIFICATE" block`);
  }
  return new Uint8Array(der.buffer, der.byteOffset, der.byteLength);
}

/** Serials compare as numbers: a leading zero byte (DER's sign padding) does not make another one. */
function signerKey({ issuer, serial }: IssuerAndSerial): string {
  return `${Buffer.from(issuer).toString('hex')}/${Buffer.from(withoutLeadingZeros(serial)).toString('hex')}`;
}

function withoutLeadingZeros(serial: Uint8Array): Uint8Array {
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start++;
  return serial.subarray(start);
}
