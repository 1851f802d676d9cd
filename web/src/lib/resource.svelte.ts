// Loading / error / data state of one unary call, with the previous call cancelled by the next.
import { describeError, type ErrorInfo } from './errors';
import { UNARY_TIMEOUT_MS } from './client';

export class Resource<T> {
  data = $state.raw<T | undefined>(undefined);
  loading = $state(false);
  error = $state<ErrorInfo | undefined>(undefined);
  #abort: AbortController | undefined;

  /** Runs `fn`; its result replaces `data` unless a newer load started meanwhile. */
  async load(fn: (opts: { signal: AbortSignal; timeoutMs: number }) => Promise<T>): Promise<T | undefined> {
    this.#abort?.abort();
    const abort = (this.#abort = new AbortController());
    this.loading = true;
    this.error = undefined;
    try {
      const result = await fn({ signal: abort.signal, timeoutMs: UNARY_TIMEOUT_MS });
      if (abort.signal.aborted) return undefined;
      this.data = result;
      return result;
    } catch (e) {
      if (abort.signal.aborted) return undefined;
      this.error = describeError(e);
      return undefined;
    } finally {
      if (this.#abort === abort) this.loading = false;
    }
  }

  cancel(): void {
    this.#abort?.abort();
    this.loading = false;
  }
}
