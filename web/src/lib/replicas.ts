// The catcher replicas sharing one database (GetStatusResponse.replicas), as the line under the
// status bar shows them. Pure; `nowMs` (the server's time, estimated) is passed in.
import { formatAge, formatCount, plural, timestampToMs } from './format';
import type { GetStatusResponse } from './pb';

/**
 * A heartbeat older than this, when the catcher listed it, is stale. With the catcher's defaults
 * (lease_ttl_secs 10, a beat every third of it, about 3.3 s) that is nine beats missed; it is also
 * the default replica_timeout_secs, past which the lease holder drops the replica from the list at
 * its next beat and marks its agents disconnected. So a listed replica this silent is dead or cut
 * off and about to go (or nobody is left to drop it).
 */
export const STALE_HEARTBEAT_MS = 30_000;

export interface ReplicaRow {
  id: string;
  /** The id's end, as short as keeps it apart from the others: the full one goes in a title. */
  short: string;
  address: string;
  /** "2 h 5 min ago" (from `nowMs`). */
  started: string;
  startedMs: number | undefined;
  /** The heartbeat's age when the catcher listed it ("3 s ago"). */
  heartbeat: string;
  heartbeatMs: number | undefined;
  stale: boolean;
  leaseHolder: boolean;
  /** It answered: the status names it, or it is the only one (the answer came from a replica on this database). */
  serving: boolean;
}

export interface ReplicasView {
  /** Oldest first; none from a catcher that does not list replicas. */
  rows: ReplicaRow[];
  holder: ReplicaRow | undefined;
  staleCount: number;
  /** "" or "warn": a stale replica, or nobody holds the lease (the scheduler, drills and alerts wait). */
  tone: '' | 'warn';
  /** "1 catcher replica · holds the lease · serving you", "3 catcher replicas · lease: …9f3c2a1b (10.0.0.5:50051) · 1 stale". */
  summary: string;
  /** When the catcher listed them (its clock); heartbeat ages are as of then. */
  listedMs: number | undefined;
}

/**
 * The ends of the ids, at least 8 characters, longer until no two are alike. The end of a UUIDv7
 * is random; its start is the start time, nearly the same for replicas started together.
 */
export function shortReplicaIds(ids: string[]): string[] {
  const distinct = new Set(ids).size;
  for (let n = 8; ; n++) {
    const ends = ids.map((id) => (id.length > n + 1 ? `…${id.slice(-n)}` : id));
    if (new Set(ends).size === distinct) return ends;
  }
}

/** The replicas of `status`, oldest first, with ages, staleness and roles. */
export function replicasView(status: GetStatusResponse | undefined, nowMs: number): ReplicasView {
  const list = [...(status?.replicas ?? [])].sort(
    (a, b) => (timestampToMs(a.startedAt) ?? 0) - (timestampToMs(b.startedAt) ?? 0) || a.replicaId.localeCompare(b.replicaId),
  );
  // heartbeats are judged as of the listing: the live stream sends a new status when something
  // changes, not at every beat, so the browser's clock would age them falsely on a quiet fleet
  const listedMs = timestampToMs(status?.now);
  const at = listedMs ?? nowMs;
  const short = shortReplicaIds(list.map((r) => r.replicaId));
  const answered = status?.replicaId || (list.length === 1 ? list[0].replicaId : '');
  const rows = list.map((r, i): ReplicaRow => {
    const heartbeatMs = timestampToMs(r.heartbeatAt);
    const startedMs = timestampToMs(r.startedAt);
    return {
      id: r.replicaId,
      short: short[i] || '—',
      address: r.address || '—',
      started: formatAge(startedMs, nowMs),
      startedMs,
      heartbeat: formatAge(heartbeatMs === undefined ? undefined : Math.min(heartbeatMs, at), at),
      heartbeatMs,
      stale: heartbeatMs !== undefined && at - heartbeatMs > STALE_HEARTBEAT_MS,
      leaseHolder: r.holdsLease,
      serving: answered !== '' && r.replicaId === answered,
    };
  });
  const holder = rows.find((r) => r.leaseHolder);
  const staleCount = rows.filter((r) => r.stale).length;
  const parts = [plural(rows.length, 'catcher replica')];
  if (!holder) parts.push('no lease holder');
  else if (rows.length === 1) parts.push('holds the lease');
  else parts.push(`lease: ${holder.short}${holder.address !== '—' ? ` (${holder.address})` : ''}`);
  if (staleCount > 0) parts.push(`${formatCount(staleCount)} stale`);
  const serving = rows.find((r) => r.serving);
  if (serving) parts.push(rows.length === 1 ? 'serving you' : `serving you: ${serving.short}`);
  return {
    rows,
    holder,
    staleCount,
    tone: staleCount > 0 || (rows.length > 0 && !holder) ? 'warn' : '',
    summary: rows.length === 0 ? '' : parts.join(' · '),
    listedMs,
  };
}
