import { describe, expect, it } from 'vitest';
import { ConnectError, Code } from '@connectrpc/connect';
import { startWatcher, type ConnectionInfo, type WatchFn } from './watch';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff';
import { event, snapshotEvent } from './testdata';
import type { WatchEvent } from './pb';

/** A scripted server: each call to watch() plays the next script. */
type Script = { events: WatchEvent[]; then: 'error' | 'end' | 'hang' };

function scripted(scripts: Script[]): { watch: WatchFn; calls: () => number } {
  let n = 0;
  const watch: WatchFn = (signal) =>
    (async function* () {
      const s = scripts[Math.min(n++, scripts.length - 1)];
      for (const ev of s.events) {
        await Promise.resolve();
        yield ev;
      }
      if (s.then === 'error') throw new ConnectError('connection refused', Code.Unavailable);
      if (s.then === 'hang') {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        throw new ConnectError('aborted', Code.Canceled);
      }
    })();
  return { watch, calls: () => n };
}

function harness(scripts: Script[], offlineAfter = 3) {
  const states: ConnectionInfo[] = [];
  const events: WatchEvent[] = [];
  const sleeps: number[] = [];
  const server = scripted(scripts);
  let resolveIdle: (() => void) | undefined;
  const watcher = startWatcher({
    watch: server.watch,
    onEvent: (ev) => events.push(ev),
    onConnection: (info) => {
      states.push(info);
      if (info.state === 'connected' && scripts[server.calls() - 1]?.then === 'hang') resolveIdle?.();
    },
    offlineAfter,
    random: () => 0.5,
    now: () => 1000,
    sleep: async (ms) => {
      sleeps.push(ms);
      if (sleeps.length > 20) watcher.stop();
    },
  });
  const idle = new Promise<void>((r) => (resolveIdle = r));
  return { states, events, sleeps, watcher, server, idle };
}

describe('backoff', () => {
  it('grows exponentially to the cap with jitter inside the ceiling', () => {
    const p = { ...DEFAULT_BACKOFF, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, p))).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000]);
    expect(backoffDelay(1, { ...p, jitter: 1 }, 0)).toBe(0);
    expect(backoffDelay(3, { ...p, jitter: 0.5 }, 0.999)).toBeLessThanOrEqual(2000);
    expect(backoffDelay(3, { ...p, jitter: 0.5 }, 0)).toBe(1000);
  });
});

describe('watcher', () => {
  it('connects on the first event and delivers events in order', async () => {
    const h = harness([{ events: [snapshotEvent(), event({ case: 'packageDeleted', value: 'x' })], then: 'hang' }]);
    await h.idle;
    await new Promise((r) => setTimeout(r, 0));
    expect(h.states[0].state).toBe('connecting');
    expect(h.states.at(-1)?.state).toBe('connected');
    expect(h.events.map((e) => e.kind.case)).toEqual(['snapshot', 'packageDeleted']);
    h.watcher.stop();
    await h.watcher.done;
  });

  it('reconnects with growing backoff, goes offline after repeated failures, and recovers', async () => {
    const h = harness([
      { events: [snapshotEvent()], then: 'error' },
      { events: [], then: 'error' },
      { events: [], then: 'error' },
      { events: [], then: 'error' },
      { events: [snapshotEvent()], then: 'hang' },
    ]);
    await h.idle;
    const seq = h.states.map((s) => s.state);
    expect(seq[0]).toBe('connecting');
    expect(seq).toContain('reconnecting');
    expect(seq).toContain('offline');
    expect(seq.at(-1)).toBe('connected');
    // failures 1, 2, 3, 4 -> ceilings 500, 1000, 2000, 4000 with half jitter at random 0.5
    expect(h.sleeps).toEqual([375, 750, 1500, 3000]);
    const failed = h.states.find((s) => s.state === 'reconnecting' && s.lastError);
    expect(failed?.lastError).toContain('connection refused');
    expect(h.events.filter((e) => e.kind.case === 'snapshot')).toHaveLength(2);
    h.watcher.stop();
    await h.watcher.done;
  });

  it('treats a stream that ends as a disconnect', async () => {
    const h = harness([
      { events: [snapshotEvent()], then: 'end' },
      { events: [snapshotEvent()], then: 'hang' },
    ]);
    await h.idle;
    expect(h.states.some((s) => s.lastError === 'the live stream ended')).toBe(true);
    expect(h.sleeps).toEqual([375]);
    h.watcher.stop();
    await h.watcher.done;
  });

  it('stops for good', async () => {
    const h = harness([{ events: [snapshotEvent()], then: 'hang' }]);
    await h.idle;
    h.watcher.stop();
    await h.watcher.done;
    expect(h.server.calls()).toBe(1);
  });
});
