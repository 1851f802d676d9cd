// Journal filtering and the merge of queried pages with events appended live.
import {
  CommandKindSchema,
  JournalEventType,
  JournalEventTypeSchema,
  type Fields,
  type JournalEvent,
  type QueryJournalRequest,
} from './pb';
import { enumFromSpelling, enumSpelling, enumValues } from './enums';
import { shortId } from './format';
import { isPendingJournalType, pendingJournalSummary } from './pending';
import { alertJournalSummary, isAlertJournalType } from './alerts';
import { commandOf, COMMAND_CREATED_EVENT, COMMAND_FINISHED_EVENT, TRIP_EVENT, tripFromEvent } from './safety';

export interface JournalFilter {
  sourceId: string;
  packageId: string;
  /** JournalEventType.UNSPECIFIED: any type. */
  type: JournalEventType;
  /**
   * Case-insensitive substring of the type's spelling, actor, ids, states, error and details: asked
   * of the catcher (QueryJournalRequest.text) and applied to the events appended live.
   */
  text: string;
}

export const EMPTY_JOURNAL_FILTER: JournalFilter = { sourceId: '', packageId: '', type: JournalEventType.UNSPECIFIED, text: '' };

/** Every event type the journal records, in the contract's order (for the type filter). */
export const JOURNAL_TYPES: JournalEventType[] = enumValues(JournalEventTypeSchema);

/** "package tier changed" for JournalEventType.PACKAGE_TIER_CHANGED. */
export function journalTypeLabel(t: JournalEventType): string {
  return enumSpelling(JournalEventTypeSchema, t).replace(/_/g, ' ');
}

/** Whether an event is of type `t` (by its typed field, or its spelling when that is unset). */
function isOfType(ev: JournalEvent, t: JournalEventType): boolean {
  if (ev.type !== JournalEventType.UNSPECIFIED) return ev.type === t;
  return ev.eventType.replace(/\./g, '_') === enumSpelling(JournalEventTypeSchema, t);
}

/** The longest text the catcher searches (QueryJournalRequest.text, 1..256 characters). */
const MAX_TEXT = 256;

export function matchesJournal(ev: JournalEvent, f: JournalFilter): boolean {
  if (f.sourceId && ev.sourceId !== f.sourceId) return false;
  if (f.packageId && ev.packageId !== f.packageId) return false;
  if (f.type !== JournalEventType.UNSPECIFIED && !isOfType(ev, f.type)) return false;
  const q = f.text.trim().toLowerCase();
  if (q) {
    const hay = [ev.actor, ev.eventType, ev.sourceId, ev.packageId, ev.stationId, ev.statusBefore, ev.statusAfter, ev.error, ev.detailsJson];
    if (!hay.some((s) => s.toLowerCase().includes(q))) return false;
  }
  return true;
}

/** The server-side part of a filter. */
export function journalQuery(f: JournalFilter): Fields<QueryJournalRequest> {
  const text = f.text.trim();
  return { sourceId: f.sourceId.trim(), packageId: f.packageId.trim(), type: f.type, text: [...text].length <= MAX_TEXT ? text : '' };
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
  if (isAlertJournalType(t)) return t === 'alert.raised' ? 'bad' : t === 'alert.resolved' ? 'ok' : 'info';
  if (t.includes('fail') || t.includes('error') || t.includes('safety') || t.includes('reject')) return 'bad';
  if (t === 'pending_change.cancelled') return 'info';
  if (t.startsWith('rules') || t.startsWith('config') || t.startsWith('snapshot') || t.startsWith('preset') || isPendingJournalType(t)) return 'warn';
  if (t.includes('complete') || t.includes('verified')) return 'ok';
  return 'info';
}

/** "Resume", "Backup now": a command kind as its details_json spells it ("backup_now"). */
function commandKindLabel(kind: string): string {
  const k = enumFromSpelling(CommandKindSchema, kind);
  const words = (k === undefined ? kind : enumSpelling(CommandKindSchema, k)).replace(/_/g, ' ') || 'a';
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** "Resume command 0193a1b2-c3d4 succeeded", "Restore command … failed: disk full". */
function commandSummary(ev: JournalEvent): string {
  const { id, kind } = commandOf(ev);
  const head = `${commandKindLabel(kind)} command${id ? ` ${shortId(id)}` : ''}`;
  if (ev.eventType === COMMAND_CREATED_EVENT) return `${head} queued`;
  const outcome = ev.statusAfter || 'finished';
  return ev.error ? `${head} ${outcome}: ${ev.error}` : `${head} ${outcome}`;
}

/**
 * One readable line for events whose details matter most (pending changes, commands, panic brake
 * trips); '' for the others.
 */
export function journalSummary(ev: JournalEvent): string {
  if (ev.eventType === COMMAND_CREATED_EVENT || ev.eventType === COMMAND_FINISHED_EVENT) return commandSummary(ev);
  if (ev.eventType === TRIP_EVENT) {
    const t = tripFromEvent(ev);
    return [ev.error, t.measured].filter(Boolean).join(' · ');
  }
  if (isAlertJournalType(ev.eventType)) return alertJournalSummary(ev.eventType, ev.detailsJson);
  return pendingJournalSummary(ev.eventType, ev.detailsJson, ev.packageId);
}

/**
 * A chain check against the journal now: `checked` events verified (sequences run from 1 without
 * gaps, so the last one checked is #checked), `head` the newest sequence known. Events appended
 * since were not checked.
 */
export function uncheckedSince(checked: bigint, head: bigint): bigint {
  return head > checked ? head - checked : 0n;
}
