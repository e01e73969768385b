import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import bundled from '../../lambda/identity/aws-certs.json' with { type: 'json' };
import { awsTrustStore, certificateIssuerAndSerial, parsePemCertificates, TrustStore } from '../../lambda/identity/certs';
import { createDevCa } from '../../lambda/identity/dev-ca';
import { awsSigner, withSerialOf } from './forge';

const pkcs7: Record<string, string> = bundled.pkcs7;
const rsa2048: Record<string, string> = bundled.rsa2048;
const allBundled = [...Object.values(pkcs7), ...Object.values(rsa2048)];

const der = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);
const distinct = (pems: string[]) => new Set(pems.map((pem) => createHash('sha256').update(der(pem)).digest('hex'))).size;

describe('awsTrustStore', () => {
  it('holds every distinct certificate of the bundled pkcs7 and rsa2048 sets', () => {
    expect(Object.keys(pkcs7)).toContain('default');
    expect(Object.keys(rsa2048)).toContain('us-east-1');
    const store = awsTrustStore();
    expect(store.size).toBe(distinct(allBundled));
    expect(store.size).toBeGreaterThan(40);
    for (const pem of allBundled) {
      const keys = store.candidates(certificateIssuerAndSerial(der(pem))).map((c) => c.publicKey);
      expect(keys.some((key) => key.equals(new X509Certificate(pem).publicKey))).toBe(true);
    }
  });

  it('picks the certificate that signed the genuine document by its serial number', () => {
    const [candidate, ...others] = awsTrustStore().candidates(awsSigner('pkcs7', 'default'));
    expect(others).toEqual([]);
    expect(candidate?.keyType).toBe('dsa');
    expect(candidate?.publicKey.equals(new X509Certificate(pkcs7.default!).publicKey)).toBe(true);
  });

  it('tells AWS certificates apart by serial number, since they share one issuer name', () => {
    // One name, two encodings: some newer Regions' certificates spell it in UTF8String.
    expect(new Set(allBundled.map((pem) => new X509Certificate(pem).issuer)).size).toBe(1);
    const store = awsTrustStore();
    const [candidate, ...others] = store.candidates(awsSigner('rsa2048', 'eu-west-1'));
    expect(others).toEqual([]);
    expect(candidate?.keyType).toBe('rsa');
    expect(candidate?.publicKey.equals(new X509Certificate(rsa2048['eu-west-1']!).publicKey)).toBe(true);
    expect(candidate?.publicKey.equals(new X509Certificate(rsa2048['us-east-1']!).publicKey)).toBe(false);
  });

  it('finds a serial number written with a superfluous leading zero byte', () => {
    const { issuer, serial } = awsSigner('pkcs7', 'default');
    const padded = new Uint8Array([0, ...serial]);
    expect(awsTrustStore().candidates({ issuer, serial: padded })).toHaveLength(1);
  });

  it('finds nothing for an unknown serial number, or a known one under another issuer', () => {
    const { issuer, serial } = awsSigner('pkcs7', 'default');
    const otherSerial = Uint8Array.from(serial, (byte, i) => (i === serial.length - 1 ? byte ^ 1 : byte));
    expect(awsTrustStore().candidates({ issuer, serial: otherSerial })).toEqual([]);
    const otherIssuer = certificateIssuerAndSerial(der(createDevCa().certPem)).issuer;
    expect(awsTrustStore().candidates({ issuer: otherIssuer, serial })).toEqual([]);
  });

  it('adds extra certificates and counts identical ones once', () => {
    const ca = createDevCa();
    const base = awsTrustStore().size;
    const store = awsTrustStore([ca.certPem, ca.certPem, pkcs7.default!]);
    expect(store.size).toBe(base + 1);
    expect(store.candidates(certificateIssuerAndSerial(der(ca.certPem)))).toHaveLength(1);
  });

  it('keeps every candidate when certificates share issuer and serial number', () => {
    const first = createDevCa().certPem;
    const twin = withSerialOf(createDevCa().certPem, first);
    const candidates = TrustStore.fromPems([first, twin]).candidates(certificateIssuerAndSerial(der(first)));
    expect(candidates).toHaveLength(2);
    expect(candidates[0]?.publicKey.equals(candidates[1]!.publicKey)).toBe(false);
  });
});

describe('TrustStore.fromPems', () => {
  it('refuses a PEM block that does not hold a certificate, naming its position', () => {
    const notACertificate = `-----BEGIN CERTIFICATE-----\n${Buffer.from('not a certificate').toString('base64')}\n-----END CERTIFICATE-----`;
    expect(() => TrustStore.fromPems([pkcs7.default!, notACertificate])).toThrow(/certificate 2 is not an X.509 certificate/);
  });

  it('refuses text that is not PEM', () => {
    expect(() => TrustStore.fromPems(['MIIC7DCCAqwCCQCncbCtQbjuyzAJBgcqhkjOOAQDMFwx'])).toThrow(/certificate 1 is not a PEM "CERTIFICATE" block/);
  });
});

describe('parsePemCertificates', () => {
  it('splits a bundle into one PEM per certificate, whatever the line endings and blank lines between', () => {
    const pems = [pkcs7.default!, rsa2048['us-east-1']!, createDevCa().certPem];
    const bundle = `\n${pems[0]}\n\n${pems[1]!.replace(/\n/g, '\r\n')}\r\n${pems[2]}`;
    const parsed = parsePemCertificates(bundle);
    expect(parsed).toHaveLength(3);
    expect(parsed.map((pem) => new X509Certificate(pem).fingerprint256)).toEqual(pems.map((pem) => new X509Certificate(pem).fingerprint256));
    expect(TrustStore.fromPems(parsed).size).toBe(3);
  });

  it('refuses text outside the certificate blocks', () => {
    expect(() => parsePemCertificates(`subject=AWS\n${pkcs7.default}`)).toThrow(/not a PEM "CERTIFICATE" block/);
    expect(() => parsePemCertificates(`${pkcs7.default}\n-----END CERTIFICATE-----\n`)).toThrow(/not a PEM "CERTIFICATE" block/);
  });

  it('refuses a bundle without a certificate, such as a private key', () => {
    expect(() => parsePemCertificates('')).toThrow(/no PEM "CERTIFICATE" block/);
    expect(() => parsePemCertificates(createDevCa().keyPem)).toThrow(/not a PEM "CERTIFICATE" block/);
  });

  it('refuses a certificate block whose base64 is broken', () => {
    const broken = pkcs7.default!.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1=');
    expect(() => parsePemCertificates(broken)).toThrow(/certificate 1 is not a PEM "CERTIFICATE" block/);
  });
});
