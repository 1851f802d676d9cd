// Package tracking: the packages of the table grouped by the tier they are in (the "On the way"
// group first: still at the clients), each group newest first and capped for display.
import { PackageStatus, Tier, type Package } from './pb';
import { CAR_TIERS } from './labels';

export interface TierGroup {
  tier: Tier;
  /** Packages of this tier among the rows. */
  count: number;
  /** Their bytes. */
  bytes: number;
  /** The first `perTier` of them, in row order. */
  items: Package[];
}

/**
 * One group per tier in travel order, from `rows` (ids in display order, already filtered).
 * Expired packages are in no tier any more and are left out.
 */
export function groupByTier(rows: readonly string[], get: (id: string) => Package | undefined, perTier: number): TierGroup[] {
  const groups = new Map<Tier, TierGroup>(CAR_TIERS.map((tier) => [tier, { tier, count: 0, bytes: 0, items: [] }]));
  for (const id of rows) {
    const p = get(id);
    if (!p || p.status === PackageStatus.EXPIRED) continue;
    const g = groups.get(p.tier);
    if (!g) continue; // a tier this build does not know
    g.count++;
    g.bytes += Number(p.sizeBytes);
    if (g.items.length < perTier) g.items.push(p);
  }
  return [...groups.values()];
}
