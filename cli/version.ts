// The client's version: put in by the build (esbuild's define); from package.json when run from source.

import { createRequire } from 'node:module';

declare const __DSSSS_VERSION__: string | undefined;

export const VERSION: string =
  typeof __DSSSS_VERSION__ === 'string' ? __DSSSS_VERSION__ : (createRequire(import.meta.url)('../package.json') as { version: string }).version;
