import { describe, expect, it } from 'vitest';
import { PackageStatus, Tier } from './pb';
import { pkg } from './testdata';
import { groupByTier } from './tracking';

describe('package tracking by tier', () => {
  const all = [
    pkg('0005', { tier: Tier.UNSPECIFIED, sizeBytes: 5n }),
    pkg('0004', { tier: Tier.HOT, sizeBytes: 4n }),
    pkg('0003', { tier: Tier.HOT, sizeBytes: 3n }),
    pkg('0002', { tier: Tier.WARM, sizeBytes: 2n }),
    pkg('0001', { tier: Tier.UNSPECIFIED, status: PackageStatus.EXPIRED, sizeBytes: 1n }),
  ];
  const byId = new Map(all.map((p) => [p.packageId, p]));

  it('groups the rows by tier in travel order, counting bytes, leaving expired ones out', () => {
    const groups = groupByTier(all.map((p) => p.packageId), (id) => byId.get(id), 10);
    expect(groups.map((g) => [g.tier, g.count, g.bytes])).toEqual([
      [Tier.UNSPECIFIED, 1, 5],
      [Tier.HOT, 2, 7],
      [Tier.WARM, 1, 2],
      [Tier.COLD, 0, 0],
      [Tier.OFFSITE, 0, 0],
    ]);
  });

  it('keeps the row order and caps each group', () => {
    const groups = groupByTier(['0003', '0004'], (id) => byId.get(id), 1);
    expect(groups[1].items.map((p) => p.packageId)).toEqual(['0003']);
    expect(groups[1].count).toBe(2);
  });
});
