// The dssss client library: `import { DssssClient } from 'dssss'`. What the `dssss` command
// is built on; see the README's "The library" section.

export {
  DssssClient,
  DEFAULT_CACHE_TTL_MS,
  LOCAL_SERVER_ID,
  type DssssClientOptions,
  type HistoryEntry,
  type ListEntry,
  type LoginInfo,
  type ReadOptions,
  type Secret,
  type WatchOptions,
} from './client';
export { DssssClientError, type ClientErrorCode, type DssssErrorCode, type ServerErrorCode } from './errors';
export { FileTokenStore, MemoryTokenStore, type LoginMethod, type StoredToken, type TokenStore } from './token-store';
export type { AwsCredentials, CredentialsProvider } from './credentials';
