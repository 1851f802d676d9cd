// Filtering and sorting of the packages table, and whether a live change needs the order recomputed.
import { PackageStatus, Tier, type Fields, type ListPackagesRequest, type Package, type PackageType } from './pb';
import type { PackageChange } from './fleet';
import { timestampToMs } from './format';

export interface PackageFilter {
  /** null: any status. */
  status: PackageStatus | null;
  /** "": any source. */
  sourceId: string;
  /** null: any type. */
  type: PackageType | null;
  /** null: any tier; Tier.UNSPECIFIED: still on the way (or expired). */
  tier: Tier | null;
  /**
   * Case-insensitive substring of path, source, id, checksum or error among the loaded packages;
   * also asked of the catcher (ListPackagesRequest.query: id or checksum prefix, source, path part).
   */
  text: string;
}

export const EMPTY_FILTER: PackageFilter = { status: null, sourceId: '', type: null, tier: null, text: '' };

export type SortKey = 'created' | 'path' | 'source' | 'type' | 'tier' | 'status' | 'progress' | 'files' | 'size' | 'next';

export interface PackageSort {
  key: SortKey;
  desc: boolean;
}

export const DEFAULT_SORT: PackageSort = { key: 'created', desc: true };

export function isFilterEmpty(f: PackageFilter): boolean {
  return f.status === null && f.sourceId === '' && f.type === null && f.tier === null && f.text.trim() === '';
}

export function matchesFilter(p: Package, f: PackageFilter): boolean {
  if (f.status !== null && p.status !== f.status) return false;
  if (f.sourceId !== '' && p.sourceId !== f.sourceId) return false;
  if (f.type !== null && p.packageType !== f.type) return false;
  if (f.tier !== null && p.tier !== f.tier) return false;
  const q = f.text.trim().toLowerCase();
  if (q !== '') {
    const hay = [p.path, p.sourceId, p.packageId, p.sha256, p.lastError, p.toolRef];
    if (!hay.some((s) => s.toLowerCase().includes(q))) return false;
  }
  return true;
}

/** Progress as people read it: a completed package is 100 %. */
export function effectiveProgress(p: Package): number {
  if (p.status === PackageStatus.COMPLETED || p.status === PackageStatus.EXPIRED) return 100;
  return p.progressPercent;
}

export function sortValue(p: Package, key: SortKey): number | string {
  switch (key) {
    case 'created':
      return timestampToMs(p.createdAt) ?? 0;
    case 'path':
      return p.path.toLowerCase();
    case 'source':
      return p.sourceId.toLowerCase();
    case 'type':
      return p.packageType;
    case 'tier':
      return p.tier;
    case 'status':
      return p.status;
    case 'progress':
      return effectiveProgress(p);
    case 'files':
      return Number(p.fileCount);
    case 'size':
      return Number(p.sizeBytes);
    case 'next':
      return timestampToMs(p.nextTransitionAt) ?? Number.MAX_SAFE_INTEGER;
  }
}

/** Ids of the packages that pass `filter`, in `sort` order; ties newest first (UUIDv7 ids are time-ordered). */
export function computeRows(pkgs: Iterable<Package>, filter: PackageFilter, sort: PackageSort): string[] {
  const keyed: { v: number | string; id: string }[] = [];
  for (const p of pkgs) {
    if (matchesFilter(p, filter)) keyed.push({ v: sortValue(p, sort.key), id: p.packageId });
  }
  const dir = sort.desc ? -1 : 1;
  keyed.sort((a, b) => {
    if (a.v < b.v) return -dir;
    if (a.v > b.v) return dir;
    return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
  });
  return keyed.map((k) => k.id);
}

/**
 * Whether a change can alter the visible order or membership. Progress ticks of a package that
 * stays in the filter, under a sort that ignores progress, do not: the row just re-renders.
 */
export function changeAffectsRows(c: PackageChange, filter: PackageFilter, sort: PackageSort): boolean {
  const was = c.before !== undefined && matchesFilter(c.before, filter);
  const is = c.after !== undefined && matchesFilter(c.after, filter);
  if (was !== is) return true;
  if (!is) return false;
  return sortValue(c.before!, sort.key) !== sortValue(c.after!, sort.key);
}

/** The longest search the catcher takes (ListPackagesRequest.query, 1..256 characters). */
export const MAX_QUERY_CHARS = 256;

/** The search text as the catcher is asked it: trimmed, '' when empty or too long to ask. */
export function serverQuery(text: string): string {
  const q = text.trim();
  return [...q].length <= MAX_QUERY_CHARS ? q : '';
}

/**
 * The server-side part of a filter, for ListPackages. The text goes as `query` too: the catcher
 * finds an id or checksum by its prefix, a source by its id and a path by any part of it, so a
 * package that is not loaded yet is found; the table then applies the same text to what it holds.
 */
export function listRequestFilter(f: PackageFilter): Fields<ListPackagesRequest> {
  return {
    status: f.status ?? PackageStatus.UNSPECIFIED,
    sourceId: f.sourceId,
    packageType: f.type ?? 0,
    // the API cannot ask for "no tier": UNSPECIFIED means any there, so it is filtered here
    tier: f.tier ?? Tier.UNSPECIFIED,
    query: serverQuery(f.text),
  };
}

/** A stable text key of the server-side filter: a new key means paging starts over. */
export function serverFilterKey(f: PackageFilter): string {
  const r = listRequestFilter(f);
  return JSON.stringify([r.status, r.sourceId, r.packageType, r.tier, r.query]);
}
