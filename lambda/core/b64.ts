// Strict base64 decoding: Node's decoder skips junk and ignores spare bits, so a
// tampered string could decode to the same bytes. Here only the canonical form decodes.

export function decodeStrict(text: string, encoding: 'base64' | 'base64url'): Uint8Array | undefined {
  const bytes = Buffer.from(text, encoding);
  if (bytes.toString(encoding) !== text) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encode(bytes: Uint8Array, encoding: 'base64' | 'base64url'): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding);
}
