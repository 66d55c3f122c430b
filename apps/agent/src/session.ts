/** An unlocked device talking to its coordinator: what every command after setup needs. */
import { deriveKeys, type RepositoryKeys } from '@kinvault/format';
import { RemoteRepository } from './repository.js';
import { loadState, statePaths, type AgentState } from './state.js';
import { apiClient, type ApiClient, type Connection } from './transport/api.js';
import { packReader } from './transport/packs.js';
import { BACKOFF_S } from './transport/retry.js';

export interface Session {
  state: AgentState;
  masterKey: Uint8Array;
  keys: RepositoryKeys;
  conn: Connection & { token: string };
  api: ApiClient;
  repo: RemoteRepository;
  paths: ReturnType<typeof statePaths>;
  close(): void;
}

export async function openSession(stateDir: string): Promise<Session> {
  const { state, masterKey } = await loadState(stateDir);
  const keys = deriveKeys(masterKey);
  const paths = statePaths(stateDir);
  const conn = {
    url: state.url,
    pin: { certPem: state.certPem, fingerprint: state.fingerprint },
    token: state.token,
    // Say why a command seems stuck while it waits for the coordinator to come back.
    onRetry: (_what: string, attempt: number, error: unknown) => {
      const wait = BACKOFF_S[attempt - 1] ?? 0;
      process.stderr.write(
        `kinvault: ${(error as Error).message} Retrying in ${wait} s (attempt ${attempt} of ${BACKOFF_S.length}).\n`,
      );
    },
  };
  const api = apiClient(conn);
  const reader = packReader(conn);
  return {
    state,
    masterKey,
    keys,
    conn,
    api,
    repo: new RemoteRepository(api, reader, keys, paths.cache),
    paths,
    close: () => reader.close(),
  };
}
