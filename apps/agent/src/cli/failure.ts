/**
 * How a command ends when it fails: one line on stderr that says what happened and what
 * to do (with --json, also one JSON error object on stdout), and a stack trace only with
 * --debug. Nothing printed here may carry a secret: device tokens, passphrases, recovery
 * codes and Authorization headers are redacted from every line, whatever error they
 * travelled in (a failed request's error can hold the request and its headers).
 */
import { CommanderError } from 'commander';
import { edgeOf, isKinvaultError, type ErrorCode } from '@kinvault/protocol';
import { redact } from '../secrets.js';

interface Described {
  code: ErrorCode | string;
  message: string;
  retryable: boolean;
}

/** The error's code and message: a KinvaultError in the cause chain, a tRPC error's code. */
function describeError(error: unknown): Described {
  for (let e = error, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++)
    if (isKinvaultError(e)) return { code: e.code, message: e.message, retryable: e.retryable };
  const e = error as { message?: unknown; data?: { kinvaultCode?: string | null } } | undefined;
  const message = typeof e?.message === 'string' && e.message ? e.message : String(error);
  return { code: e?.data?.kinvaultCode ?? 'INTERNAL', message, retryable: false };
}

function stacks(error: unknown): string {
  const out: string[] = [];
  for (let e = error, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++)
    out.push(
      depth === 0
        ? String((e as Error).stack ?? e)
        : `caused by: ${String((e as Error).stack ?? e)}`,
    );
  return out.join('\n');
}

export interface Output {
  stderr: { write(text: string): unknown; isTTY?: boolean };
  stdout: { write(text: string): unknown };
}

/** Prints the failure and returns the exit code (2 for bad input or usage: error-edges.ts). */
export function reportFailure(
  error: unknown,
  opts: { json: boolean; debug: boolean },
  out: Output = process,
): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2; // already printed
  const d = describeError(error);
  // One line, secrets removed.
  const message = redact(d.message.trim().replace(/\s*\n\s*/g, ' '));
  if (out.stderr.isTTY) out.stderr.write('\r\x1b[K'); // over a progress line
  out.stderr.write(`kinvault: ${message}\n`);
  if (opts.debug) out.stderr.write(`${redact(stacks(error))}\n`);
  if (opts.json)
    out.stdout.write(
      `${JSON.stringify({ error: { code: d.code, message, retryable: d.retryable } })}\n`,
    );
  return edgeOf(d.code).exit;
}
