// SecretStore on local files: one JSON file per secret holding its versions, one file per
// bookkeeping value. One server process owns a data dir; it keeps an index in memory.

import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { conflict, DssssError, notFound } from '../core/errors';
import type { ListPage, SecretStore, StoredRecord } from '../ports';
import { createFileExclusive, isMissing, writeFileAtomic } from './files';

/** Parameter Store keeps 100 versions of a parameter; so does the local store. */
export const MAX_VERSIONS = 100;

interface SecretFile {
  name: string;
  versions: { version: number; record: string }[];
}

export class FileSecretStore implements SecretStore {
  private readonly secretsDir: string;
  private readonly metaDir: string;
  private index: Promise<Map<string, SecretFile>> | undefined;
  /** Secret files that do not parse or sit under the wrong name: their names answer `integrity`. */
  private readonly damaged = new Set<string>();
  /** Writes to one name run one after another. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(dataDir: string) {
    this.secretsDir = join(dataDir, 'secrets');
    this.metaDir = join(dataDir, 'meta');
  }

  async read(name: string, version?: number): Promise<StoredRecord | undefined> {
    const index = await this.load();
    this.assertIntact(name);
    const file = index.get(name);
    if (!file) return undefined;
    const entry = version === undefined ? file.versions.at(-1) : file.versions.find((v) => v.version === version);
    return entry && { record: entry.record, version: entry.version };
  }

  create(name: string, record: string): Promise<number> {
    return this.serialize(name, async (index) => {
      this.assertIntact(name);
      if (index.has(name)) throw conflict(`secret ${name} already exists`);
      const file: SecretFile = { name, versions: [{ version: 1, record }] };
      if (!(await createFileExclusive(this.pathOf(name), JSON.stringify(file)))) {
        throw conflict(`secret ${name} already exists`);
      }
      index.set(name, file);
      return 1;
    });
  }

  update(name: string, record: string): Promise<number> {
    return this.serialize(name, async (index) => {
      const current = index.get(name);
      if (!current) throw notFound(`secret ${name} not found`);
      const version = (current.versions.at(-1)?.version ?? 0) + 1;
      const file: SecretFile = { name, versions: [...current.versions, { version, record }].slice(-MAX_VERSIONS) };
      await writeFileAtomic(this.pathOf(name), JSON.stringify(file));
      index.set(name, file);
      return version;
    });
  }

  delete(name: string): Promise<boolean> {
    return this.serialize(name, async (index) => {
      if (!index.has(name)) return false;
      await rm(this.pathOf(name), { force: true });
      index.delete(name);
      return true;
    });
  }

  async list(prefix: string, limit: number, cursor?: string): Promise<ListPage> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const names = [...(await this.load()).keys()]
      .filter((name) => name.startsWith(prefix) && (after === undefined || name > after))
      .sort();
    const page = names.slice(0, limit);
    const index = await this.load();
    const entries = page.flatMap((name) => {
      const latest = index.get(name)?.versions.at(-1);
      return latest ? [{ name, record: latest.record }] : [];
    });
    const last = page.at(-1);
    return { entries, next: names.length > limit && last !== undefined ? encodeCursor(last) : undefined };
  }

  async readMeta(key: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.metaDir, key), 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  createMeta(key: string, value: string): Promise<boolean> {
    return createFileExclusive(join(this.metaDir, key), value);
  }

  private assertIntact(name: string): void {
    if (this.damaged.has(this.fileOf(name))) {
      throw new DssssError('integrity', `the stored file of secret ${name} is damaged; restore it from a backup or delete it`, 60);
    }
  }

  private fileOf(name: string): string {
    return `${createHash('sha256').update(name).digest('hex')}.json`;
  }

  private pathOf(name: string): string {
    // Hashed file names: any valid secret name fits, and no name can steer the path.
    return join(this.secretsDir, this.fileOf(name));
  }

  private load(): Promise<Map<string, SecretFile>> {
    this.index ??= this.readAll().catch((err: unknown) => {
      this.index = undefined;
      throw err;
    });
    return this.index;
  }

  private async readAll(): Promise<Map<string, SecretFile>> {
    const index = new Map<string, SecretFile>();
    let files: string[];
    try {
      files = await readdir(this.secretsDir);
    } catch (err) {
      if (isMissing(err)) return index;
      throw err;
    }
    this.damaged.clear();
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      const parsed = parseSecretFile(await readFile(join(this.secretsDir, file), 'utf8'));
      // One damaged file costs its own secret, not every secret.
      if (parsed === undefined || this.fileOf(parsed.name) !== file) this.damaged.add(file);
      else index.set(parsed.name, parsed);
    }
    return index;
  }

  private serialize<T>(name: string, work: (index: Map<string, SecretFile>) => Promise<T>): Promise<T> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(async () => work(await this.load()));
    const tail = result.catch(() => undefined);
    this.queues.set(name, tail);
    void tail.then(() => {
      if (this.queues.get(name) === tail) this.queues.delete(name);
    });
    return result;
  }
}

function parseSecretFile(text: string): SecretFile | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const file = value as Partial<SecretFile> | null;
  const ok =
    typeof file?.name === 'string' &&
    Array.isArray(file.versions) &&
    file.versions.length > 0 &&
    file.versions.every((v) => Number.isSafeInteger(v?.version) && typeof v?.record === 'string');
  return ok ? (file as SecretFile) : undefined;
}

function encodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (cursor.length === 0 || encodeCursor(name) !== cursor) {
    throw new DssssError('bad_request', 'invalid continuation token');
  }
  return name;
}
