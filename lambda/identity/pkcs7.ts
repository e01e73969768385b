// Verifies an EC2 instance identity document as IMDS serves it (`.../pkcs7` or `.../rsa2048`):
// base64 of a BER PKCS#7 SignedData, signed by a certificate in the TrustStore, never by one
// the document carries. Returns the identity inside; every refusal is `invalid_credentials`.

import { createHash, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as z from 'zod/mini';
import { decodeStrict } from '../core/b64';
import { DssssError, invalidCredentials } from '../core/errors';
import type { IssuerAndSerial, SignerKeyType, TrustStore } from './certs';

/** The document itself is refused: reason `bad_document` unless a finer one is given. */
const badDocument = (message: string, reason = 'bad_document') => invalidCredentials(message, reason);

export interface IdentityDocument {
  instanceId: string;
  accountId: string;
  region: string;
  pendingTime?: string;
  availabilityZone?: string;
  imageId?: string;
  instanceType?: string;
  architecture?: string;
  privateIp?: string;
}

/** Genuine documents are 1-3 KiB of base64; the cap bounds parsing work before anything is checked. */
export const MAX_DOCUMENT_CHARS = 16 * 1024;

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  contentTypeAttr: '1.2.840.113549.1.9.3',
  messageDigestAttr: '1.2.840.113549.1.9.4',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

type Digest = 'sha1' | 'sha256';

const DIGESTS: Readonly<Record<string, Digest>> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
};

/** Signature algorithms: the key type they need and, where the OID names one, the digest. */
const SIGNATURES: Readonly<Record<string, { keyType: SignerKeyType; digest?: Digest }>> = {
  '1.2.840.10040.4.3': { keyType: 'dsa', digest: 'sha1' }, // dsa-with-sha1: AWS's `pkcs7` documents
  '1.2.840.10040.4.1': { keyType: 'dsa', digest: 'sha1' }, // id-dsa, as some signers label it
  '1.2.840.113549.1.1.1': { keyType: 'rsa' }, // rsaEncryption: AWS's `rsa2048` documents
  '1.2.840.113549.1.1.5': { keyType: 'rsa', digest: 'sha1' },
  '1.2.840.113549.1.1.11': { keyType: 'rsa', digest: 'sha256' },
};

export function verifyIdentityDocument(input: string, trust: TrustStore): IdentityDocument {
  const der = decodeDocument(input);
  try {
    const { content, signer } = readSignedData(der);
    verifySigner(signer, content, trust);
    return parseIdentity(content);
  } catch (err) {
    if (err instanceof DssssError) throw err;
    // A parser surprise on hostile input is a refusal, not a server error.
    throw badDocument('the identity document is not a readable PKCS#7 SignedData');
  }
}

/** PEM armour and line breaks are optional; the base64 itself must be canonical. */
function decodeDocument(input: string): Uint8Array {
  if (input.length > MAX_DOCUMENT_CHARS) {
    throw badDocument(`the identity document is longer than ${MAX_DOCUMENT_CHARS} characters`);
  }
  let text = input.trim();
  const armour = /^-----BEGIN (PKCS7|PKCS #7 SIGNED DATA|CMS)-----([^-]*)-----END \1-----$/.exec(text);
  if (armour) text = armour[2] ?? '';
  else if (text.startsWith('-----')) throw badDocument('the identity document has malformed PEM armour');
  text = text.replace(/[ \t\r\n]+/g, '');
  if (text === '') throw badDocument('the identity document is empty');
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? decodeStrict(text, 'base64') : undefined;
  if (bytes === undefined) throw badDocument('the identity document is not valid base64');
  return bytes;
}

/** The content and the one SignerInfo, after checking the structure around them; nothing trusted yet. */
function readSignedData(der: Uint8Array): { content: Uint8Array; signer: Signer } {
  const parsed = asn1js.fromBER(der, { parseEmbedded: false, maxDepth: 32 });
  if (parsed.offset === -1 || parsed.result.error !== '' || !indefiniteLengthsEnd(parsed.result)) throw notSignedData('not valid BER');
  if (parsed.offset !== der.byteLength) throw badDocument('the identity document has trailing bytes after the PKCS#7 structure');

  const [contentType, explicitContent, ...restOfContentInfo] = elements(parsed.result, asn1js.Sequence, 'ContentInfo');
  if (oid(contentType, 'contentType') !== OID.signedData) throw notSignedData('the content type is not signedData');
  if (restOfContentInfo.length > 0 || !isContext(explicitContent, 0)) throw notSignedData('ContentInfo has no [0] content');
  const [signedDataNode, ...extra] = explicitContent.valueBlock.value;
  if (extra.length > 0) throw notSignedData('ContentInfo has more than one content');

  // The `certificates` and `crls` fields sit between encapContentInfo and signerInfos; they are
  // skipped unread, because a certificate the document brings proves nothing about its signer.
  const signedData = elements(signedDataNode, asn1js.Sequence, 'SignedData');
  const [version, digestAlgorithms, encapContentInfo] = signedData;
  const signerInfos = signedData[signedData.length - 1];
  if (!(version instanceof asn1js.Integer) || !(digestAlgorithms instanceof asn1js.Set) || signedData.length < 4) {
    throw notSignedData('SignedData is missing fields');
  }
  if (!signedData.slice(3, -1).every((node) => isContext(node, 0) || isContext(node, 1))) {
    throw notSignedData('SignedData has unexpected fields');
  }
  const content = encapsulatedContent(encapContentInfo);

  const signers = elements(signerInfos, asn1js.Set, 'signerInfos');
  if (signers.length !== 1) throw badDocument(`the identity document has ${signers.length} signers; exactly one is required`);
  return { content, signer: signerInfo(signers[0]) };
}

function verifySigner(signer: Signer, content: Uint8Array, trust: TrustStore): void {
  // Certificate validity dates are deliberately not checked, as AWS's own verification
  // instructions do not: a document is re-served unchanged for the instance's whole life, and
  // the genuine 2016 sample must still verify.
  const candidates = trust.candidates(signer.sid);
  if (candidates.length === 0) throw badDocument('no trusted certificate for the signer of the identity document', 'untrusted_signer');
  const keys = candidates.filter((c) => c.keyType === signer.keyType).map((c) => c.publicKey);
  if (keys.length === 0) throw badDocument("the signature algorithm does not match the trusted certificate's key type");
  if (!keys.some((key) => signatureVerifies(signer, key))) throw badDocument('the identity document signature does not verify', 'bad_signature');

  // The signature covers the attributes, not the content: these two bind the content to it.
  if (signer.contentType !== OID.data) throw badDocument('the contentType attribute is not id-data');
  const digest = createHash(signer.digest).update(content).digest();
  const claimed = signer.messageDigest;
  if (claimed.length !== digest.length || !timingSafeEqual(claimed, digest)) {
    throw badDocument('the messageDigest attribute does not match the content', 'bad_signature');
  }
}

interface Signer {
  readonly sid: IssuerAndSerial;
  readonly digest: Digest;
  readonly keyType: SignerKeyType;
  /** The DER the signature covers: the signed attributes as a SET. */
  readonly signedBytes: Uint8Array;
  readonly signature: Uint8Array;
  readonly contentType: string;
  readonly messageDigest: Uint8Array;
}

function signerInfo(node: asn1js.BaseBlock | undefined): Signer {
  const [version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature, ...rest] = elements(node, asn1js.Sequence, 'SignerInfo');
  if (!(version instanceof asn1js.Integer)) throw notSignedData('SignerInfo has no version');
  if (hasContextTag(sid, 0)) throw badDocument('the signer is named by key identifier; issuer and serial number are required');
  const [issuer, serial, ...sidRest] = elements(sid, asn1js.Sequence, 'IssuerAndSerialNumber');
  if (!(issuer instanceof asn1js.Sequence) || !(serial instanceof asn1js.Integer) || sidRest.length > 0) {
    throw notSignedData('IssuerAndSerialNumber is malformed');
  }

  const digestOid = algorithm(digestAlgorithm, 'digestAlgorithm');
  const digest = DIGESTS[digestOid];
  if (digest === undefined) throw badDocument('the digest algorithm is not SHA-1 or SHA-256');

  if (!isContext(signedAttrs, 0)) throw badDocument('the signature has no signed attributes');
  const sigOid = algorithm(signatureAlgorithm, 'signatureAlgorithm');
  const scheme = SIGNATURES[sigOid];
  if (scheme === undefined) throw badDocument('the signature algorithm is not RSA or DSA');
  if (scheme.digest !== undefined && scheme.digest !== digest) {
    throw badDocument('the signature algorithm and the digest algorithm disagree');
  }
  if (!(signature instanceof asn1js.OctetString) || signature.idBlock.isConstructed) throw notSignedData('the signature is not an OCTET STRING');
  if (rest.length > 1 || (rest.length === 1 && !isContext(rest[0], 1))) throw notSignedData('SignerInfo has unexpected fields');

  const attributes = signedAttributes(signedAttrs);
  return {
    sid: { issuer: issuer.valueBeforeDecodeView, serial: serial.valueBlock.valueHexView },
    digest,
    keyType: scheme.keyType,
    signedBytes: signedAttributesDer(signedAttrs),
    signature: signature.valueBlock.valueHexView,
    ...attributes,
  };
}

/** contentType and messageDigest, each required exactly once with exactly one value (RFC 5652 5.3). */
function signedAttributes(node: asn1js.Constructed): { contentType: string; messageDigest: Uint8Array } {
  const values = new Map<string, asn1js.BaseBlock[]>();
  for (const attribute of node.valueBlock.value) {
    const [type, set, ...rest] = elements(attribute, asn1js.Sequence, 'Attribute');
    const key = oid(type, 'attribute type');
    if (rest.length > 0 || values.has(key)) throw notSignedData('the signed attributes are malformed');
    values.set(key, elements(set, asn1js.Set, 'attribute values'));
  }
  const contentType = values.get(OID.contentTypeAttr);
  if (contentType?.length !== 1) throw badDocument('the signed attributes lack a single contentType');
  const messageDigest = values.get(OID.messageDigestAttr);
  const digestValue = messageDigest?.length === 1 ? messageDigest[0] : undefined;
  if (!(digestValue instanceof asn1js.OctetString)) throw badDocument('the signed attributes lack a single messageDigest');
  return { contentType: oid(contentType[0], 'contentType attribute'), messageDigest: octets(digestValue) };
}

/**
 * The signature covers the attributes' DER with the SET tag in place of [0] IMPLICIT. Definite
 * encodings are taken byte for byte; an indefinite one is re-encoded to DER (sorted, as DER
 * orders a SET OF).
 */
function signedAttributesDer(node: asn1js.Constructed): Uint8Array {
  if (!usesIndefiniteLength(node)) {
    const bytes = node.valueBeforeDecodeView.slice();
    bytes[0] = 0x31;
    return bytes;
  }
  const attributes = node.valueBlock.value.map((attribute) => {
    clearIndefiniteLength(attribute);
    return { attribute, der: Buffer.from(attribute.toBER()) };
  });
  attributes.sort((a, b) => Buffer.compare(a.der, b.der));
  return new Uint8Array(new asn1js.Set({ value: attributes.map((a) => a.attribute) }).toBER());
}

/** asn1js takes an indefinite length with nothing after it, where the input ends, as an empty value. */
function indefiniteLengthsEnd(node: asn1js.BaseBlock): boolean {
  if (node.lenBlock.isIndefiniteForm) {
    const raw = node.valueBeforeDecodeView;
    const header = node.idBlock.blockLength + node.lenBlock.blockLength;
    if (raw.length < header + 2 || raw[raw.length - 2] !== 0 || raw[raw.length - 1] !== 0) return false;
  }
  return !node.idBlock.isConstructed || constructedChildren(node).every(indefiniteLengthsEnd);
}

function usesIndefiniteLength(node: asn1js.BaseBlock): boolean {
  if (node.lenBlock.isIndefiniteForm) return true;
  return node.idBlock.isConstructed && constructedChildren(node).some(usesIndefiniteLength);
}

function clearIndefiniteLength(node: asn1js.BaseBlock): void {
  node.lenBlock.isIndefiniteForm = false;
  if (!node.idBlock.isConstructed) return;
  (node.valueBlock as unknown as { isIndefiniteForm: boolean }).isIndefiniteForm = false;
  constructedChildren(node).forEach(clearIndefiniteLength);
}

function signatureVerifies(signer: Signer, key: KeyObject): boolean {
  try {
    return verify(signer.digest, signer.signedBytes, key, signer.signature);
  } catch {
    // OpenSSL throws on some malformed signatures (a DSA signature that is not DER, say).
    return false;
  }
}

/** encapContentInfo: id-data with its content present; a detached signature names nothing. */
function encapsulatedContent(node: asn1js.BaseBlock | undefined): Uint8Array {
  const [type, explicitContent, ...rest] = elements(node, asn1js.Sequence, 'encapContentInfo');
  if (oid(type, 'eContentType') !== OID.data) throw badDocument('the signed content is not of type id-data');
  if (!isContext(explicitContent, 0) || rest.length > 0) throw badDocument('the identity document carries no content');
  const [octetString, ...extra] = explicitContent.valueBlock.value;
  if (!(octetString instanceof asn1js.OctetString) || extra.length > 0) throw notSignedData('the content is not an OCTET STRING');
  return octets(octetString);
}

/** An OCTET STRING's bytes; BER may split them into constructed pieces, nested to any depth. */
function octets(node: asn1js.OctetString): Uint8Array {
  if (!node.idBlock.isConstructed) return node.valueBlock.valueHexView;
  const pieces = node.valueBlock.value.map((piece) => {
    if (!(piece instanceof asn1js.OctetString)) throw notSignedData('a constructed OCTET STRING holds something else');
    return octets(piece);
  });
  return new Uint8Array(Buffer.concat(pieces));
}

const optionalText = z.pipe(
  z.nullish(z.string()),
  z.transform((value) => value ?? undefined),
);

const DocumentSchema = z.object({
  instanceId: z.string().check(z.regex(/^i-[0-9a-f]{8,17}$/)),
  accountId: z.string().check(z.regex(/^\d{12}$/)),
  region: z.string().check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d+$/)),
  pendingTime: optionalText,
  availabilityZone: optionalText,
  imageId: optionalText,
  instanceType: optionalText,
  architecture: optionalText,
  privateIp: optionalText,
});

function parseIdentity(content: Uint8Array): IdentityDocument {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(content));
  } catch {
    throw badDocument('the identity document content is not UTF-8 JSON');
  }
  const result = DocumentSchema.safeParse(json);
  if (!result.success) {
    const field = result.error.issues[0]?.path[0];
    throw badDocument(
      typeof field === 'string' ? `the identity document's ${field} is missing or malformed` : 'the identity document content is not a JSON object',
    );
  }
  // AWS writes null for absent values; absent keys are simpler for callers than undefined ones.
  return Object.fromEntries(Object.entries(result.data).filter(([, value]) => value !== undefined)) as unknown as IdentityDocument;
}

// ---- structure helpers: each names what it expected, so a refusal says what was wrong ----

function notSignedData(why: string): DssssError {
  return badDocument(`the identity document is not a PKCS#7 SignedData: ${why}`);
}

function elements(
  node: asn1js.BaseBlock | undefined,
  type: typeof asn1js.Sequence | typeof asn1js.Set,
  what: string,
): asn1js.BaseBlock[] {
  if (!(node instanceof type)) throw notSignedData(`${what} is not a ${type === asn1js.Set ? 'SET' : 'SEQUENCE'}`);
  return node.valueBlock.value;
}

function hasContextTag(node: asn1js.BaseBlock | undefined, tag: number): boolean {
  return node !== undefined && node.idBlock.tagClass === 3 && node.idBlock.tagNumber === tag;
}

function isContext(node: asn1js.BaseBlock | undefined, tag: number): node is asn1js.Constructed {
  return node instanceof asn1js.Constructed && hasContextTag(node, tag);
}

function constructedChildren(node: asn1js.BaseBlock): asn1js.BaseBlock[] {
  const value: unknown = (node.valueBlock as { value?: unknown }).value;
  return Array.isArray(value) ? (value as asn1js.BaseBlock[]) : [];
}

function oid(node: asn1js.BaseBlock | undefined, what: string): string {
  if (!(node instanceof asn1js.ObjectIdentifier)) throw notSignedData(`${what} is not an OBJECT IDENTIFIER`);
  return node.getValue();
}

/** An AlgorithmIdentifier's OID; parameters (NULL or absent) carry nothing for these algorithms. */
function algorithm(node: asn1js.BaseBlock | undefined, what: string): string {
  const [id] = elements(node, asn1js.Sequence, what);
  return oid(id, what);
}
