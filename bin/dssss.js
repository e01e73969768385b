#!/usr/bin/env node
// The `dssss` command from source, through tsx, for working on cli/ without a build:
// `node bin/dssss.js ...`. What the package installs (and `npx dssss` runs) is dist/dssss.mjs.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
