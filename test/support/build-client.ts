// Vitest global setup: the client tests run the bundle users install (dist/dssss.mjs), built
// once per run; a tsx start per command would cost about 0.8 s each.

import { buildClient } from '../../scripts/build';

export default function setup(): void {
  buildClient();
}
