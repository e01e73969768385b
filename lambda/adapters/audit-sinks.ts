// Where audit lines go: stdout (Lambda: CloudWatch Logs), or a 0600 file appended to in
// order (local mode: <data dir>/audit.log).

import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditRecord, AuditSink } from '../ports';

export class StdoutAuditSink implements AuditSink {
  write(record: AuditRecord): void {
    process.stdout.write(`${JSON.stringify({ audit: true, ...record })}\n`);
  }
}

export class FileAuditSink implements AuditSink {
  private readonly stream: WriteStream;
  private failed = false;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    // A full disk must not take the server down; it must not go unnoticed either.
    this.stream.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.failed) console.error(JSON.stringify({ level: 'error', message: 'audit log write failed', code: err.code }));
      this.failed = true;
    });
  }

  write(record: AuditRecord): void {
    this.stream.write(`${JSON.stringify(record)}\n`);
  }

  /** Everything written so far is on disk (or failed). */
  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}
