/**
 * The secrets this process holds (device token, passphrases, recovery code, enrollment
 * token), so that nothing it prints can show them: `redact` removes them, and any
 * Authorization header or Bearer token, from a line of output.
 */
const secrets = new Set<string>();

/** Remembers a secret (values shorter than 6 characters are not worth matching). */
export function addSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

export function redact(text: string): string {
  let out = text
    .replace(/(authorization["']?\s*[:=]\s*["']?)[^"'\n,}]+/gi, '$1[redacted]')
    .replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer [redacted]');
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}
