// Alerts: what needs a person's attention. The Watch stream brings the open ones and the recently
// resolved (FleetSnapshot.alerts), then every raise, update, acknowledgement and resolution
// (WatchEvent.alert_changed: the alert as it is now, replacing the one with its id). This keeps
// them by id, merges unary answers (AcknowledgeAlert, ListAlerts) without undoing what the stream
// said, and filters and orders them for the Alerts section.
import { enumFromSpelling } from './enums';
import { timestampToMs } from './format';
import { alertKindLabel } from './labels';
import { AlertKind, AlertKindSchema, AlertState, type Alert, type WatchEvent } from './pb';

/** Resolved alerts kept (the oldest resolved go first); open ones are all kept. */
export const RESOLVED_CAP = 500;
/** The longest note an acknowledgement may carry (AcknowledgeAlertRequest.note). */
export const NOTE_MAX = 500;

/** Alerts by id. */
export type AlertBook = Map<string, Alert>;

export function isOpenAlert(a: Alert): boolean {
  return a.state === AlertState.OPEN;
}

export function isResolvedAlert(a: Alert): boolean {
  return a.state === AlertState.RESOLVED;
}

export function isAcknowledged(a: Alert): boolean {
  return a.acknowledgedAt !== undefined || a.acknowledgedBy !== '';
}

/**
 * Applies one Watch event: a snapshot replaces every alert, alert_changed replaces the one with its
 * id. Returns whether the alerts moved.
 */
export function applyAlertEvent(book: AlertBook, ev: WatchEvent): boolean {
  switch (ev.kind.case) {
    case 'snapshot':
      book.clear();
      for (const a of ev.kind.value.alerts) if (a.id) book.set(a.id, a);
      capResolved(book);
      return true;
    case 'alertChanged':
      return upsertAlert(book, ev.kind.value, true);
    default:
      return false;
  }
}

/**
 * Stores one alert. From the stream (`live`) it is the alert as it is now and replaces what was
 * held. From a unary answer it may be older than what the stream told since, so resolution and
 * acknowledgement are never undone by it: an alert held as resolved stays resolved, an
 * acknowledgement held is kept. Returns whether anything changed.
 */
export function upsertAlert(book: AlertBook, a: Alert, live: boolean): boolean {
  if (!a.id) return false;
  const held = book.get(a.id);
  let next = a;
  if (!live && held) next = mergeAnswer(held, a);
  if (held && sameAlert(held, next)) return false;
  book.set(a.id, next);
  if (isResolvedAlert(next)) capResolved(book);
  return true;
}

/** What a unary answer adds to the alert held: it never reopens it nor drops an acknowledgement. */
function mergeAnswer(held: Alert, answer: Alert): Alert {
  const resolved = isResolvedAlert(held) && !isResolvedAlert(answer);
  const acked = isAcknowledged(held) && !isAcknowledged(answer);
  if (!resolved && !acked) return answer;
  return {
    ...answer,
    ...(resolved ? { state: held.state, resolvedAt: held.resolvedAt, message: held.message } : {}),
    ...(acked ? { acknowledgedAt: held.acknowledgedAt, acknowledgedBy: held.acknowledgedBy, note: held.note } : {}),
  };
}

function sameAlert(a: Alert, b: Alert): boolean {
  return (
    a.state === b.state &&
    a.kind === b.kind &&
    a.subject === b.subject &&
    a.sourceId === b.sourceId &&
    a.message === b.message &&
    a.acknowledgedBy === b.acknowledgedBy &&
    a.note === b.note &&
    timestampToMs(a.raisedAt) === timestampToMs(b.raisedAt) &&
    timestampToMs(a.resolvedAt) === timestampToMs(b.resolvedAt) &&
    timestampToMs(a.acknowledgedAt) === timestampToMs(b.acknowledgedAt)
  );
}

/** Drops the oldest resolved alerts beyond RESOLVED_CAP. */
function capResolved(book: AlertBook, cap = RESOLVED_CAP): void {
  const resolved = [...book.values()].filter(isResolvedAlert);
  if (resolved.length <= cap) return;
  resolved.sort(compareAlerts);
  for (const a of resolved.slice(cap)) book.delete(a.id);
}

const ms = (t: Parameters<typeof timestampToMs>[0]) => timestampToMs(t) ?? 0;

/**
 * The order people read alerts in: open ones first, newest raised first; then the others, most
 * recently resolved first; ties by id, newest first (ids are UUIDv7).
 */
export function compareAlerts(a: Alert, b: Alert): number {
  const ra = isOpenAlert(a) ? 0 : 1;
  const rb = isOpenAlert(b) ? 0 : 1;
  if (ra !== rb) return ra - rb;
  const ta = ra === 0 ? ms(a.raisedAt) : ms(a.resolvedAt) || ms(a.raisedAt);
  const tb = rb === 0 ? ms(b.raisedAt) : ms(b.resolvedAt) || ms(b.raisedAt);
  if (ta !== tb) return tb - ta;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export interface AlertFilter {
  /** Which alerts: the open ones, the resolved ones, or all. */
  state: 'open' | 'resolved' | 'all';
  /** AlertKind.UNSPECIFIED: any kind. */
  kind: AlertKind;
  /** Case-insensitive substring of the subject, source, message or the kind's label. */
  text: string;
}

export const DEFAULT_ALERT_FILTER: AlertFilter = { state: 'open', kind: AlertKind.UNSPECIFIED, text: '' };

export function matchesAlert(a: Alert, f: AlertFilter): boolean {
  if (f.state === 'open' && !isOpenAlert(a)) return false;
  if (f.state === 'resolved' && isOpenAlert(a)) return false;
  if (f.kind !== AlertKind.UNSPECIFIED && a.kind !== f.kind) return false;
  const q = f.text.trim().toLowerCase();
  if (q && ![a.subject, a.sourceId, a.message, alertKindLabel(a.kind), a.acknowledgedBy, a.note].some((v) => v.toLowerCase().includes(q))) return false;
  return true;
}

/** The alerts that pass `f`, in reading order (compareAlerts). */
export function filterAlerts(alerts: Iterable<Alert>, f: AlertFilter): Alert[] {
  const out: Alert[] = [];
  for (const a of alerts) if (matchesAlert(a, f)) out.push(a);
  return out.sort(compareAlerts);
}

/** Open alerts, and how many of them nobody acknowledged yet. */
export function alertCounts(alerts: Iterable<Alert>): { open: number; unacknowledged: number } {
  let open = 0;
  let unacknowledged = 0;
  for (const a of alerts) {
    if (!isOpenAlert(a)) continue;
    open++;
    if (!isAcknowledged(a)) unacknowledged++;
  }
  return { open, unacknowledged };
}

/** Why a note cannot be sent ('' when it can): at most NOTE_MAX characters. */
export function noteProblem(note: string): string {
  const n = [...note.trim()].length;
  return n > NOTE_MAX ? `The note is ${n} characters long; at most ${NOTE_MAX} are kept.` : '';
}

/** Whether an open alert may be acknowledged now (resolved and already acknowledged ones may not). */
export function canAcknowledge(a: Alert): boolean {
  return isOpenAlert(a) && !isAcknowledged(a);
}

/** "token:otto (operator)" -> "otto (operator)": who, as people read it. */
export function actorName(actor: string): string {
  return actor.replace(/^token:/, '');
}

const JOURNAL_PREFIX = 'alert.';

/** What each alert.* journal event says happened. */
const JOURNAL_VERBS: Record<string, string> = {
  raised: 'raised',
  resolved: 'resolved',
  acknowledged: 'acknowledged',
  channel_tested: 'channel tested',
};

export function isAlertJournalType(eventType: string): boolean {
  return eventType.startsWith(JOURNAL_PREFIX);
}

function asObject(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : '';
}

/** An alert kind in details_json: its number, or its spelling ("rpo_breached", "ALERT_KIND_RPO_BREACHED"). */
function kindText(v: unknown): string {
  if (typeof v === 'number') return alertKindLabel(v as AlertKind);
  if (typeof v === 'string' && v) {
    const k = enumFromSpelling(AlertKindSchema, v.toLowerCase().replace(/^alert_kind_/, ''));
    return k === undefined ? v.replace(/_/g, ' ') : alertKindLabel(k);
  }
  return '';
}

/**
 * One line for an alert.* journal event from its details_json ({id, kind, subject, message} when
 * raised or resolved, an RPO alert's folder under `folder` instead of in the subject and message; {id, note} when acknowledged; {channel, delivered, message} when a channel was
 * tested), e.g. "alert raised: RPO breached · src-a:/data · no backup for 3 h (RPO 1 h)". '' for
 * other event types; tolerant of missing or unreadable details.
 */
export function alertJournalSummary(eventType: string, detailsJson: string): string {
  if (!isAlertJournalType(eventType)) return '';
  let d: Record<string, unknown> = {};
  try {
    d = asObject(JSON.parse(detailsJson || '{}'));
  } catch {
    // unreadable details: say what the type says
  }
  const what = eventType.slice(JOURNAL_PREFIX.length);
  const verb = JOURNAL_VERBS[what] ?? what.replace(/_/g, ' ');
  if (what === 'channel_tested') {
    const channel = text(d.channel) || text(d.name);
    const delivered = d.delivered === true || d.outcome === 'delivered';
    const outcome = typeof d.delivered === 'boolean' ? (delivered ? 'delivered' : 'not delivered') : text(d.outcome);
    return [`channel ${channel || '?'} tested`, outcome, text(d.message) || text(d.error)].filter(Boolean).join(' · ');
  }
  const parts = [`alert ${verb}`];
  const kind = kindText(d.kind);
  if (kind) parts[0] += `: ${kind}`;
  // An RPO alert's folder comes under its own key (so private views redact it as a path).
  const folder = text(d.folder);
  const subject = folder ? `${text(d.subject)}:${folder}` : text(d.subject);
  if (subject) parts.push(subject);
  const message = text(d.message);
  if (message) parts.push(message);
  const note = text(d.note);
  if (note) parts.push(`note: ${note}`);
  return parts.join(' · ');
}
