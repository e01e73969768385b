// The `dssss` command's entry in the standalone executables (scripts/build-sea.ts): a
// CommonJS script, as Node's single executable applications run one.

import { main } from './main';

void main(process.argv.slice(2), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }).then((code) => {
  process.exitCode = code;
});
