import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dotenvName, dotenvQuote, formatExport, parseFormat, parseImport } from '../../cli/transfer';

describe('dotenv export and import', () => {
  it('reads back every value it writes, unchanged (newlines, quotes, #, =, spaces, backslashes)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (value) => {
        let line: string;
        try {
          line = formatExport([{ relative: 'x', key: 'X', value }], 'dotenv');
        } catch {
          // Only a value holding every quote kind (and an escape) is refused, pointing at --format json.
          expect(value.includes("'") && value.includes('`')).toBe(true);
          return;
        }
        expect(parseImport(line, 'dotenv').get('x')).toBe(value);
      }),
      { numRuns: 500 },
    );
    for (const value of ['a b  ', '#not a comment', "it's", 'line\nbreak', 'back\\nslash', 'k=v', '']) {
      expect(parseImport(`K=${dotenvQuote(value, 'k')}\n`, 'dotenv').get('k')).toBe(value);
    }
  });

  it('parses what people write: comments, export prefixes, quotes and escapes', () => {
    const text = "# comment\nexport DB_PASSWORD='p@ss w#rd'\nAPI_KEY=plain # trailing\nMULTI=\"one\\ntwo\"\n";
    expect(Object.fromEntries(parseImport(text, 'dotenv'))).toEqual({ 'db-password': 'p@ss w#rd', 'api-key': 'plain', multi: 'one\ntwo' });
    expect(dotenvName('TLS_CERT')).toBe('tls-cert');
  });

  it('JSON is lossless both ways, and refuses anything but one object of strings', () => {
    const text = formatExport([{ relative: 'tls/cert.pem', key: 'TLS_CERT_PEM', value: "a'`\"\\n\nz" }], 'json');
    expect(parseImport(text, 'json').get('tls/cert.pem')).toBe("a'`\"\\n\nz");
    for (const bad of ['[]', '{"a": 1}', 'not json', 'null']) expect(() => parseImport(bad, 'json')).toThrow();
  });

  it('takes the format from --format, else from the file name', () => {
    expect(parseFormat(undefined, 'secrets.json')).toBe('json');
    expect(parseFormat(undefined, '.env')).toBe('dotenv');
    expect(parseFormat('json')).toBe('json');
    expect(() => parseFormat('yaml')).toThrow(/dotenv or json/);
  });
});
