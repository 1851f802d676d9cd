// The one live subscription: StatusService.Watch with automatic reconnect and backoff.
// Framework-free so it can be unit tested with a fake stream; the store turns its callbacks into state.
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff';
import { describeError } from './errors';
import type { WatchEvent } from './pb';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface ConnectionInfo {
  state: ConnectionState;
  /** Consecutive failed attempts since the last healthy stream. */
  failures: number;
  /** Why the last stream ended, if it did. */
  lastError?: string;
  /** When the next attempt starts (epoch ms), while waiting. */
  nextRetryAt?: number;
  /** When the current stream delivered its first event (epoch ms). */
  connectedSince?: number;
}

/** Opens a Watch stream; ends when `signal` aborts. */
export type WatchFn = (signal: AbortSignal) => AsyncIterable<WatchEvent>;

export interface WatcherOptions {
  watch: WatchFn;
  onEvent: (ev: WatchEvent) => void;
  onConnection: (info: ConnectionInfo) => void;
  backoff?: BackoffPolicy;
  /** After this many consecutive failures the state reads "offline" (retries go on). */
  offlineAfter?: number;
  /** Whether the browser believes it has a network (navigator.onLine). */
  isOnline?: () => boolean;
  now?: () => number;
  random?: () => number;
  /** Waits `ms` or until `wake` aborts; injectable for tests. */
  sleep?: (ms: number, wake: AbortSignal) => Promise<void>;
}

export interface Watcher {
  /** Ends the subscription for good. */
  stop(): void;
  /** Skips the current backoff wait and reconnects now. */
  retryNow(): void;
  /** Resolves when the loop has ended after stop(). */
  done: Promise<void>;
}

function defaultSleep(ms: number, wake: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (wake.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      wake.removeEventListener('abort', done);
      resolve();
    }
    wake.addEventListener('abort', done);
  });
}

export function startWatcher(opts: WatcherOptions): Watcher {
  const policy = opts.backoff ?? DEFAULT_BACKOFF;
  const offlineAfter = opts.offlineAfter ?? 3;
  const isOnline = opts.isOnline ?? (() => true);
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? defaultSleep;

  let stopped = false;
  let stream: AbortController | undefined;
  let wake = new AbortController();
  let info: ConnectionInfo = { state: 'connecting', failures: 0 };

  const publish = (next: ConnectionInfo) => {
    info = next;
    opts.onConnection(info);
  };

  async function loop(): Promise<void> {
    let everConnected = false;
    publish(info);
    while (!stopped) {
      stream = new AbortController();
      if (info.state !== 'connecting' || everConnected) {
        publish({ ...info, state: info.state === 'offline' ? 'offline' : 'reconnecting', nextRetryAt: undefined });
      }
      let healthy = false;
      let error: string;
      try {
        for await (const ev of opts.watch(stream.signal)) {
          if (stopped) return;
          if (!healthy) {
            healthy = true;
            everConnected = true;
            publish({ state: 'connected', failures: 0, connectedSince: now() });
          }
          opts.onEvent(ev);
        }
        error = 'the live stream ended';
      } catch (e) {
        if (stopped) return;
        error = describeError(e).message;
      }
      if (stopped) return;
      const failures = healthy ? 1 : info.failures + 1;
      const delay = backoffDelay(failures, policy, random());
      const offline = !isOnline() || failures >= offlineAfter;
      publish({
        state: offline ? 'offline' : 'reconnecting',
        failures,
        lastError: error,
        nextRetryAt: now() + delay,
      });
      await sleep(delay, wake.signal);
      if (wake.signal.aborted) wake = new AbortController();
    }
  }

  const done = loop();
  return {
    stop() {
      stopped = true;
      stream?.abort();
      wake.abort();
    },
    retryNow() {
      wake.abort();
    },
    done,
  };
}
