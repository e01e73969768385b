// `npm test`: the type check and the suite side by side (tsc alone takes about 15 s, mostly
// reading aws-cdk-lib's and the SDK's declarations); fails if either fails.
// Arguments go to vitest: `npm test -- test/core`.

import { spawn } from 'node:child_process';

const run = (command, args) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [command, ...args], { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });

const bin = (name) => new URL(`../node_modules/${name}`, import.meta.url).pathname;
const [typecheck, suite] = await Promise.all([
  run(bin('typescript/bin/tsc'), ['--noEmit']),
  run(bin('vitest/vitest.mjs'), ['run', ...process.argv.slice(2)]),
]);
if (typecheck !== 0) console.error('npm test: the type check failed (tsc --noEmit)');
process.exitCode = typecheck || suite;
