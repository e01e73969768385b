// Builds the Lambda artifact exactly as the CDK stack does: infra/bundle.ts, shared by both,
// so the benchmark and the deployment cannot drift apart.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bundleLambda, LAMBDA_NODE_TARGET, PROJECT_ROOT } from '../infra/bundle';

export { PROJECT_ROOT };

export interface Artifact {
  /** The handler module, `index.mjs`; it loads its chunks on demand. */
  readonly file: string;
  /** Every output file together: what is zipped and deployed. */
  readonly bytes: number;
  readonly gzipBytes: number;
  /** What a cold token-authenticated GET loads: the handler and its static imports. */
  readonly eagerBytes: number;
  readonly files: number;
  readonly target: string;
  /** The inputs that contribute most to the output, by package (or project directory). */
  readonly largestInputs: readonly { readonly name: string; readonly bytes: number }[];
  readonly buildSeconds: number;
}

export async function buildLambdaArtifact(outdir: string): Promise<Artifact> {
  const started = performance.now();
  const metafile = bundleLambda(outdir);
  const buildSeconds = (performance.now() - started) / 1000;

  const outputs = Object.entries(metafile.outputs).filter(([path]) => path.endsWith('.mjs'));
  const byPackage = new Map<string, number>();
  let bytes = 0;
  const contents: Buffer[] = [];
  for (const [path, output] of outputs) {
    bytes += output.bytes;
    contents.push(await readFile(join(PROJECT_ROOT, path)));
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1];
      const name = pkg ?? input.split('/').slice(0, 2).join('/');
      byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
    }
  }

  // The handler and, transitively, its static imports: what import() of the artifact parses.
  const entry = outputs.find(([, output]) => output.entryPoint === 'lambda/handler.ts')?.[0];
  if (entry === undefined) throw new Error('the artifact has no handler entry');
  const eager = new Set<string>();
  const visit = (path: string) => {
    if (eager.has(path)) return;
    eager.add(path);
    for (const imported of metafile.outputs[path]?.imports ?? []) if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
  };
  visit(entry);

  return {
    file: join(PROJECT_ROOT, entry),
    bytes,
    gzipBytes: gzipSync(Buffer.concat(contents), { level: 9 }).length,
    eagerBytes: [...eager].reduce((sum, path) => sum + (metafile.outputs[path]?.bytes ?? 0), 0),
    files: outputs.length,
    target: LAMBDA_NODE_TARGET,
    largestInputs: [...byPackage]
      .map(([name, b]) => ({ name, bytes: b }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 8),
    buildSeconds,
  };
}
