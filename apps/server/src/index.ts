/** kinvaultd, the coordinator. Its services and commands arrive with issue 3. */
export const COMMAND = 'kinvaultd';
