// The `dssss` command's entry: what dist/dssss.mjs runs (and bin/dssss.js, through tsx, in a checkout).

import { main } from './main';

process.exitCode = await main(process.argv.slice(2), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
