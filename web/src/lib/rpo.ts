// Recovery point objectives: per source and folder, the time since its last complete, verified
// backup against its RPO (AlertService.GetRecoveryPoints). This picks each client's worst folder
// and says ages and objectives the way people read them.
import type { Duration } from '@bufbuild/protobuf/wkt';
import { formatApproxDuration, formatWait, timestampToMs } from './format';
import { RpoState, type GetRecoveryPointsResponse, type RecoveryPoint } from './pb';

/** Milliseconds of a protobuf Duration; undefined when unset. */
export function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + Math.trunc(d.nanos / 1e6);
}

/** How bad a state is: breached > held > no objective > unknown. */
function severity(s: RpoState): number {
  switch (s) {
    case RpoState.BREACHED:
      return 3;
    case RpoState.HELD:
      return 2;
    case RpoState.NONE:
      return 1;
    default:
      return 0;
  }
}

/** How much of its RPO a point has used (1 = due now); its age alone when it has no RPO. */
function usage(p: RecoveryPoint): number {
  const rpo = durationMs(p.rpo) ?? 0;
  const age = durationMs(p.age) ?? 0;
  return rpo > 0 ? age / rpo : age;
}

/** Whether `a` is worse than `b`: a worse state, else more of its RPO used, else older. */
export function worsePoint(a: RecoveryPoint, b: RecoveryPoint): boolean {
  const sa = severity(a.state);
  const sb = severity(b.state);
  if (sa !== sb) return sa > sb;
  const ua = usage(a);
  const ub = usage(b);
  if (ua !== ub) return ua > ub;
  return (durationMs(a.age) ?? 0) > (durationMs(b.age) ?? 0);
}

export interface ClientRpo {
  sourceId: string;
  /** The worst folder's state. */
  state: RpoState;
  /** The worst folder. */
  worst: RecoveryPoint;
  /** Every folder of the source (a source that never finished a pass: one point, folder ''). */
  points: RecoveryPoint[];
  /** Folders breached. */
  breached: number;
  /** Files the last passes saw that no package holds yet, over every folder. */
  unprotected: bigint;
}

/** Each source's recovery points and its worst one, by source id. */
export function rpoBySource(points: Iterable<RecoveryPoint>): Map<string, ClientRpo> {
  const out = new Map<string, ClientRpo>();
  for (const p of points) {
    const c = out.get(p.sourceId);
    if (!c) {
      out.set(p.sourceId, {
        sourceId: p.sourceId,
        state: p.state,
        worst: p,
        points: [p],
        breached: p.state === RpoState.BREACHED ? 1 : 0,
        unprotected: p.unprotectedFiles,
      });
      continue;
    }
    c.points.push(p);
    if (p.state === RpoState.BREACHED) c.breached++;
    c.unprotected += p.unprotectedFiles;
    if (worsePoint(p, c.worst)) {
      c.worst = p;
      c.state = p.state;
    }
  }
  for (const c of out.values()) c.points.sort((a, b) => a.folder.localeCompare(b.folder));
  return out;
}

/**
 * The age of a point now: its age when the catcher answered, plus the time since (`elapsedMs`).
 * Undefined when the catcher gave none.
 */
export function ageNow(p: RecoveryPoint, elapsedMs: number): number | undefined {
  const age = durationMs(p.age);
  return age === undefined ? undefined : age + Math.max(0, elapsedMs);
}

/** "1 d"; "none" for no objective (zero or unset). */
export function formatRpo(p: RecoveryPoint): string {
  const rpo = durationMs(p.rpo);
  if (p.state === RpoState.NONE || !rpo) return 'none';
  return formatWait(Math.round(rpo / 1000));
}

/**
 * How old the point is against its RPO, as one phrase: "3 h 5 min of 1 d", "2 d 1 h (RPO 1 d)" when
 * breached, "3 h (no objective)", "never backed up" when there was none and no age is known.
 */
export function describeAge(p: RecoveryPoint, elapsedMs: number): string {
  const age = ageNow(p, elapsedMs);
  const last = timestampToMs(p.lastBackupAt);
  if (age === undefined) return last ? '—' : 'never backed up';
  const a = formatApproxDuration(age);
  const never = last ? '' : ', never backed up';
  if (p.state === RpoState.NONE || !durationMs(p.rpo)) return `${a} (no objective${never})`;
  if (p.state === RpoState.BREACHED) return `${a} (RPO ${formatRpo(p)}${never})`;
  return `${a} of ${formatRpo(p)}${never}`;
}

export interface FleetRpo {
  held: number;
  breached: number;
  /** The oldest age among points with an RPO, ms; undefined when unknown. */
  worstAgeMs: number | undefined;
}

/** The fleet's summary from the answer (counts fleet-wide, whatever the request's filter). */
export function fleetRpo(res: GetRecoveryPointsResponse | undefined): FleetRpo | undefined {
  if (!res) return undefined;
  return { held: Number(res.held), breached: Number(res.breached), worstAgeMs: durationMs(res.worstAge) };
}
