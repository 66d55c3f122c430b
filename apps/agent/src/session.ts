/** An unlocked device talking to its coordinator: what every command after setup needs. */
import { deriveKeys, type RepositoryKeys } from '@kinvault/format';
import { RemoteRepository } from './repository.js';
import { loadState, statePaths, type AgentState } from './state.js';
import { apiClient, type ApiClient, type Connection } from './transport/api.js';
import { packReader } from './transport/packs.js';
import { backoffSchedule, DEFAULT_RETRY_FOR_S, type RetryPolicy } from './transport/retry.js';
import { addSecret } from './secrets.js';

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

export interface SessionOptions {
  /**
   * A backup or restore, which rides out a coordinator restart once it has reached it;
   * otherwise (interactive commands) a coordinator that is down fails within seconds.
   */
  long?: boolean;
  /** How long a long job keeps retrying once the coordinator stops answering (90 s). */
  retryForS?: number;
}

export async function openSession(stateDir: string, opts: SessionOptions = {}): Promise<Session> {
  const { state, masterKey } = await loadState(stateDir);
  addSecret(state.token);
  const keys = deriveKeys(masterKey);
  const paths = statePaths(stateDir);
  const schedule = backoffSchedule(opts.retryForS ?? DEFAULT_RETRY_FOR_S);
  const retry: RetryPolicy = { long: opts.long === true, contacted: false, schedule };
  const conn = {
    url: state.url,
    pin: { certPem: state.certPem, fingerprint: state.fingerprint },
    token: state.token,
    retry,
    // Say why a long job seems stuck while it waits for the coordinator to come back.
    onRetry: (_what: string, attempt: number, error: unknown, wait: number) => {
      if (!(retry.long && retry.contacted)) return;
      process.stderr.write(
        `kinvault: ${(error as Error).message} Retrying in ${Number(wait.toFixed(2))} s (attempt ${attempt} of ${schedule.length}).\n`,
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
