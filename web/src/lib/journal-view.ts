// Journal filtering and the merge of queried pages with events appended live.
import type { Fields, JournalEvent, QueryJournalRequest } from './pb';
import { isPendingJournalType, pendingJournalSummary } from './pending';

export interface JournalFilter {
  sourceId: string;
  packageId: string;
  eventType: string;
  /** Client-side: case-insensitive substring of actor, type, ids, statuses, error and details. */
  text: string;
}

export const EMPTY_JOURNAL_FILTER: JournalFilter = { sourceId: '', packageId: '', eventType: '', text: '' };

export function matchesJournal(ev: JournalEvent, f: JournalFilter): boolean {
  if (f.sourceId && ev.sourceId !== f.sourceId) return false;
  if (f.packageId && ev.packageId !== f.packageId) return false;
  if (f.eventType && ev.eventType !== f.eventType) return false;
  const q = f.text.trim().toLowerCase();
  if (q) {
    const hay = [ev.actor, ev.eventType, ev.sourceId, ev.packageId, ev.stationId, ev.statusBefore, ev.statusAfter, ev.error, ev.detailsJson];
    if (!hay.some((s) => s.toLowerCase().includes(q))) return false;
  }
  return true;
}

/** The server-side part of a filter. */
export function journalQuery(f: JournalFilter): Fields<QueryJournalRequest> {
  return { sourceId: f.sourceId.trim(), packageId: f.packageId.trim(), eventType: f.eventType.trim() };
}

/** Union of live and queried events that pass `f`, newest first, one per sequence. */
export function mergeJournal(live: readonly JournalEvent[], loaded: readonly JournalEvent[], f: JournalFilter): JournalEvent[] {
  const bySeq = new Map<bigint, JournalEvent>();
  for (const ev of loaded) if (matchesJournal(ev, f)) bySeq.set(ev.sequence, ev);
  for (const ev of live) if (matchesJournal(ev, f)) bySeq.set(ev.sequence, ev);
  return [...bySeq.values()].sort((a, b) => (a.sequence < b.sequence ? 1 : a.sequence > b.sequence ? -1 : 0));
}

/** "package.tier_changed" -> "tier changed" style label for dense lists. */
export function eventLabel(eventType: string): string {
  return eventType.replace(/[._]/g, ' ');
}

/** The badge colour of an event type: bad, warn (policy and held changes), ok or info. */
export function journalKind(t: string): 'bad' | 'warn' | 'ok' | 'info' {
  if (t.includes('fail') || t.includes('error') || t.includes('safety') || t.includes('reject')) return 'bad';
  if (t === 'pending_change.cancelled') return 'info';
  if (t.startsWith('rules') || t.startsWith('config') || t.startsWith('snapshot') || t.startsWith('preset') || isPendingJournalType(t)) return 'warn';
  if (t.includes('complete') || t.includes('verified')) return 'ok';
  return 'info';
}

/** One readable line for events whose details matter most (pending changes); '' for the others. */
export function journalSummary(ev: JournalEvent): string {
  return pendingJournalSummary(ev.eventType, ev.detailsJson, ev.packageId);
}
