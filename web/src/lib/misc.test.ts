import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { apiBaseUrl } from './client';
import { describeError } from './errors';
import { EMPTY_JOURNAL_FILTER, journalQuery, mergeJournal } from './journal-view';
import { cars, countsFromStatus } from './train';
import { journalEvent, pkg } from './testdata';
import { GetStatusResponseSchema, PackageType, Tier, TierStatsSchema, TypeTierStatsSchema } from './pb';
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
    expect(journalQuery({ ...f, eventType: ' rules.updated ' })).toEqual({ sourceId: '', packageId: 'p1', eventType: 'rules.updated' });
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
