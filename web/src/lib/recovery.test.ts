import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import type { Api } from './client';
import { GetRecoveryPointsResponseSchema, RecoveryPointSchema, RpoState } from './pb';
import { RECOVERY_REFRESH_MS, RecoveryPoints } from './recovery.svelte';

function fakeApi() {
  const calls: number[] = [];
  const api = {
    alerts: {
      getRecoveryPoints: vi.fn(async () => {
        calls.push(Date.now());
        return create(GetRecoveryPointsResponseSchema, {
          points: [create(RecoveryPointSchema, { sourceId: 'edge-a', folder: '/data', state: RpoState.BREACHED, age: create(DurationSchema, { seconds: 90n }) })],
          breached: 1n,
        });
      }),
    },
  } as unknown as Api;
  return { api, calls };
}

describe('recovery points', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('asks at start and every 15 s, only while live, and groups the answer by source', async () => {
    const { api, calls } = fakeApi();
    let live = true;
    const r = new RecoveryPoints();
    r.start(api, () => live);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    expect(r.answer.data?.bySource.get('edge-a')?.state).toBe(RpoState.BREACHED);
    await vi.advanceTimersByTimeAsync(RECOVERY_REFRESH_MS);
    expect(calls).toHaveLength(2);
    live = false;
    await vi.advanceTimersByTimeAsync(RECOVERY_REFRESH_MS * 2);
    expect(calls).toHaveLength(2);
    live = true;
    r.stop();
    await vi.advanceTimersByTimeAsync(RECOVERY_REFRESH_MS * 2);
    expect(calls).toHaveLength(2);
  });

  it('asks again soon after a change, at most once every 2 s however many changes', async () => {
    const { api, calls } = fakeApi();
    const r = new RecoveryPoints();
    r.start(api);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    for (let i = 0; i < 10; i++) r.soon();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1100);
    expect(calls).toHaveLength(2);
    r.soon();
    await vi.advanceTimersByTimeAsync(2100);
    expect(calls).toHaveLength(3);
    r.stop();
  });
});
