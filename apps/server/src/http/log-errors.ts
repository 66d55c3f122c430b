/**
 * How errors appear in the coordinator's log: the type, code and message, the stack,
 * and the causes' messages, but none of their other properties. An SDK's error keeps
 * the request it failed (googleapis: its config, with the `Authorization: Bearer …`
 * header; the AWS SDK: its metadata), and a logger that writes every property of an
 * error and of its cause would put credentials in the log.
 */
export interface LoggedError {
  [key: string]: unknown;
  type: string;
  message: string;
  stack: string;
  code?: string;
  causes?: string[];
}

const MAX_CAUSES = 5;

export function loggedError(e: unknown): LoggedError {
  if (!(e instanceof Error)) return { type: typeof e, message: String(e), stack: '' };
  const code = (e as { code?: unknown }).code;
  const causes: string[] = [];
  for (let c = e.cause, n = 0; c !== undefined && n < MAX_CAUSES; n++) {
    causes.push(c instanceof Error ? `${c.name}: ${c.message}` : typeof c);
    c = c instanceof Error ? c.cause : undefined;
  }
  return {
    type: e.name,
    message: e.message,
    ...(typeof code === 'string' ? { code } : {}),
    stack: e.stack ?? '',
    ...(causes.length > 0 ? { causes } : {}),
  };
}
