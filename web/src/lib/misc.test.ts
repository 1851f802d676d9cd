import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { apiBaseUrl } from './client';
import { describeError } from './errors';
import { EMPTY_JOURNAL_FILTER, JOURNAL_TYPES, journalQuery, journalSummary, journalTypeLabel, mergeJournal, uncheckedSince } from './journal-view';
import { cars, countsFromStatus } from './train';
import { journalEvent, pkg } from './testdata';
import { GetStatusResponseSchema, JournalEventType, PackageType, Tier, TierStatsSchema, TypeTierStatsSchema } from './pb';
import { tierLabel, typeKey, typeLabel } from './labels';

describe('api base url', () => {
  it('uses the page origin unless ?api= names a URL', () => {
    expect(apiBaseUrl({ origin: 'http://127.0.0.1:8080', search: '' })).toBe('http://127.0.0.1:8080');
    expect(apiBaseUrl({ origin: 'http://127.0.0.1:5173', search: '?api=http://127.0.0.1:8080/' })).toBe('http://127.0.0.1:8080');
    expect(apiBaseUrl({ origin: 'http://a', search: '?api=javascript:alert(1)' })).toBe('http://a');
    expect(apiBaseUrl({ origin: 'http://a', search: '?api=not a url' })).toBe('http://a');
  });
});

describe('errors', () => {
  it('describes ConnectErrors by code and raw message', () => {
    const info = describeError(new ConnectError('rule_set.warm.wait: too short', Code.InvalidArgument));
    expect(info).toEqual({ code: 'invalid_argument', message: 'rule_set.warm.wait: too short', invalidArgument: true });
    expect(describeError(new Error('boom')).message).toBe('boom');
    expect(describeError('x').code).toBe('unknown');
  });
});

describe('journal view', () => {
  it('merges live and queried events newest first without duplicates', () => {
    const live = [journalEvent(9), journalEvent(8, { packageId: 'p1' })];
    const loaded = [journalEvent(8, { packageId: 'p1' }), journalEvent(5, { packageId: 'p1' }), journalEvent(4)];
    expect(mergeJournal(live, loaded, EMPTY_JOURNAL_FILTER).map((e) => Number(e.sequence))).toEqual([9, 8, 5, 4]);
    const f = { ...EMPTY_JOURNAL_FILTER, packageId: 'p1' };
    expect(mergeJournal(live, loaded, f).map((e) => Number(e.sequence))).toEqual([8, 5]);
    expect(mergeJournal(live, loaded, { ...EMPTY_JOURNAL_FILTER, text: 'INGESTED' })).toHaveLength(4);
    expect(journalQuery({ ...f, type: JournalEventType.RULES_UPDATED, text: ' Rules ' })).toEqual({
      sourceId: '',
      packageId: 'p1',
      type: JournalEventType.RULES_UPDATED,
      text: 'Rules',
    });
    expect(journalQuery({ ...f, text: 'x'.repeat(257) }).text).toBe('');
  });

  it('filters by the typed event type, also events that only carry the spelling', () => {
    const evs = [
      journalEvent(3, { eventType: 'package.tier_changed', type: JournalEventType.PACKAGE_TIER_CHANGED }),
      journalEvent(2, { eventType: 'restore_drill.passed' }),
      journalEvent(1, { eventType: 'rules.updated', type: JournalEventType.RULES_UPDATED }),
    ];
    const of = (type: JournalEventType) => mergeJournal(evs, [], { ...EMPTY_JOURNAL_FILTER, type }).map((e) => Number(e.sequence));
    expect(of(JournalEventType.PACKAGE_TIER_CHANGED)).toEqual([3]);
    expect(of(JournalEventType.RESTORE_DRILL_PASSED)).toEqual([2]);
    expect(JOURNAL_TYPES).toContain(JournalEventType.COMMAND_FINISHED);
    expect(JOURNAL_TYPES).not.toContain(JournalEventType.UNSPECIFIED);
    expect(journalTypeLabel(JournalEventType.RESTORE_DRILL_PASSED)).toBe('restore drill passed');
  });

  it('reads command lines and panic brake trips', () => {
    const finished = journalEvent(5, {
      eventType: 'command.finished',
      statusAfter: 'succeeded',
      detailsJson: JSON.stringify({ command_id: '0193a1b2-c3d4-7e5f-8a9b-0123456789ab', kind: 'resume' }),
    });
    expect(journalSummary(finished)).toBe('Resume command 0193a1b2-c3d4 succeeded');
    const failed = journalEvent(6, { eventType: 'command.finished', statusAfter: 'failed', error: 'disk full', detailsJson: '{"command_id":"c1","kind":"backup_now"}' });
    expect(journalSummary(failed)).toBe('Backup now command c1 failed: disk full');
    expect(journalSummary(journalEvent(7, { eventType: 'command.created', detailsJson: '{"command_id":"c2","kind":"restore"}' }))).toBe('Restore command c2 queued');
    const trip = journalEvent(8, { eventType: 'source.stopped_for_safety', error: 'canary changed', detailsJson: '{"trigger":"canary","changed":1,"window_secs":60}' });
    expect(journalSummary(trip)).toBe('canary changed · 1 file changed within 1 min');
  });

  it('counts the events appended since a chain check', () => {
    expect(uncheckedSince(10n, 10n)).toBe(0n);
    expect(uncheckedSince(10n, 13n)).toBe(3n);
  });
});

describe('train', () => {
  it('builds five cars in order, zero when unknown', () => {
    const status = create(GetStatusResponseSchema, {
      tiers: [create(TierStatsSchema, { tier: Tier.WARM, packageCount: 3n, totalBytes: 300n, incomingNextHour: 2n, outgoingNextHour: 1n })],
    });
    const c = cars(status);
    expect(c.map((x) => x.tier)).toEqual([Tier.UNSPECIFIED, Tier.HOT, Tier.WARM, Tier.COLD, Tier.OFFSITE]);
    expect(c[2]).toEqual({ tier: Tier.WARM, packages: 3, bytes: 300, incoming: 2, outgoing: 1 });
    expect(cars(undefined).every((x) => x.packages === 0)).toBe(true);
  });

  it('takes per-type tier counts from the status', () => {
    const status = create(GetStatusResponseSchema, {
      typeTiers: [
        create(TypeTierStatsSchema, { packageType: PackageType.USER_DATA, tier: Tier.HOT, packageCount: 2n, totalBytes: 20n }),
        create(TypeTierStatsSchema, { packageType: PackageType.CACHE, tier: Tier.HOT, packageCount: 1n, totalBytes: 5n }),
        create(TypeTierStatsSchema, { packageType: PackageType.USER_DATA, tier: Tier.WARM, packageCount: 7n, totalBytes: 70n }),
      ],
    });
    const m = countsFromStatus(status);
    expect(m.get(PackageType.USER_DATA)?.get(Tier.HOT)).toBe(2);
    expect(m.get(PackageType.USER_DATA)?.get(Tier.WARM)).toBe(7);
    expect(m.get(PackageType.CACHE)?.get(Tier.HOT)).toBe(1);
    expect(countsFromStatus(undefined).size).toBe(0);
  });

  it('labels', () => {
    expect(typeKey(PackageType.BUSINESS_DATA)).toBe('business_data');
    expect(typeLabel(PackageType.BUSINESS_DATA)).toBe('business data');
    expect(tierLabel(Tier.UNSPECIFIED)).toBe('Clients');
    expect(tierLabel(Tier.OFFSITE)).toBe('Offsite');
  });
});

describe('couplingCrossings', () => {
  it('counts tier moves per coupling, skipping tiers and ignoring everything else', async () => {
    const { couplingCrossings } = await import('./train');
    const move = (from: Tier, to: Tier) => ({ id: 'a', before: pkg('a', { tier: from }), after: pkg('a', { tier: to }) });
    expect(
      couplingCrossings([
        move(Tier.UNSPECIFIED, Tier.HOT), // clients -> hot (completed)
        move(Tier.HOT, Tier.COLD), // warm skipped: crosses two couplings
        move(Tier.COLD, Tier.UNSPECIFIED), // expired: leaves the train
        move(Tier.WARM, Tier.WARM),
        { id: 'n', after: pkg('n') },
        { id: 'd', before: pkg('d', { tier: Tier.HOT }) },
      ]),
    ).toEqual([1, 1, 1, 0]);
  });
});

describe('movesTypeOrTier', () => {
  it('ignores progress ticks', async () => {
    const { movesTypeOrTier } = await import('./train');
    expect(movesTypeOrTier({ id: 'a', before: pkg('a', { progressPercent: 1 }), after: pkg('a', { progressPercent: 2 }) })).toBe(false);
    expect(movesTypeOrTier({ id: 'a', before: pkg('a'), after: pkg('a', { tier: Tier.HOT }) })).toBe(true);
    expect(movesTypeOrTier({ id: 'a', after: pkg('a') })).toBe(true);
  });
});
