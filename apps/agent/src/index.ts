/** kinvault, the agent. Its services and commands arrive with issue 3. */
export const COMMAND = 'kinvault';
