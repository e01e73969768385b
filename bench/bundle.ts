// Builds the Lambda artifact the way the CDK stack does (infra/stack.ts, NodejsFunction
// bundling): esbuild, everything bundled, ESM, minified, the stack's Node target and its
// createRequire banner. The target and banner are read from the stack itself, so the two
// cannot drift apart silently.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STACK = join(PROJECT_ROOT, 'infra/stack.ts');

export interface Artifact {
  /** The bundled handler, `index.mjs` as NodejsFunction names an ESM output. */
  readonly file: string;
  readonly bytes: number;
  readonly target: string;
  /** The inputs that contribute most to the output, by package (or project directory). */
  readonly largestInputs: readonly { readonly name: string; readonly bytes: number }[];
  readonly buildSeconds: number;
}

/** The bundling options of infra/stack.ts that change the output: its Node target and banner. */
async function stackBundling(): Promise<{ target: string; banner: string }> {
  const source = await readFile(STACK, 'utf8');
  const target = /target:\s*'(node\d+)'/.exec(source)?.[1];
  const banner = /banner:\s*"([^"]+)"/.exec(source)?.[1];
  const expected = ['minify: true', 'format: OutputFormat.ESM', 'externalModules: []', "mainFields: ['module', 'main']"];
  const missing = expected.filter((option) => !source.includes(option));
  if (target === undefined || banner === undefined || missing.length > 0) {
    throw new Error(
      `infra/stack.ts's bundling options are not the ones bench/bundle.ts mirrors (${[target ? '' : 'target', banner ? '' : 'banner', ...missing].filter(Boolean).join(', ')}): update bench/bundle.ts`,
    );
  }
  return { target, banner };
}

export async function buildLambdaArtifact(outdir: string): Promise<Artifact> {
  const { target, banner } = await stackBundling();
  const file = join(outdir, 'index.mjs');
  const started = performance.now();
  const result = await build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: ['lambda/handler.ts'],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target,
    minify: true,
    sourcemap: false,
    mainFields: ['module', 'main'],
    banner: { js: banner },
    metafile: true,
    logLevel: 'error',
  });
  const buildSeconds = (performance.now() - started) / 1000;
  const output = Object.values(result.metafile.outputs)[0];
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1];
    const name = pkg ?? input.split('/').slice(0, 2).join('/');
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
  const largestInputs = [...byPackage]
    .map(([name, bytes]) => ({ name, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 8);
  return { file, bytes: (await stat(file)).size, target, largestInputs, buildSeconds };
}
