// Human-readable sizes, durations, ages and hashes. Pure functions; `now` is always passed in.
import type { Duration, Timestamp } from '@bufbuild/protobuf/wkt';

/** bigint | number to number (display precision is enough far beyond petabytes). */
export function num(v: bigint | number | undefined | null): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'bigint' ? Number(v) : v;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** 0 B, 999 B, 1.5 KiB, 12.3 MiB, 120 GiB (three significant digits at most). */
export function formatBytes(v: bigint | number | undefined | null): string {
  let n = num(v);
  if (!Number.isFinite(n) || n < 0) return '—';
  let unit = 0;
  while (n >= 1024 && unit < BYTE_UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return `${n} B`;
  const digits = n >= 100 ? 0 : n >= 10 ? 1 : 2;
  const text = n.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, '$1');
  return `${text} ${BYTE_UNITS[unit]}`;
}

/** 1234567 -> "1,234,567". */
export function formatCount(v: bigint | number | undefined | null): string {
  return num(v).toLocaleString('en-US');
}

export const SECOND = 1;
export const MINUTE = 60;
export const HOUR = 3600;
export const DAY = 86400;
export const YEAR = 365 * DAY;

/** Seconds of a protobuf Duration (fractions dropped). */
export function durationSeconds(d: Duration | undefined): number {
  if (!d) return 0;
  return Number(d.seconds) + Math.trunc(d.nanos / 1e9);
}

const EXACT_UNITS: [number, string][] = [
  [YEAR, 'y'],
  [DAY, 'd'],
  [HOUR, 'h'],
  [MINUTE, 'min'],
  [SECOND, 's'],
];

/**
 * A configured wait, exactly: the largest unit that divides it ("7 d", "2 h", "7 y"), plain seconds
 * below ten minutes ("90 s"), else every non-zero component ("1 h 1 min 1 s").
 */
export function formatWait(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds === 0) return '0 s';
  for (const [size, label] of EXACT_UNITS) {
    if (size > SECOND && seconds % size === 0) return `${seconds / size} ${label}`;
  }
  if (seconds < 600) return `${seconds} s`;
  const parts: string[] = [];
  let rest = seconds;
  for (const [size, label] of EXACT_UNITS) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${label}`);
      rest %= size;
    }
  }
  return parts.join(' ');
}

const APPROX_UNITS: [number, string][] = [
  [YEAR, 'y'],
  [DAY, 'd'],
  [HOUR, 'h'],
  [MINUTE, 'min'],
  [SECOND, 's'],
];

/** An elapsed time, roughly: at most two components ("3 h 12 min", "2 d 4 h", "45 s"). */
export function formatApproxDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  let s = Math.max(0, Math.floor(Math.abs(ms) / 1000));
  if (s === 0) return '0 s';
  const parts: string[] = [];
  for (const [size, label] of APPROX_UNITS) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)} ${label}`);
      s %= size;
      if (parts.length === 2) break;
    } else if (parts.length === 1) {
      break; // keep components adjacent: "1 d" rather than "1 d 5 s"
    }
  }
  return parts.join(' ');
}

export function timestampToMs(t: Timestamp | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
}

/** "just now", "12 s ago", "3 h 5 min ago"; "in 4 d" for the future; "—" when unknown. */
export function formatAge(t: Timestamp | number | undefined, nowMs: number): string {
  const ms = typeof t === 'number' ? t : timestampToMs(t);
  if (ms === undefined || ms === 0) return '—';
  const delta = nowMs - ms;
  if (Math.abs(delta) < 1000) return 'just now';
  const text = formatApproxDuration(delta);
  return delta >= 0 ? `${text} ago` : `in ${text}`;
}

/** "in 3 h", "5 min overdue" for a due time; "—" when unset. */
export function formatDue(t: Timestamp | undefined, nowMs: number): string {
  const ms = timestampToMs(t);
  if (ms === undefined) return '—';
  const delta = ms - nowMs;
  if (Math.abs(delta) < 1000) return 'now';
  const text = formatApproxDuration(delta);
  return delta >= 0 ? `in ${text}` : `${text} overdue`;
}

/** Absolute local time, ISO-like: "2026-01-02 13:04:05". */
export function formatTime(t: Timestamp | number | undefined): string {
  const ms = typeof t === 'number' ? t : timestampToMs(t);
  if (ms === undefined || ms === 0) return '—';
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** First `n` characters of a hash; "—" when empty. */
export function shortHash(hash: string | undefined, n = 12): string {
  if (!hash) return '—';
  return hash.length > n ? `${hash.slice(0, n)}…` : hash;
}

/** Clamps to 0..100. */
export function percent(v: number | undefined): number {
  if (v === undefined || !Number.isFinite(v)) return 0;
  return Math.min(100, Math.max(0, v));
}

/** The file name part of a logical path, for compact cells. */
export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i >= 0 ? trimmed.slice(i + 1) || path : path;
}

/** "1 package", "2 packages", "1,234 files": a count with its noun in the right number. */
export function plural(v: bigint | number | undefined | null, one: string, many = `${one}s`): string {
  const n = num(v);
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/**
 * A package id short enough for a column, the way the journal prints it too: the first 13
 * characters of a UUIDv7 ("0193a1b2-c3d4"), its millisecond timestamp. A prefix, so pasting it
 * into the search finds the package on the catcher.
 */
export function shortId(id: string): string {
  return id.length > 13 ? id.slice(0, 13) : id;
}
