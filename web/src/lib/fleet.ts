// The fleet state fed by StatusService.Watch: a snapshot replaces it, deltas patch it.
// Pure and mutable on purpose (100k packages must not be copied per delta); every apply returns a
// FleetChange describing what moved so views can decide cheaply whether to recompute.
import type {
  GetStatusResponse,
  JournalEvent,
  Package,
  PackageType,
  RuleSet,
  Source,
  Station,
  WatchEvent,
  FleetSnapshot,
} from './pb';
import { timestampToMs } from './format';

export interface FleetState {
  /** Component status and counters; undefined until the first snapshot. */
  status: GetStatusResponse | undefined;
  sources: Map<string, Source>;
  ruleSets: Map<PackageType, RuleSet>;
  /** Every package known to this browser: the snapshot's newest, deltas, and pages loaded on demand. */
  packages: Map<string, Package>;
  /** Newest first, capped. */
  journal: JournalEvent[];
  stations: Station[];
  /** How many snapshots were applied (0: still loading). */
  generation: number;
  /** Ids deleted since the last snapshot, so a late page cannot resurrect them. */
  deleted: Set<string>;
  /** How many packages the last snapshot brought, and the oldest of them (by id). */
  snapshotPackages: number;
  snapshotOldestId: string;
}

export interface PackageChange {
  id: string;
  /** The package before (undefined when it was new). */
  before?: Package;
  /** The package after (undefined when it was deleted). */
  after?: Package;
}

export interface FleetChange {
  /** A snapshot replaced everything. */
  resync: boolean;
  status: boolean;
  sources: boolean;
  rules: boolean;
  journal: boolean;
  stations: boolean;
  packages: PackageChange[];
}

export const JOURNAL_CAP = 2000;
const TOMBSTONE_CAP = 20000;

export function emptyFleet(): FleetState {
  return {
    status: undefined,
    sources: new Map(),
    ruleSets: new Map(),
    packages: new Map(),
    journal: [],
    stations: [],
    generation: 0,
    deleted: new Set(),
    snapshotPackages: 0,
    snapshotOldestId: '',
  };
}

export function noChange(): FleetChange {
  return {
    resync: false,
    status: false,
    sources: false,
    rules: false,
    journal: false,
    stations: false,
    packages: [],
  };
}

/** Combines two changes into one (for coalescing many events into one view update). */
export function mergeChanges(a: FleetChange, b: FleetChange): FleetChange {
  return {
    resync: a.resync || b.resync,
    status: a.status || b.status,
    sources: a.sources || b.sources,
    rules: a.rules || b.rules,
    journal: a.journal || b.journal,
    stations: a.stations || b.stations,
    packages: a.packages.concat(b.packages),
  };
}

/** Applies one Watch event in place. */
export function applyWatchEvent(state: FleetState, ev: WatchEvent): FleetChange {
  const change = noChange();
  const k = ev.kind;
  switch (k.case) {
    case 'snapshot':
      applySnapshot(state, k.value);
      return { ...change, resync: true, status: true, sources: true, rules: true, journal: true, stations: true };
    case 'packageChanged': {
      const pc = upsertPackage(state, k.value, true);
      if (pc) change.packages.push(pc);
      return change;
    }
    case 'packageDeleted': {
      const before = state.packages.get(k.value);
      state.packages.delete(k.value);
      rememberDeleted(state, k.value);
      if (before) change.packages.push({ id: k.value, before });
      return change;
    }
    case 'sourceChanged':
      state.sources.set(k.value.sourceId, k.value);
      change.sources = true;
      return change;
    case 'statusChanged':
      state.status = k.value;
      change.status = true;
      return change;
    case 'journalAppended':
      change.journal = appendJournal(state, k.value);
      return change;
    case 'rulesChanged':
      state.ruleSets = ruleSetMap(k.value.ruleSets);
      change.rules = true;
      return change;
    default:
      return change; // an event kind this build does not know: ignore rather than break the stream
  }
}

function applySnapshot(state: FleetState, snap: FleetSnapshot): void {
  state.status = snap.status;
  state.sources = new Map(snap.sources.map((s) => [s.sourceId, s]));
  state.ruleSets = ruleSetMap(snap.ruleSets);
  state.packages = new Map(snap.packages.map((p) => [p.packageId, p]));
  state.snapshotPackages = snap.packages.length;
  state.snapshotOldestId = snap.packages.reduce((min, p) => (min === '' || p.packageId < min ? p.packageId : min), '');
  state.journal = [...snap.journal].sort((a, b) => cmpBig(b.sequence, a.sequence)).slice(0, JOURNAL_CAP);
  state.stations = [...snap.stations];
  state.deleted = new Set();
  state.generation++;
}

function ruleSetMap(ruleSets: RuleSet[]): Map<PackageType, RuleSet> {
  return new Map(ruleSets.map((r) => [r.packageType, r]));
}

/**
 * Merges packages fetched with a unary call (ListPackages, GetPackage). A stored copy that is newer
 * (by updated_at) wins, and packages deleted since the last snapshot stay deleted.
 */
export function mergePackages(state: FleetState, pkgs: Package[]): FleetChange {
  const change = noChange();
  for (const p of pkgs) {
    if (state.deleted.has(p.packageId)) continue;
    const pc = upsertPackage(state, p, false);
    if (pc) change.packages.push(pc);
  }
  return change;
}

function upsertPackage(state: FleetState, p: Package, live: boolean): PackageChange | undefined {
  const before = state.packages.get(p.packageId);
  if (before && isOlder(p, before)) return undefined;
  // Watch deltas carry no file count (0): keep the one a listing brought
  if (before && p.fileCount === 0n && before.fileCount > 0n) p = { ...p, fileCount: before.fileCount };
  if (live) state.deleted.delete(p.packageId);
  state.packages.set(p.packageId, p);
  return { id: p.packageId, before, after: p };
}

/** True when `incoming` is strictly older than `stored` by updated_at (unknown times never lose). */
function isOlder(incoming: Package, stored: Package): boolean {
  const a = timestampToMs(incoming.updatedAt);
  const b = timestampToMs(stored.updatedAt);
  if (a === undefined || b === undefined) return false;
  return a < b;
}

function rememberDeleted(state: FleetState, id: string): void {
  if (state.deleted.size >= TOMBSTONE_CAP) {
    const oldest = state.deleted.values().next().value;
    if (oldest !== undefined) state.deleted.delete(oldest);
  }
  state.deleted.add(id);
}

/** Inserts one event, newest first, ignoring a sequence already held. Returns whether it was new. */
function appendJournal(state: FleetState, ev: JournalEvent): boolean {
  const j = state.journal;
  if (j.length === 0 || ev.sequence > j[0].sequence) {
    j.unshift(ev);
  } else {
    const idx = j.findIndex((e) => e.sequence <= ev.sequence);
    if (idx >= 0 && j[idx].sequence === ev.sequence) return false;
    if (idx < 0) j.push(ev);
    else j.splice(idx, 0, ev);
  }
  if (j.length > JOURNAL_CAP) j.length = JOURNAL_CAP;
  return true;
}

export function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Total packages the catcher holds (all statuses), from the status counters. */
export function totalPackages(status: GetStatusResponse | undefined): number {
  const s = status?.statuses;
  if (!s) return 0;
  return Number(s.pending + s.inProgress + s.completed + s.failed + s.expired);
}
