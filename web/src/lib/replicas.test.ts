import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { GetStatusResponseSchema, type CatcherReplica } from './pb';
import { STALE_HEARTBEAT_MS, replicasView, shortReplicaIds } from './replicas';
import { replica } from './testdata';

const LISTED = 1_800_000_000_000;
const status = (replicas: CatcherReplica[], replicaId = '', now: number | null = LISTED) =>
  create(GetStatusResponseSchema, { replicas, replicaId, now: now === null ? undefined : timestampFromMs(now) });

const A = '0193a1b2-c3d4-7e5f-8a6b-111111111111';
const B = '0193a1b2-c3d4-7e5f-8a6b-222222222222';
const C = '0193a1b2-c3d5-7aaa-9bbb-333333333333';

describe('catcher replicas', () => {
  it('shows nothing for no status or a catcher that lists no replicas', () => {
    for (const s of [undefined, status([])]) {
      const v = replicasView(s, LISTED);
      expect(v.rows).toEqual([]);
      expect(v.summary).toBe('');
      expect(v.tone).toBe('');
      expect(v.holder).toBeUndefined();
    }
  });

  it('a lone replica (SQLite) holds the lease and is the one serving, even when the status does not name it', () => {
    const v = replicasView(status([replica(A, { holdsLease: true, startedMs: LISTED - 3_600_000, heartbeatMs: LISTED - 2000 })]), LISTED + 60_000);
    expect(v.rows).toHaveLength(1);
    const [r] = v.rows;
    expect(r).toMatchObject({ id: A, short: '…11111111', leaseHolder: true, serving: true, stale: false });
    expect(r.started).toBe('1 h 1 min ago');
    // as of the listing, not of the browser's clock a minute later
    expect(r.heartbeat).toBe('2 s ago');
    expect(v.summary).toBe('1 catcher replica · holds the lease · serving you');
    expect(v.tone).toBe('');
  });

  it('sorts oldest first and marks the holder and the replica the status names as answering', () => {
    const v = replicasView(
      status(
        [
          replica(C, { startedMs: 3000, heartbeatMs: LISTED - 1000, address: '10.0.0.3:50051' }),
          replica(A, { startedMs: 1000, heartbeatMs: LISTED - 1000, address: '10.0.0.1:50051' }),
          replica(B, { startedMs: 2000, heartbeatMs: LISTED - 1000, address: '10.0.0.2:50051', holdsLease: true }),
        ],
        C,
      ),
      LISTED,
    );
    expect(v.rows.map((r) => r.id)).toEqual([A, B, C]);
    expect(v.rows.map((r) => r.serving)).toEqual([false, false, true]);
    expect(v.holder?.id).toBe(B);
    expect(v.summary).toBe('3 catcher replicas · lease: …22222222 (10.0.0.2:50051) · serving you: …33333333');
    expect(v.tone).toBe('');
  });

  it('marks none as serving when several are listed and the status does not say which answered', () => {
    const v = replicasView(status([replica(A, { holdsLease: true }), replica(B)]), LISTED);
    expect(v.rows.some((r) => r.serving)).toBe(false);
    expect(v.summary).not.toMatch(/serving/);
  });

  it('warns when nobody holds the lease', () => {
    const v = replicasView(status([replica(A, { heartbeatMs: LISTED }), replica(B, { heartbeatMs: LISTED })], A), LISTED);
    expect(v.holder).toBeUndefined();
    expect(v.tone).toBe('warn');
    expect(v.summary).toBe('2 catcher replicas · no lease holder · serving you: …11111111');
  });

  it('marks a heartbeat older than the threshold, at the listing, as stale', () => {
    const v = replicasView(
      status([
        replica(A, { holdsLease: true, heartbeatMs: LISTED - STALE_HEARTBEAT_MS }),
        replica(B, { startedMs: 1, heartbeatMs: LISTED - STALE_HEARTBEAT_MS - 1000 }),
      ]),
      LISTED + 10 * 60_000,
    );
    expect(v.rows.map((r) => r.stale)).toEqual([false, true]);
    expect(v.rows[1].heartbeat).toBe('31 s ago');
    expect(v.staleCount).toBe(1);
    expect(v.tone).toBe('warn');
    expect(v.summary).toBe('2 catcher replicas · lease: …11111111 (10.0.0.1:50051) · 1 stale');
  });

  it("judges by the browser's estimate of the server's time when the status carries none, and never ages a heartbeat ahead of it", () => {
    const old = replicasView(status([replica(A, { holdsLease: true, heartbeatMs: LISTED })], '', null), LISTED + STALE_HEARTBEAT_MS + 1);
    expect(old.rows[0].stale).toBe(true);
    // the database's clock (heartbeats on PostgreSQL) a little ahead of the catcher's
    const ahead = replicasView(status([replica(A, { holdsLease: true, heartbeatMs: LISTED + 1500 })]), LISTED);
    expect(ahead.rows[0]).toMatchObject({ stale: false, heartbeat: 'just now' });
  });

  it('shortens ids to their ends, longer when two ends are alike', () => {
    expect(shortReplicaIds([A, B])).toEqual(['…11111111', '…22222222']);
    const x = '0193a1b2-c3d4-7e5f-8a6b-aaaa11111111';
    expect(shortReplicaIds([A, x])).toEqual(['…111111111', '…a11111111']);
    // short ids stay whole; an empty one stays empty
    expect(shortReplicaIds(['r1', 'abcdefghi', ''])).toEqual(['r1', 'abcdefghi', '']);
    expect(shortReplicaIds([])).toEqual([]);
  });
});
