// The clients list at fleet scale: filter by connection, safety and name, stopped sources first,
// then a page at a time (a thousand clients must not make a thousand-row table).
import { SafetyState, type Source } from './pb';

export interface ClientFilter {
  /** '' any, 'connected', 'disconnected'. */
  connection: '' | 'connected' | 'disconnected';
  /** '' any, 'ok', 'stopped'. */
  safety: '' | 'ok' | 'stopped';
  /** Case-insensitive substring of the id, label or hostname. */
  text: string;
}

export const EMPTY_CLIENT_FILTER: ClientFilter = { connection: '', safety: '', text: '' };
export const CLIENT_PAGE = 50;

export function isStopped(s: Source): boolean {
  return s.safetyState === SafetyState.STOPPED_FOR_SAFETY;
}

export function matchesClient(s: Source, f: ClientFilter): boolean {
  if (f.connection === 'connected' && !s.connected) return false;
  if (f.connection === 'disconnected' && s.connected) return false;
  if (f.safety === 'stopped' && !isStopped(s)) return false;
  if (f.safety === 'ok' && isStopped(s)) return false;
  const q = f.text.trim().toLowerCase();
  if (q && ![s.sourceId, s.label, s.hostname].some((v) => v.toLowerCase().includes(q))) return false;
  return true;
}

/** The sources that pass `f`: stopped for safety first, then disconnected, then by id. */
export function filterClients(sources: Iterable<Source>, f: ClientFilter): Source[] {
  const out: Source[] = [];
  for (const s of sources) if (matchesClient(s, f)) out.push(s);
  const rank = (s: Source) => (isStopped(s) ? 0 : s.connected ? 2 : 1);
  return out.sort((a, b) => rank(a) - rank(b) || a.sourceId.localeCompare(b.sourceId));
}

export interface ClientPage<T = Source> {
  rows: T[];
  /** 0-based page shown (clamped). */
  page: number;
  pages: number;
  /** Position of the first and last row shown, 1-based ("51–100 of 1,000"); 0 when none. */
  from: number;
  to: number;
}

export function pageOf<T>(rows: readonly T[], page: number, size = CLIENT_PAGE): ClientPage<T> {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const p = Math.min(Math.max(0, page), pages - 1);
  const slice = rows.slice(p * size, p * size + size);
  return { rows: slice, page: p, pages, from: slice.length ? p * size + 1 : 0, to: p * size + slice.length };
}
