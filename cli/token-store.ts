// Where a client keeps its tokens, one per server and identity: in memory (the library's
// default, one store per client) or in a 0600 file (the `dssss` command's, shared by its
// invocations).

import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../lambda/adapters/files';
import { readPrivateFile } from './private-file';

type Env = Readonly<Record<string, string | undefined>>;

/** How a token was obtained: `document` is an identity document the caller handed over (dev login, --document). */
export type LoginMethod = 'ec2' | 'iam' | 'document';

export interface StoredToken {
  readonly token: string;
  /** The role as the server names it (`web`, or `123456789012:web` for another account's). */
  readonly role: string;
  readonly method: LoginMethod;
  readonly expiresAt: string;
  readonly obtainedAt: string;
}

/**
 * A token per key: the server's base URL, a space, and a digest of the identity the client
 * logs in as (cli/client.ts tokenKey), so clients of other identities never share a token.
 * Implement it to share tokens your own way.
 */
export interface TokenStore {
  get(key: string): Promise<StoredToken | undefined>;
  set(key: string, token: StoredToken): Promise<void>;
}

export class MemoryTokenStore implements TokenStore {
  private readonly tokens = new Map<string, StoredToken>();

  async get(key: string): Promise<StoredToken | undefined> {
    return this.tokens.get(key);
  }

  async set(key: string, token: StoredToken): Promise<void> {
    this.tokens.set(key, token);
  }
}

interface TokenFile {
  version: 1;
  tokens: Record<string, StoredToken>;
}

/**
 * The `dssss` command's token cache: a JSON file, mode 0600 and this user's alone, replaced
 * atomically, one token per key. A file of an earlier version (keyed by URL alone) reads as
 * well: its entries match no key, and go once they expire.
 */
export class FileTokenStore implements TokenStore {
  constructor(readonly path: string) {}

  async get(key: string): Promise<StoredToken | undefined> {
    const token = (await this.read()).tokens[key];
    return token !== undefined && typeof token.token === 'string' ? token : undefined;
  }

  async set(key: string, token: StoredToken): Promise<void> {
    const file = await this.read();
    // Expired tokens go: one entry per identity a user ever had would pile up otherwise.
    const now = Date.now();
    for (const [other, stored] of Object.entries(file.tokens)) if (Date.parse(stored?.expiresAt) <= now) delete file.tokens[other];
    file.tokens[key] = token;
    // A fresh, exclusively created 0600 temp file renamed into place: never a file someone planted.
    await writeFileAtomic(this.path, `${JSON.stringify(file)}\n`, 0o600);
  }

  /**
   * The file as it is; empty when there is none, or it is not a token file. A file another
   * user owns or planted, one others may read or write, or a symbolic link is refused
   * (`no_credentials`): its tokens would be someone else's choice, or readable by them.
   */
  private async read(): Promise<TokenFile> {
    const text = await readPrivateFile(this.path, 'the token file', 'remove it, and the next login writes a new one (mode 0600)');
    try {
      const file = JSON.parse(text ?? '') as TokenFile;
      if (file.version === 1 && typeof file.tokens === 'object' && file.tokens !== null && !Array.isArray(file.tokens)) {
        return { version: 1, tokens: Object.assign(Object.create(null) as Record<string, StoredToken>, file.tokens) };
      }
    } catch {
      // missing or not JSON: start afresh
    }
    return { version: 1, tokens: Object.create(null) as Record<string, StoredToken> };
  }
}

/** DSSSS_TOKEN_FILE, or ~/.dssss/token.json. */
export function defaultTokenFile(env: Env): string {
  return env.DSSSS_TOKEN_FILE || join(env.HOME || homedir(), '.dssss', 'token.json');
}
