/** kinvaultd. The agent imports only the router's type, for its tRPC client. */
export type { AppRouter } from './http/trpc/router.js';
export { TUS_PATH } from '@kinvault/protocol';
