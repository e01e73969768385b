// For suites that start the app hundreds of times on fresh data dirs: one development CA
// for all of them (an RSA key per start would only cost time). In the suite:
//   vi.mock('../../lambda/identity/dev-ca', (original) => import('../support/one-dev-ca').then((m) => m.oneDevCa(original)));
// (Parsed AWS certificates are already cached per process, in lambda/identity/certs.ts.)

import type * as DevCaModule from '../../lambda/identity/dev-ca';

export async function oneDevCa(importOriginal: <T>() => Promise<T>): Promise<typeof DevCaModule> {
  const real = await importOriginal<typeof DevCaModule>();
  const ca = real.createDevCa();
  return { ...real, createDevCa: () => ca };
}
