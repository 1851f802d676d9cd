import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { DurationSchema, timestampFromMs } from '@bufbuild/protobuf/wkt';
import { ageNow, describeAge, durationMs, fleetRpo, formatRpo, rpoBySource, worsePoint } from './rpo';
import { GetRecoveryPointsResponseSchema, PackageType, RecoveryPointSchema, RpoState, type RecoveryPoint } from './pb';

const S = 1000;
const H = 3600;
const D = 86400;
const T0 = Date.UTC(2026, 0, 2, 12, 0, 0);
const dur = (s: number) => create(DurationSchema, { seconds: BigInt(s) });

function point(source: string, folder: string, o: { state?: RpoState; rpo?: number; age?: number; backup?: boolean; unprotected?: number; type?: PackageType } = {}): RecoveryPoint {
  return create(RecoveryPointSchema, {
    sourceId: source,
    folder,
    packageType: o.type ?? PackageType.USER_DATA,
    rpo: o.rpo === undefined ? dur(D) : dur(o.rpo),
    age: o.age === undefined ? undefined : dur(o.age),
    lastBackupAt: o.backup === false ? undefined : timestampFromMs(T0 - (o.age ?? 0) * S),
    state: o.state ?? RpoState.HELD,
    unprotectedFiles: BigInt(o.unprotected ?? 0),
  });
}

describe('worst RPO per client', () => {
  it('a breached folder is worse than a held one, held worse than none; then whoever used more of its RPO', () => {
    const held = point('a', '/x', { age: 20 * H });
    const breached = point('a', '/y', { state: RpoState.BREACHED, age: 2 * H, rpo: H });
    const none = point('a', '/z', { state: RpoState.NONE, age: 30 * D, rpo: 0 });
    expect(worsePoint(breached, held)).toBe(true);
    expect(worsePoint(held, none)).toBe(true);
    expect(worsePoint(none, breached)).toBe(false);
    // 20 h of 1 d is worse than 5 d of 7 d? no: 0.83 > 0.71
    expect(worsePoint(point('a', '/p', { age: 20 * H, rpo: D }), point('a', '/q', { age: 5 * D, rpo: 7 * D }))).toBe(true);
  });

  it('groups points by source, picks the worst folder, counts breaches and unprotected files', () => {
    const by = rpoBySource([
      point('edge-a', '/srv/logs', { age: 3 * H, unprotected: 2 }),
      point('edge-a', '/home', { state: RpoState.BREACHED, age: 2 * D, unprotected: 5 }),
      point('edge-a', '/etc', { state: RpoState.BREACHED, age: 30 * H }),
      point('edge-b', '/data', { age: H }),
      point('edge-c', '', { state: RpoState.BREACHED, age: 3 * D, backup: false }),
      point('edge-d', '/cache', { state: RpoState.NONE, rpo: 0, age: 9 * D, type: PackageType.CACHE }),
    ]);
    expect([...by.keys()]).toEqual(['edge-a', 'edge-b', 'edge-c', 'edge-d']);
    const a = by.get('edge-a')!;
    expect(a.state).toBe(RpoState.BREACHED);
    expect(a.worst.folder).toBe('/home');
    expect(a.breached).toBe(2);
    expect(a.unprotected).toBe(7n);
    expect(a.points.map((p) => p.folder)).toEqual(['/etc', '/home', '/srv/logs']);
    expect(by.get('edge-b')).toMatchObject({ state: RpoState.HELD, breached: 0 });
    expect(by.get('edge-c')?.worst.folder).toBe('');
    expect(by.get('edge-d')?.state).toBe(RpoState.NONE);
    expect(rpoBySource([]).size).toBe(0);
  });
});

describe('ages against the RPO', () => {
  it('grows the answered age by the time since', () => {
    const p = point('a', '/x', { age: 90 });
    expect(durationMs(p.age)).toBe(90 * S);
    expect(ageNow(p, 15 * S)).toBe(105 * S);
    expect(ageNow(p, -5)).toBe(90 * S);
    expect(ageNow(point('a', '/x'), 1000)).toBeUndefined();
    expect(durationMs(create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }))).toBe(1500);
  });

  it('says the age of the last backup against the objective', () => {
    expect(describeAge(point('a', '/x', { age: 3 * H + 5 * 60 }), 0)).toBe('3 h 5 min of 1 d');
    expect(describeAge(point('a', '/x', { state: RpoState.BREACHED, age: 2 * D + H }), 0)).toBe('2 d 1 h (RPO 1 d)');
    expect(describeAge(point('a', '/x', { state: RpoState.NONE, rpo: 0, age: 3 * H }), 0)).toBe('3 h (no objective)');
    expect(describeAge(point('a', '', { state: RpoState.BREACHED, age: 2 * H, rpo: H, backup: false }), 0)).toBe('2 h (RPO 1 h, never backed up)');
    expect(describeAge(point('a', '', { backup: false }), 0)).toBe('never backed up');
    expect(formatRpo(point('a', '/x', { rpo: 7 * D }))).toBe('7 d');
    expect(formatRpo(point('a', '/x', { state: RpoState.NONE, rpo: 0 }))).toBe('none');
  });

  it('summarises the fleet from the answer', () => {
    expect(fleetRpo(undefined)).toBeUndefined();
    expect(fleetRpo(create(GetRecoveryPointsResponseSchema, { held: 4n, breached: 1n, worstAge: dur(2 * D) }))).toEqual({ held: 4, breached: 1, worstAgeMs: 2 * D * S });
    expect(fleetRpo(create(GetRecoveryPointsResponseSchema, {}))).toEqual({ held: 0, breached: 0, worstAgeMs: undefined });
  });
});
