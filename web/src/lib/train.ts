// The train diagram and train lines: tier cars from the status counters, and per-type live counts.
import type { PackageChange } from './fleet';
import { Tier, type GetStatusResponse, type PackageType, type TierStats } from './pb';
import { CAR_TIERS } from './labels';
import { num } from './format';

export interface Car {
  tier: Tier;
  packages: number;
  bytes: number;
  incoming: number;
  outgoing: number;
}

/** One car per tier in travel order; tiers the status does not mention count zero. */
export function cars(status: GetStatusResponse | undefined): Car[] {
  const byTier = new Map<Tier, TierStats>((status?.tiers ?? []).map((t) => [t.tier, t]));
  return CAR_TIERS.map((tier) => {
    const t = byTier.get(tier);
    return {
      tier,
      packages: num(t?.packageCount),
      bytes: num(t?.totalBytes),
      incoming: num(t?.incomingNextHour),
      outgoing: num(t?.outgoingNextHour),
    };
  });
}

/** Exact package counts per (type, tier) from the catcher's counters; expired packages excluded. */
export function countsFromStatus(status: GetStatusResponse | undefined): Map<PackageType, Map<Tier, number>> {
  const out = new Map<PackageType, Map<Tier, number>>();
  for (const c of status?.typeTiers ?? []) {
    let row = out.get(c.packageType);
    if (!row) out.set(c.packageType, (row = new Map()));
    row.set(c.tier, num(c.packageCount));
  }
  return out;
}

/** Whether a change adds, removes or moves a package between types or tiers. */
export function movesTypeOrTier(c: PackageChange): boolean {
  if (!c.before || !c.after) return true;
  return c.before.tier !== c.after.tier || c.before.packageType !== c.after.packageType;
}

/**
 * How many packages crossed each coupling of the train in a batch of changes. Coupling i joins car i
 * and car i + 1 (cars in CAR_TIERS order); a package that moves from car a to car b crosses every
 * coupling in between. New packages, progress ticks, expiries and deletions cross none.
 */
export function couplingCrossings(changes: readonly PackageChange[]): number[] {
  const out = new Array<number>(CAR_TIERS.length - 1).fill(0);
  for (const c of changes) {
    if (!c.before || !c.after || c.before.tier === c.after.tier) continue;
    const from = CAR_TIERS.indexOf(c.before.tier);
    const to = CAR_TIERS.indexOf(c.after.tier);
    if (from < 0 || to <= from) continue; // unknown tier, or leaving the train (expiry)
    for (let i = from; i < to; i++) out[i]++;
  }
  return out;
}
