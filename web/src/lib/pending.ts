// Protected retention: changes that would delete data sooner wait out the catcher's protection
// delay as pending changes (FleetSnapshot.pending_changes, WatchEvent.pending_change). This keeps
// the open ones by change id and says what each does, who asked, and when it takes effect.
import { enumFromSpelling } from './enums';
import { formatApproxDuration, formatTime, formatWait, HOUR, plural, timestampToMs } from './format';
import { typeLabel } from './labels';
import { PackageTypeSchema, PendingChangeState, type PackageType, type PendingChange, type WatchEvent } from './pb';

/** Resolved ids remembered since the last snapshot, so a late unary answer cannot reopen one. */
const RESOLVED_CAP = 1000;

export interface PendingBook {
  /** Open (PENDING) changes by change id. */
  open: Map<bigint, PendingChange>;
  /** Ids seen applied, cancelled, superseded or failed since the last snapshot. */
  resolved: Set<bigint>;
}

export function emptyPending(): PendingBook {
  return { open: new Map(), resolved: new Set() };
}

export function isOpen(c: PendingChange): boolean {
  return c.state === PendingChangeState.PENDING;
}

/**
 * Applies one Watch event: a snapshot replaces the open changes, pending_change upserts one (and
 * drops it when it is no longer pending). Returns whether the open changes moved.
 */
export function applyPendingEvent(book: PendingBook, ev: WatchEvent): boolean {
  switch (ev.kind.case) {
    case 'snapshot':
      book.open.clear();
      book.resolved.clear();
      for (const c of ev.kind.value.pendingChanges) {
        if (c.changeId !== 0n && isOpen(c)) book.open.set(c.changeId, c);
      }
      return true;
    case 'pendingChange':
      return upsertPending(book, ev.kind.value, true);
    default:
      return false;
  }
}

/**
 * Stores one change. A resolved change leaves the open list for good; an open one from a unary
 * answer (UpdateRuleSet, ApplyPreset, …) only fills a gap, since the stream may already have told
 * more. Returns whether the open changes moved.
 */
export function upsertPending(book: PendingBook, c: PendingChange, live: boolean): boolean {
  const id = c.changeId;
  if (id === 0n) return false;
  if (!isOpen(c)) {
    if (book.resolved.size >= RESOLVED_CAP) {
      const oldest = book.resolved.values().next().value;
      if (oldest !== undefined) book.resolved.delete(oldest);
    }
    book.resolved.add(id);
    return book.open.delete(id);
  }
  if (book.resolved.has(id)) return false;
  if (!live && book.open.has(id)) return false;
  book.open.set(id, c);
  return true;
}

/** Open changes, the one due first first. */
export function sortedPending(book: PendingBook): PendingChange[] {
  return [...book.open.values()].sort(
    (a, b) => (timestampToMs(a.effectiveAt) ?? 0) - (timestampToMs(b.effectiveAt) ?? 0) || (a.changeId < b.changeId ? -1 : a.changeId > b.changeId ? 1 : 0),
  );
}

export interface PendingView {
  id: string;
  kind: 'rule_set' | 'package_deletion' | 'unknown';
  /** "Rule set for user data", "Delete package 0190…". */
  title: string;
  /** What gets shorter ("hot wait 30d -> 1s"), or the package's source and path. */
  lines: string[];
  /** What asked for it ("update", "preset cloud", "snapshot 3"); '' for deletions. */
  origin: string;
  /** The package type a rule set change is for. */
  packageType?: PackageType;
  requestedBy: string;
  reason: string;
  createdMs?: number;
  effectiveMs?: number;
}

/** What a pending change does, as the banner shows it. */
export function describePending(c: PendingChange): PendingView {
  const base = {
    id: String(c.changeId),
    requestedBy: c.requestedBy,
    reason: c.reason,
    createdMs: timestampToMs(c.createdAt),
    effectiveMs: timestampToMs(c.effectiveAt),
  };
  const ch = c.change;
  switch (ch.case) {
    case 'ruleSet': {
      const t = ch.value.after?.packageType ?? ch.value.before?.packageType;
      return {
        ...base,
        kind: 'rule_set',
        title: t === undefined ? 'Rule set' : `Rule set for ${typeLabel(t)}`,
        lines: ch.value.shortened.length > 0 ? [...ch.value.shortened] : ['keeps data for a shorter time'],
        origin: ch.value.origin,
        packageType: t,
      };
    }
    case 'packageDeletion': {
      const d = ch.value;
      const where = [d.sourceId, d.path].filter(Boolean).join(': ');
      return { ...base, kind: 'package_deletion', title: `Delete package ${d.packageId}`, lines: where ? [where] : [], origin: '' };
    }
    default:
      return { ...base, kind: 'unknown', title: `Change #${c.changeId}`, lines: [], origin: '' };
  }
}

/** "takes effect in 23 h 59 min"; "takes effect now" once due (the catcher applies it shortly). */
export function countdown(effectiveMs: number | undefined, nowMs: number): string {
  if (effectiveMs === undefined || effectiveMs === 0) return 'takes effect at a time the catcher did not say';
  const delta = effectiveMs - nowMs;
  if (delta < 1000) return 'takes effect now';
  return `takes effect in ${formatApproxDuration(delta)}`;
}

/** A protection delay as people say it: "24 h", "90 min", "7 d". */
export function formatHold(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return '0 s';
  if (seconds % HOUR === 0 && seconds <= 72 * HOUR) return `${seconds / HOUR} h`;
  return formatWait(Math.round(seconds));
}

/** How long a change is held: effective_at − created_at, in seconds (undefined when unknown). */
export function holdSeconds(c: PendingChange): number | undefined {
  const a = timestampToMs(c.createdAt);
  const b = timestampToMs(c.effectiveAt);
  if (a === undefined || b === undefined) return undefined;
  return Math.max(0, Math.round((b - a) / 1000));
}

/**
 * What to tell the person whose change was held instead of "saved":
 * "Held for 24 h: takes effect at 2026-01-02 13:04:05 unless cancelled."
 * Several (a preset, a snapshot restore): "2 changes held for 24 h (user data, app logs): take
 * effect at … unless cancelled."
 */
export function heldNotice(changes: PendingChange[]): string {
  if (changes.length === 0) return '';
  const holds = changes.map(holdSeconds).filter((s) => s !== undefined);
  const hold = holds.length > 0 ? `for ${formatHold(Math.max(...holds))}` : 'for the protection delay';
  const dues = changes.map((c) => timestampToMs(c.effectiveAt) ?? 0).filter((ms) => ms > 0);
  const first = dues.length > 0 ? Math.min(...dues) : undefined;
  const last = dues.length > 0 ? Math.max(...dues) : undefined;
  const at = first === undefined ? 'when the protection delay ends' : first === last ? `at ${formatTime(first)}` : `from ${formatTime(first)}`;
  if (changes.length === 1) return `Held ${hold}: takes effect ${at} unless cancelled.`;
  const what = changes.map((c) => {
    const v = describePending(c);
    return v.kind === 'rule_set' && v.packageType !== undefined ? typeLabel(v.packageType) : v.kind === 'package_deletion' ? 'a package deletion' : `#${v.id}`;
  });
  return `${changes.length} changes held ${hold} (${what.join(', ')}): take effect ${at} unless cancelled.`;
}

/**
 * The outcome of ApplyPreset or RestoreConfigSnapshot when some rule sets were held: what waits,
 * then what applied at once (`snapshotId` is 0 when nothing did).
 */
export function appliedNotice(pending: PendingChange[], snapshotId: bigint, replanned: bigint): string {
  const rest =
    snapshotId > 0n
      ? `The other rule sets applied at once: config snapshot #${snapshotId}, ${plural(replanned, 'package')} re-planned.`
      : 'Nothing else changed.';
  return `${heldNotice(pending)} ${rest}`;
}

/** The open rule set change for `type`, if any (the editor points at it). */
export function pendingForType(changes: Iterable<PendingChange>, type: PackageType): PendingChange | undefined {
  for (const c of changes) {
    if (c.change.case === 'ruleSet' && (c.change.value.after?.packageType ?? c.change.value.before?.packageType) === type) return c;
  }
  return undefined;
}

const JOURNAL_PREFIX = 'pending_change.';

/** What each pending_change.* journal event says happened. */
const JOURNAL_VERBS: Record<string, string> = {
  created: 'held',
  cancelled: 'cancelled',
  applied: 'took effect',
  failed: 'could not be applied; nothing changed',
};

export function isPendingJournalType(eventType: string): boolean {
  return eventType.startsWith(JOURNAL_PREFIX);
}

/** "held", "cancelled", …; '' for other event types. */
export function pendingJournalVerb(eventType: string): string {
  if (!isPendingJournalType(eventType)) return '';
  const what = eventType.slice(JOURNAL_PREFIX.length);
  return JOURNAL_VERBS[what] ?? what.replace(/_/g, ' ');
}

/** A time in details_json: epoch ms (or seconds), or an RFC 3339 string. */
function detailTime(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v < 1e11 ? v * 1000 : v;
  if (typeof v === 'string' && v) {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

function asObject(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function detailText(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';
}

function detailType(v: unknown): string {
  if (typeof v === 'number') return typeLabel(v as PackageType);
  if (typeof v === 'string' && v) {
    const t = enumFromSpelling(PackageTypeSchema, v.toLowerCase().replace(/^package_type_/, ''));
    return t === undefined ? v.replace(/_/g, ' ') : typeLabel(t);
  }
  return '';
}

/**
 * One line for a pending_change.* journal event from its details_json ({change_id, kind, change:
 * {package_type, shortened, origin} | {package_id, path}, requested_by, reason, effective_at (epoch
 * ms), outcome}), e.g.
 * "change #3 held: rule set for user data (update): hot wait 30d -> 1s · takes effect 2026-01-02 13:04:05".
 * '' for other event types; tolerant of missing or unreadable details.
 */
export function pendingJournalSummary(eventType: string, detailsJson: string, packageId = ''): string {
  if (!isPendingJournalType(eventType)) return '';
  let top: Record<string, unknown> = {};
  try {
    top = asObject(JSON.parse(detailsJson || '{}'));
  } catch {
    // unreadable details: say what the type says
  }
  // the catcher nests what the change does under "change"; read either shape
  const d: Record<string, unknown> = { ...asObject(top.change), ...top };
  const id = detailText(d.change_id);
  let head = `${id ? `change #${id}` : 'pending change'} ${pendingJournalVerb(eventType)}`;
  const what: string[] = [];
  const type = detailType(d.package_type);
  const pkg = detailText(d.package_id) || packageId;
  const kind = detailText(d.kind);
  if (kind === 'package_deletion' || (!type && pkg && kind !== 'rule_set')) {
    const path = detailText(d.path);
    what.push(`delete package ${pkg}${path ? ` (${path})` : ''}`);
  } else if (type || kind === 'rule_set') {
    const origin = detailText(d.origin);
    what.push(`rule set${type ? ` for ${type}` : ''}${origin ? ` (${origin})` : ''}`);
  }
  const shortened = Array.isArray(d.shortened) ? d.shortened.map(detailText).filter(Boolean) : [];
  if (shortened.length > 0) what.push(shortened.join(', '));
  if (what.length > 0) head += `: ${what.join(': ')}`;
  const parts = [head];
  const effective = detailTime(d.effective_at);
  if (effective !== undefined && eventType === `${JOURNAL_PREFIX}created`) parts.push(`takes effect ${formatTime(effective)} unless cancelled`);
  const outcome = detailText(d.outcome);
  const reason = detailText(d.reason);
  if (outcome) parts.push(outcome);
  else if (reason) parts.push(`reason: ${reason}`);
  return parts.join(' · ');
}
