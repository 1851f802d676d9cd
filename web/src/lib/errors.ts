// Turns thrown values (ConnectError, fetch failures) into text for people, and
// InvalidArgument messages ("rule_set.warm.wait: must be ...") into per-field errors.
import { Code, ConnectError } from '@connectrpc/connect';

export interface ErrorInfo {
  /** gRPC code name in lower snake case ("invalid_argument"), or "unknown". */
  code: string;
  /** The server's message without the "[code]" prefix. */
  message: string;
  /** Whether the code is InvalidArgument (a validation error naming a field). */
  invalidArgument: boolean;
}

export function describeError(e: unknown): ErrorInfo {
  if (e instanceof ConnectError) {
    return {
      code: Code[e.code] ? snake(Code[e.code]) : 'unknown',
      message: e.rawMessage || Code[e.code] || 'request failed',
      invalidArgument: e.code === Code.InvalidArgument,
    };
  }
  if (e instanceof Error) {
    return { code: 'unknown', message: e.message, invalidArgument: false };
  }
  return { code: 'unknown', message: String(e), invalidArgument: false };
}

function snake(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

export interface FieldError {
  /** Dotted field path as the server named it, e.g. "rule_set.warm.wait"; "" when none. */
  field: string;
  message: string;
}

const FIELD_PREFIX = /^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)\s*:\s*(.+)$/s;

/**
 * Splits a validation message into field errors. The catcher writes "field.path: why"; several
 * errors may be joined with "; " or newlines. Text without a field prefix becomes field "".
 */
export function parseFieldErrors(message: string): FieldError[] {
  const parts = message
    .split(/\n|;\s+(?=[A-Za-z_][A-Za-z0-9_.[\]]*\s*:)/)
    .map((s) => s.trim())
    .filter(Boolean);
  return parts.map((part) => {
    const m = FIELD_PREFIX.exec(part);
    return m ? { field: m[1], message: m[2].trim() } : { field: '', message: part };
  });
}
