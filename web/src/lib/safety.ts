// The panic brake as an operator needs it: what tripped it (the journal's source.stopped_for_safety
// details: trigger and measurements), what must be fixed before a resume can hold, and what became
// of a Resume (from the source's safety state and the journal, never a fixed text).
import { enumFromSpelling } from './enums';
import { formatApproxDuration, plural, timestampToMs } from './format';
import { SafetyState, SafetyTrigger, SafetyTriggerSchema, type JournalEvent, type Source } from './pb';

export const TRIP_EVENT = 'source.stopped_for_safety';
export const RESUMED_EVENT = 'source.resumed';
export const COMMAND_CREATED_EVENT = 'command.created';
export const COMMAND_FINISHED_EVENT = 'command.finished';

/** A trip read from its journal event. */
export interface Trip {
  trigger: SafetyTrigger;
  /** The agent's words. */
  reason: string;
  /** The measurements, e.g. "42 changed · 40 removed (38 renamed) in 60 s". */
  measured: string;
  /** What to fix before resuming. */
  fix: string;
}

function details(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The trip a source.stopped_for_safety event records (details: trigger, window_secs, changed, …). */
export function tripFromEvent(ev: JournalEvent): Trip {
  const d = details(ev.detailsJson);
  const trigger = enumFromSpelling(SafetyTriggerSchema, text(d.trigger)) ?? SafetyTrigger.UNSPECIFIED;
  const m = {
    window: count(d.window_secs),
    changed: count(d.changed),
    removed: count(d.removed),
    rewritten: count(d.rewritten),
    encrypted: count(d.turned_high_entropy),
    replaced: count(d.replaced_by_encrypted),
    renamed: count(d.renamed),
    canary: text(d.canary) || text(d.folder),
  };
  const parts: string[] = [];
  if (m.canary) parts.push(`canary ${m.canary}`);
  if (m.changed) parts.push(`${plural(m.changed, 'file')} changed`);
  if (m.removed) parts.push(`${plural(m.removed, 'file')} removed${m.renamed ? ` (${m.renamed} renamed)` : ''}`);
  else if (m.renamed) parts.push(`${plural(m.renamed, 'file')} renamed`);
  if (m.rewritten) parts.push(`${plural(m.rewritten, 'file')} rewritten${m.encrypted ? `, ${m.encrypted} now look encrypted` : ''}`);
  if (m.replaced) parts.push(`${plural(m.replaced, 'file')} replaced by encrypted-looking copies`);
  const measured = parts.length > 0 ? `${parts.join(' · ')}${m.window ? ` within ${formatApproxDuration(m.window * 1000)}` : ''}` : '';
  return { trigger, reason: ev.error, measured, fix: fixFor(trigger, m) };
}

function fixFor(t: SafetyTrigger, m: { changed: number; removed: number; renamed: number; encrypted: number; replaced: number; canary: string }): string {
  switch (t) {
    case SafetyTrigger.CANARY:
      return `Find what touched the canary file${m.canary ? ` (${m.canary})` : ''}: ransomware goes for such files first. Resume recreates the canary and runs a backup pass; if files are still being changed, the brake trips again.`;
    case SafetyTrigger.CHANGE_RATE:
      return 'Stop whatever is still changing files in the watched folder (a sync, an unpacked archive, a mass edit) first: the backup pass that follows a resume trips the brake again while the burst goes on.';
    case SafetyTrigger.RENAME_DELETE_RATIO:
      return 'Check that the renamed files are not encrypted copies, and put deleted files back (Restore) or finish the reorganisation first: the pass after a resume trips again if the renames and deletes go on.';
    case SafetyTrigger.ENTROPY:
      return 'Isolate the device and check it for ransomware; restore the damaged files from an earlier version (Restore) first, or the pass after a resume backs up the encrypted files and trips again.';
    case SafetyTrigger.ENCRYPTED_COPIES:
      return 'Isolate the device: files were replaced by encrypted-looking copies and the originals removed. Restore the originals (Restore) and remove the copies first, or the pass after a resume trips again.';
    default:
      return 'Check the device before resuming: the pass that follows a resume trips the brake again if what tripped it goes on.';
  }
}

/** The command a command.* event concerns (details_json: {command_id, kind}). */
export function commandOf(ev: JournalEvent): { id: string; kind: string } {
  const d = details(ev.detailsJson);
  return { id: text(d.command_id), kind: text(d.kind) };
}

/** A Resume this page sent: the command's id, and the journal's newest sequence when it was sent. */
export interface ResumeAttempt {
  commandId: string;
  sentAfterSeq: bigint;
}

export type ResumePhase = 'none' | 'waiting' | 'refused' | 'resumed' | 'tripped-again';

export interface ResumeView {
  phase: ResumePhase;
  /** What to tell the operator; '' for 'none'. */
  text: string;
  /** The trip that holds now (stopped sources), newest first. */
  trip?: JournalEvent;
}

/** A trip this soon after a resume (any resume, also one sent from elsewhere) means it did not hold. */
export const RETRIP_WINDOW_MS = 60 * 60 * 1000;

const newest = (events: readonly JournalEvent[], pred: (e: JournalEvent) => boolean) =>
  events.reduce<JournalEvent | undefined>((best, e) => (pred(e) && (!best || e.sequence > best.sequence) ? e : best), undefined);

/**
 * What became of the source's brake: from its safety state now, the journal events of the source
 * (trips, resumes, command.created / command.finished; any order, duplicates fine) and the Resume
 * this page sent, if it did.
 */
export function resumeView(source: Source, events: readonly JournalEvent[], attempt: ResumeAttempt | undefined, nowMs: number): ResumeView {
  const mine = events.filter((e) => e.sourceId === source.sourceId);
  const trip = newest(mine, (e) => e.eventType === TRIP_EVENT);
  const resumed = newest(mine, (e) => e.eventType === RESUMED_EVENT);
  const created = attempt ? newest(mine, (e) => e.eventType === COMMAND_CREATED_EVENT && commandOf(e).id === attempt.commandId) : undefined;
  const finished = attempt ? newest(mine, (e) => e.eventType === COMMAND_FINISHED_EVENT && commandOf(e).id === attempt.commandId) : undefined;
  const sentSeq = created?.sequence ?? attempt?.sentAfterSeq ?? 0n;
  const stopped = source.safetyState === SafetyState.STOPPED_FOR_SAFETY;

  if (stopped) {
    const tripMs = timestampToMs(trip?.at) ?? 0;
    const resumeMs = timestampToMs(resumed?.at) ?? 0;
    const afterMine = attempt !== undefined && trip !== undefined && trip.sequence > sentSeq && (finished === undefined || trip.sequence > finished.sequence || finished.statusAfter !== 'failed');
    const afterAny = trip !== undefined && resumed !== undefined && trip.sequence > resumed.sequence && tripMs - resumeMs <= RETRIP_WINDOW_MS;
    if (trip && (afterMine || afterAny)) {
      const after = resumeMs && tripMs >= resumeMs ? ` ${formatApproxDuration(tripMs - resumeMs)} after the resume` : ' after the resume';
      return { phase: 'tripped-again', trip, text: `The brake tripped again${after}: ${trip.error || source.safetyReason || 'no reason given'}.` };
    }
    if (attempt && finished && finished.statusAfter === 'failed') {
      return { phase: 'refused', trip, text: `The agent did not resume: ${finished.error || 'no reason given'}.` };
    }
    if (attempt && !finished) {
      const sent = timestampToMs(created?.at);
      const ago = sent ? ` ${formatApproxDuration(nowMs - sent)} ago` : '';
      return {
        phase: 'waiting',
        trip,
        text: source.connected ? `Resume sent${ago}; waiting for the agent to answer…` : `Resume sent${ago}; the agent is offline and gets it when it reconnects.`,
      };
    }
    return { phase: 'none', trip, text: '' };
  }
  if (attempt && (finished !== undefined || (resumed !== undefined && resumed.sequence > sentSeq))) {
    return { phase: 'resumed', text: 'Resumed: uploads continue, and the agent runs a backup pass now; if the cause goes on, the brake trips again and this row says so.' };
  }
  return { phase: 'none', text: '' };
}
