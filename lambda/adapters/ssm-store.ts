// SecretStore on SSM Parameter Store: one String parameter per secret under
// `<prefix>secrets/`, bookkeeping under `<prefix>meta/`. The values are sealed records, so
// SecureString would only add a KMS call per read. A secret's records are the parameter's
// versions (GetParameterHistory); appends are compare-and-set through the position each
// record names (see append).

import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  PutParameterCommand,
  SSMClient,
  type ParameterTier,
} from '@aws-sdk/client-ssm';
import { DssssError } from '../core/errors';
import type { ListedRecord, ListPage, SecretStore, StoredRecord } from '../ports';
import { dependencyError, errorName } from './aws-errors';

/** Standard-tier parameters hold 4 KiB; larger records need the Advanced tier (8 KiB). */
export const STANDARD_TIER_LIMIT = 4096;
/** GetParametersByPath returns at most 10 parameters per call. */
const SSM_PAGE = 10;
const WHAT = 'Parameter Store';

export { SSMClient };

export class SsmSecretStore implements SecretStore {
  private readonly secretsPath: string;
  private readonly metaPath: string;

  /** `prefix` starts and ends with "/", e.g. "/dssss/". */
  constructor(
    private readonly ssm: Pick<SSMClient, 'send'>,
    prefix: string,
  ) {
    this.secretsPath = `${prefix}secrets/`;
    this.metaPath = `${prefix}meta/`;
  }

  async latest(name: string): Promise<StoredRecord | undefined> {
    const parameter = await this.get(this.secretsPath + name);
    return parameter && { record: parameter.value, seq: parameter.version };
  }

  /** GetParameterHistory, every page: Parameter Store keeps the last 100 versions. */
  async history(name: string): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    let next: string | undefined;
    do {
      let page;
      try {
        page = await this.ssm.send(new GetParameterHistoryCommand({ Name: this.secretsPath + name, MaxResults: 50, NextToken: next }));
      } catch (err) {
        if (errorName(err) === 'ParameterNotFound') return [];
        throw dependencyError(err, WHAT);
      }
      for (const p of page.Parameters ?? []) {
        if (p.Value !== undefined && p.Version !== undefined) out.push({ record: p.Value, seq: p.Version });
      }
      next = page.NextToken || undefined;
    } while (next !== undefined);
    return out.sort((a, b) => a.seq - b.seq);
  }

  /**
   * PutParameter has no version precondition, so the compare-and-set is in the record: it
   * names the position it must stand at (`expectedSeq + 1`), and it counts only if Parameter
   * Store gave it that version. A first record is created with `Overwrite: false`, so of two
   * concurrent creates one fails outright. A record that landed elsewhere lost its race; the
   * ledger reads past it (ledger.ts).
   */
  async append(name: string, record: string, expectedSeq: number): Promise<number | undefined> {
    const version = await this.put(this.secretsPath + name, record, expectedSeq > 0);
    return version === expectedSeq + 1 ? version : undefined;
  }

  async purge(name: string): Promise<boolean> {
    try {
      await this.ssm.send(new DeleteParameterCommand({ Name: this.secretsPath + name }));
      return true;
    } catch (err) {
      if (errorName(err) === 'ParameterNotFound') return false;
      throw dependencyError(err, WHAT);
    }
  }

  /**
   * At most `ceil(limit / 10)` GetParametersByPath calls; the page never holds more than
   * `limit` names, and SSM's own NextToken is the continuation, so nothing is skipped.
   */
  async list(prefix: string, limit: number, cursor?: string): Promise<ListPage> {
    // The path is the prefix's last complete segment; a partial segment is filtered here.
    const cut = prefix.lastIndexOf('/');
    const path = `${this.secretsPath}${cut >= 0 ? prefix.slice(0, cut) : ''}`.replace(/\/$/, '') || '/';
    const entries: ListedRecord[] = [];
    let next = cursor;
    let calls = 0;
    do {
      let page;
      try {
        page = await this.ssm.send(
          new GetParametersByPathCommand({
            Path: path,
            Recursive: true,
            MaxResults: Math.min(SSM_PAGE, limit - calls * SSM_PAGE),
            NextToken: next,
          }),
        );
      } catch (err) {
        if (next !== undefined && (errorName(err) === 'InvalidNextToken' || errorName(err) === 'ValidationException')) {
          throw new DssssError('bad_request', 'invalid continuation token');
        }
        throw dependencyError(err, WHAT);
      }
      calls++;
      for (const parameter of page.Parameters ?? []) {
        const name = parameter.Name?.slice(this.secretsPath.length);
        if (name !== undefined && parameter.Name!.startsWith(this.secretsPath) && name.startsWith(prefix) && parameter.Value !== undefined) {
          entries.push({ name, record: parameter.Value, seq: parameter.Version ?? 0 });
        }
      }
      next = page.NextToken || undefined;
    } while (next !== undefined && calls * SSM_PAGE < limit);
    return { entries, next };
  }

  /** GetParameters, 10 names a call. */
  async readMeta(keys: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (let i = 0; i < keys.length; i += 10) {
      const batch = keys.slice(i, i + 10);
      let out;
      try {
        out = await this.ssm.send(new GetParametersCommand({ Names: batch.map((k) => this.metaPath + k) }));
      } catch (err) {
        throw dependencyError(err, WHAT);
      }
      for (const p of out.Parameters ?? []) {
        if (p.Name?.startsWith(this.metaPath) && p.Value !== undefined) found.set(p.Name.slice(this.metaPath.length), p.Value);
      }
    }
    return found;
  }

  async createMeta(key: string, value: string): Promise<boolean> {
    return (await this.put(this.metaPath + key, value, false)) !== undefined;
  }

  /** Whether any bookkeeping value's key starts with `start` (GetParametersByPath on the meta tree, until one is found). */
  async hasMetaStartingWith(start: string): Promise<boolean> {
    let next: string | undefined;
    do {
      let page;
      try {
        page = await this.ssm.send(new GetParametersByPathCommand({ Path: this.metaPath.slice(0, -1), MaxResults: SSM_PAGE, NextToken: next }));
      } catch (err) {
        throw dependencyError(err, WHAT);
      }
      if ((page.Parameters ?? []).some((p) => p.Name?.startsWith(this.metaPath + start))) return true;
      next = page.NextToken || undefined;
    } while (next !== undefined);
    return false;
  }

  async deleteMeta(key: string): Promise<void> {
    try {
      await this.ssm.send(new DeleteParameterCommand({ Name: this.metaPath + key }));
    } catch (err) {
      if (errorName(err) !== 'ParameterNotFound') throw dependencyError(err, WHAT);
    }
  }

  private async get(name: string): Promise<{ value: string; version: number } | undefined> {
    try {
      const { Parameter } = await this.ssm.send(new GetParameterCommand({ Name: name }));
      if (Parameter?.Value === undefined || Parameter.Version === undefined) return undefined;
      return { value: Parameter.Value, version: Parameter.Version };
    } catch (err) {
      if (errorName(err) === 'ParameterNotFound' || errorName(err) === 'ParameterVersionNotFound') return undefined;
      throw dependencyError(err, WHAT);
    }
  }

  /** The new version, or undefined when `overwrite` is false and the parameter exists. */
  private async put(name: string, value: string, overwrite: boolean): Promise<number | undefined> {
    // Intelligent-Tiering stores a small value as Standard, and keeps a parameter that is
    // already Advanced valid (an explicit Standard would be refused there).
    const tier: ParameterTier = value.length > STANDARD_TIER_LIMIT ? 'Advanced' : 'Intelligent-Tiering';
    try {
      const { Version } = await this.ssm.send(
        new PutParameterCommand({ Name: name, Value: value, Type: 'String', Overwrite: overwrite, Tier: tier }),
      );
      if (Version === undefined) throw new DssssError('unavailable', `${WHAT} returned no version`, 1);
      return Version;
    } catch (err) {
      if (!overwrite && errorName(err) === 'ParameterAlreadyExists') return undefined;
      throw dependencyError(err, WHAT);
    }
  }
}
