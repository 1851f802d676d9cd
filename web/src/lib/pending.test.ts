import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  JournalEventType,
  JournalEventTypeSchema,
  PackageType,
  PendingChangeSchema,
  PendingChangeState,
  PendingChangeStateSchema,
  type PendingChange,
} from './pb';
import {
  appliedNotice,
  applyPendingEvent,
  countdown,
  describePending,
  emptyPending,
  formatHold,
  heldNotice,
  pendingForType,
  pendingJournalSummary,
  pendingJournalVerb,
  sortedPending,
  upsertPending,
} from './pending';
import { journalKind, journalSummary } from './journal-view';
import { pendingStateKey, pendingStateLabel } from './labels';
import { enumValues } from './enums';
import { formatTime } from './format';
import { event, journalEvent, pkg, snapshotEvent } from './testdata';
import { LiveStore } from './store.svelte';

const H = 3600_000;
const T0 = Date.UTC(2026, 0, 2, 12, 0, 0);

function ruleChange(
  id: number,
  o: { state?: PendingChangeState; type?: PackageType; effectiveMs?: number; createdMs?: number; shortened?: string[]; origin?: string } = {},
): PendingChange {
  const type = o.type ?? PackageType.USER_DATA;
  return create(PendingChangeSchema, {
    changeId: BigInt(id),
    state: o.state ?? PendingChangeState.PENDING,
    change: {
      case: 'ruleSet',
      value: { before: { packageType: type }, after: { packageType: type }, shortened: o.shortened ?? ['hot wait 7d -> 1h'], origin: o.origin ?? 'update' },
    },
    requestedBy: 'token:otto (operator)',
    reason: 'save space',
    createdAt: timestampFromMs(o.createdMs ?? T0),
    effectiveAt: timestampFromMs(o.effectiveMs ?? T0 + 24 * H),
  });
}

function deletion(id: number, state = PendingChangeState.PENDING): PendingChange {
  return create(PendingChangeSchema, {
    changeId: BigInt(id),
    state,
    change: { case: 'packageDeletion', value: { packageId: 'pkg-1', sourceId: 'edge-a', path: 'docs/a.txt' } },
    requestedBy: 'token:ada (admin)',
    createdAt: timestampFromMs(T0),
    effectiveAt: timestampFromMs(T0 + 24 * H),
  });
}

const ids = (changes: PendingChange[]) => changes.map((c) => Number(c.changeId));

describe('pending changes reducer', () => {
  it('a snapshot replaces the open changes (open ones only), deltas upsert and drop them', () => {
    const book = emptyPending();
    expect(
      applyPendingEvent(
        book,
        snapshotEvent({ pendingChanges: [ruleChange(2, { effectiveMs: T0 + 2 * H }), ruleChange(1, { effectiveMs: T0 + 5 * H }), ruleChange(9, { state: PendingChangeState.APPLIED })] }),
      ),
    ).toBe(true);
    expect(ids(sortedPending(book))).toEqual([2, 1]);

    // created
    expect(applyPendingEvent(book, event({ case: 'pendingChange', value: deletion(3) }))).toBe(true);
    expect(ids(sortedPending(book))).toEqual([2, 1, 3]);
    // cancelled, superseded, applied, failed: each leaves the open list
    for (const [id, state] of [
      [2, PendingChangeState.CANCELLED],
      [1, PendingChangeState.SUPERSEDED],
      [3, PendingChangeState.FAILED],
    ] as const) {
      expect(applyPendingEvent(book, event({ case: 'pendingChange', value: ruleChange(id, { state }) }))).toBe(true);
    }
    expect(book.open.size).toBe(0);
    // a resolution of one never held moves nothing; other events leave the changes alone
    expect(applyPendingEvent(book, event({ case: 'pendingChange', value: ruleChange(7, { state: PendingChangeState.APPLIED }) }))).toBe(false);
    expect(applyPendingEvent(book, event({ case: 'packageChanged', value: pkg('p1') }))).toBe(false);
    // an id of 0 is no change
    expect(applyPendingEvent(book, event({ case: 'pendingChange', value: ruleChange(0) }))).toBe(false);
  });

  it('a resolved change never reopens, and a unary answer never overrides the stream', () => {
    const book = emptyPending();
    applyPendingEvent(book, snapshotEvent());
    applyPendingEvent(book, event({ case: 'pendingChange', value: ruleChange(5, { state: PendingChangeState.CANCELLED }) }));
    // the UpdateRuleSet answer arrives after the stream said it was cancelled
    expect(upsertPending(book, ruleChange(5), false)).toBe(false);
    expect(book.open.size).toBe(0);
    // the stream told of it first, with a later effective time: the unary copy does not replace it
    applyPendingEvent(book, event({ case: 'pendingChange', value: ruleChange(6, { effectiveMs: T0 + 30 * H }) }));
    expect(upsertPending(book, ruleChange(6, { effectiveMs: T0 + 24 * H }), false)).toBe(false);
    expect(book.open.get(6n)?.effectiveAt).toEqual(timestampFromMs(T0 + 30 * H));
    // a unary answer fills a gap
    expect(upsertPending(book, ruleChange(8), false)).toBe(true);
    // the CancelPendingChange answer drops it at once
    expect(upsertPending(book, ruleChange(8, { state: PendingChangeState.CANCELLED }), false)).toBe(true);
    expect(ids(sortedPending(book))).toEqual([6]);
    // a new snapshot starts over (the server is the truth)
    applyPendingEvent(book, snapshotEvent({ pendingChanges: [ruleChange(5)] }));
    expect(ids(sortedPending(book))).toEqual([5]);
  });

  it('orders by effective time, then id', () => {
    const book = emptyPending();
    applyPendingEvent(book, snapshotEvent({ pendingChanges: [ruleChange(4, { effectiveMs: T0 + H }), ruleChange(3, { effectiveMs: T0 + H }), ruleChange(1, { effectiveMs: T0 + 2 * H })] }));
    expect(ids(sortedPending(book))).toEqual([3, 4, 1]);
  });

  it('the live store keeps them and announces changes once per flush', () => {
    const store = new LiveStore();
    store.apply(snapshotEvent({ pendingChanges: [ruleChange(1)] }));
    store.flush();
    const v = store.pendingV;
    expect(store.pending.open.size).toBe(1);
    store.mergePending([ruleChange(2), deletion(3)]);
    store.flush();
    expect(store.pendingV).toBe(v + 1);
    expect(ids(sortedPending(store.pending))).toEqual([1, 2, 3]);
    store.mergePending([ruleChange(2)]); // already held: nothing moves
    store.flush();
    expect(store.pendingV).toBe(v + 1);
    store.apply(event({ case: 'pendingChange', value: ruleChange(1, { state: PendingChangeState.APPLIED }) }));
    store.flush();
    expect(store.pendingV).toBe(v + 2);
    expect(ids(sortedPending(store.pending))).toEqual([2, 3]);
  });
});

describe('describing pending changes', () => {
  it('says what a rule set change shortens, where it came from, who asked and why', () => {
    const v = describePending(ruleChange(4, { type: PackageType.APP_LOGS, shortened: ['hot wait 30d -> 1s', 'cold stop disabled'], origin: 'preset cost' }));
    expect(v).toMatchObject({
      id: '4',
      kind: 'rule_set',
      title: 'Rule set for app logs',
      lines: ['hot wait 30d -> 1s', 'cold stop disabled'],
      origin: 'preset cost',
      packageType: PackageType.APP_LOGS,
      requestedBy: 'token:otto (operator)',
      reason: 'save space',
      effectiveMs: T0 + 24 * H,
    });
    expect(describePending(ruleChange(4, { shortened: [] })).lines).toEqual(['keeps data for a shorter time']);
  });

  it('names the package a deletion removes', () => {
    expect(describePending(deletion(5))).toMatchObject({ kind: 'package_deletion', title: 'Delete package pkg-1', lines: ['edge-a: docs/a.txt'], origin: '' });
    const bare = create(PendingChangeSchema, { changeId: 6n, state: PendingChangeState.PENDING });
    expect(describePending(bare)).toMatchObject({ kind: 'unknown', title: 'Change #6', lines: [] });
  });

  it('counts down to the effective time', () => {
    const due = T0 + 24 * H;
    expect(countdown(due, T0 + 30_000)).toBe('takes effect in 23 h 59 min');
    expect(countdown(due, due - 90_000)).toBe('takes effect in 1 min 30 s');
    expect(countdown(due, due - 500)).toBe('takes effect now');
    expect(countdown(due, due + 5000)).toBe('takes effect now');
    expect(countdown(undefined, T0)).toMatch(/did not say/);
  });

  it('says a held change is held, for how long and until when', () => {
    expect(formatHold(86400)).toBe('24 h');
    expect(formatHold(3600)).toBe('1 h');
    expect(formatHold(5400)).toBe('90 min');
    expect(formatHold(7 * 86400)).toBe('7 d');
    expect(formatHold(0)).toBe('0 s');
    const at = formatTime(T0 + 24 * H);
    expect(heldNotice([ruleChange(1)])).toBe(`Held for 24 h: takes effect at ${at} unless cancelled.`);
    expect(heldNotice([ruleChange(1), ruleChange(2, { type: PackageType.APP_LOGS }), deletion(3)])).toBe(
      `3 changes held for 24 h (user data, app logs, a package deletion): take effect at ${at} unless cancelled.`,
    );
    expect(heldNotice([ruleChange(1), ruleChange(2, { effectiveMs: T0 + 25 * H })])).toContain(`from ${at}`);
    expect(heldNotice([])).toBe('');
    expect(appliedNotice([ruleChange(1)], 0n, 0n)).toBe(`Held for 24 h: takes effect at ${at} unless cancelled. Nothing else changed.`);
    expect(appliedNotice([ruleChange(1)], 12n, 1500n)).toContain('The other rule sets applied at once: config snapshot #12, 1,500 packages re-planned.');
  });

  it('finds the open change of a rule set', () => {
    const open = [deletion(1), ruleChange(2, { type: PackageType.APP_LOGS }), ruleChange(3)];
    expect(pendingForType(open, PackageType.USER_DATA)?.changeId).toBe(3n);
    expect(pendingForType(open, PackageType.CACHE)).toBeUndefined();
  });

  it('labels every state', () => {
    expect(enumValues(PendingChangeStateSchema).map(pendingStateLabel)).toEqual(['pending', 'applied', 'cancelled', 'superseded', 'failed']);
    expect(pendingStateLabel(PendingChangeState.UNSPECIFIED)).toBe('unknown');
    expect(pendingStateLabel(9 as PendingChangeState)).toBe('unknown');
    expect(pendingStateKey(PendingChangeState.SUPERSEDED)).toBe('superseded');
  });
});

describe('pending_change journal events', () => {
  const PENDING_TYPES = JournalEventTypeSchema.values
    .filter((v) => v.name.startsWith('JOURNAL_EVENT_TYPE_PENDING_CHANGE_'))
    .map((v) => `pending_change.${v.name.slice('JOURNAL_EVENT_TYPE_PENDING_CHANGE_'.length).toLowerCase()}`);

  it('reads every pending_change event type the contract declares', () => {
    expect(PENDING_TYPES).toEqual(['pending_change.created', 'pending_change.cancelled', 'pending_change.applied', 'pending_change.failed']);
    expect(JournalEventType.PENDING_CHANGE_FAILED).toBe(43);
    for (const t of PENDING_TYPES) {
      expect(pendingJournalVerb(t), t).not.toBe('');
      expect(pendingJournalSummary(t, '{}'), t).toMatch(/^pending change /);
      expect(journalKind(t), t).not.toBe('ok');
    }
    expect(journalKind('pending_change.failed')).toBe('bad');
    expect(journalKind('pending_change.created')).toBe('warn');
    expect(journalKind('pending_change.cancelled')).toBe('info');
    expect(journalKind('package.completed')).toBe('ok');
    expect(pendingJournalVerb('rules.updated')).toBe('');
  });

  it('summarises a held rule set change from its details', () => {
    // as the catcher writes them
    const details = JSON.stringify({
      change_id: 3,
      kind: 'rule_set',
      change: { package_type: 'user_data', shortened: ['hot wait 30d -> 1s'], origin: 'update' },
      requested_by: 'token:otto (operator)',
      reason: 'save space',
      effective_at: T0 + 24 * H,
      outcome: '',
    });
    expect(pendingJournalSummary('pending_change.created', details)).toBe(
      `change #3 held: rule set for user data (update): hot wait 30d -> 1s · takes effect ${formatTime(T0 + 24 * H)} unless cancelled · reason: save space`,
    );
    // RFC 3339 times and numeric package types are read too
    const iso = JSON.stringify({ change_id: 3, package_type: PackageType.APP_LOGS, effective_at: new Date(T0).toISOString() });
    expect(pendingJournalSummary('pending_change.created', iso)).toBe(`change #3 held: rule set for app logs · takes effect ${formatTime(T0)} unless cancelled`);
  });

  it('summarises deletions, cancellations and failures', () => {
    expect(pendingJournalSummary('pending_change.applied', JSON.stringify({ change_id: 4, kind: 'package_deletion', package_id: 'pkg-1', path: 'docs/a.txt' }))).toBe(
      'change #4 took effect: delete package pkg-1 (docs/a.txt)',
    );
    expect(pendingJournalSummary('pending_change.cancelled', JSON.stringify({ change_id: 4, reason: 'wrong package' }), 'pkg-1')).toBe(
      'change #4 cancelled: delete package pkg-1 · reason: wrong package',
    );
    // a cancellation's outcome is the canceller's reason, not the requester's
    const cancelled = {
      change_id: 7,
      kind: 'package_deletion',
      change: { package_id: 'pkg-2', path: 'logs/x.gz' },
      requested_by: 'token:ada (admin)',
      reason: 'tidy up',
      effective_at: T0,
      outcome: 'not today',
    };
    expect(pendingJournalSummary('pending_change.cancelled', JSON.stringify(cancelled), 'pkg-2')).toBe('change #7 cancelled: delete package pkg-2 (logs/x.gz) · not today');
    expect(pendingJournalSummary('pending_change.failed', JSON.stringify({ change_id: 5, kind: 'rule_set', outcome: 'rule set invalid now' }))).toBe(
      'change #5 could not be applied; nothing changed: rule set · rule set invalid now',
    );
    expect(pendingJournalSummary('pending_change.created', 'not json')).toBe('pending change held');
    expect(pendingJournalSummary('rules.updated', '{"change_id":1}')).toBe('');
    expect(journalSummary(journalEvent(1, { eventType: 'pending_change.cancelled', detailsJson: '{"change_id":9}' }))).toBe('change #9 cancelled');
    expect(journalSummary(journalEvent(2))).toBe('');
  });
});
