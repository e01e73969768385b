// `dssss export` and `dssss import`: secrets in and out as dotenv or JSON. JSON is lossless
// (names relative to the prefix, values as they are); dotenv keys are the variable names
// `exec` would set (`db-password` <-> `DB_PASSWORD`), and dotenv is parsed by the dotenv
// package (quotes, escapes, comments, `export` prefixes), not by hand.

import { parse as parseDotenv } from 'dotenv';
import { CliError, EXIT } from './errors';

export type Format = 'dotenv' | 'json';

export function parseFormat(value: unknown, file?: string): Format {
  if (value === undefined) return file !== undefined && /\.json$/i.test(file) ? 'json' : 'dotenv';
  if (value === 'dotenv' || value === 'json') return value;
  throw new CliError(EXIT.usage, '--format: dotenv or json');
}

/** `entries`: [name relative to the prefix, dotenv key, value]. */
export function formatExport(entries: readonly { relative: string; key: string; value: string }[], format: Format): string {
  if (format === 'json') return `${JSON.stringify(Object.fromEntries(entries.map((e) => [e.relative, e.value])), null, 2)}\n`;
  return entries.map((e) => `${e.key}=${dotenvQuote(e.value, e.relative)}\n`).join('');
}

/**
 * A value as dotenv reads it back unchanged: single quotes keep everything literally
 * (newlines too), backticks when the value holds a single quote, double quotes when it holds
 * both but no backslash escape dotenv would expand.
 */
export function dotenvQuote(value: string, name: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('`')) return `\`${value}\``;
  if (!value.includes('"') && !/\\[nr]/.test(value)) return `"${value}"`;
  throw new CliError(EXIT.error, `${name}: its value holds every dotenv quote; export it with --format json`);
}

/** The file's secrets: name relative to the prefix -> value. */
export function parseImport(text: string, format: Format): Map<string, string> {
  if (format === 'json') {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new CliError(EXIT.usage, 'the file is not JSON');
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new CliError(EXIT.usage, 'the JSON file must be one object of name: value');
    const out = new Map<string, string>();
    for (const [name, value] of Object.entries(data)) {
      if (typeof value !== 'string') throw new CliError(EXIT.usage, `${name}: a value must be a string`);
      out.set(name, value);
    }
    return out;
  }
  return new Map(Object.entries(parseDotenv(text)).map(([key, value]) => [dotenvName(key), value]));
}

/** `DB_PASSWORD` -> `db-password`, the name `exec` maps back to DB_PASSWORD. */
export function dotenvName(key: string): string {
  return key.toLowerCase().replace(/_/g, '-');
}
