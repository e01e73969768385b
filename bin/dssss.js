#!/usr/bin/env node
// The `dssss` command: loads the TypeScript CLI through tsx, so nothing needs a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
