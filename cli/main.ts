// `dssss` command dispatch: one file per command group.

import { dev } from './dev';

const USAGE = `usage:
  dssss dev register --instance-id ID --account ACCOUNT --role ROLE
  dssss dev identity --role ROLE [--account ACCOUNT] [--region REGION]`;

export async function main(argv: string[]): Promise<number> {
  const [group, ...rest] = argv;
  try {
    if (group === 'dev') return await dev(rest);
    process.stderr.write(`${USAGE}\n`);
    return 2;
  } catch (err) {
    process.stderr.write(`dssss: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
