/**
 * Environment twins of on/off flags. Commander turns such a flag on whenever its
 * variable is set, whatever the value; here "0", "false", "no", "off" and "" mean off,
 * as a person writing `KINVAULT_FULL=0` expects. Call it for a command (and its parents)
 * before its action runs.
 */
export interface FlagCommand {
  readonly options: readonly {
    attributeName(): string;
    envVar?: string;
    isBoolean(): boolean;
  }[];
  getOptionValueSource(key: string): string | undefined;
  setOptionValue(key: string, value: unknown): unknown;
}

const OFF = /^(0|false|no|off)?$/i;

export function honourFalseEnvFlags(command: FlagCommand): void {
  for (const option of command.options) {
    if (!option.isBoolean() || !option.envVar) continue;
    const key = option.attributeName();
    if (command.getOptionValueSource(key) !== 'env') continue;
    if (OFF.test((process.env[option.envVar] ?? '').trim())) command.setOptionValue(key, undefined);
  }
}
