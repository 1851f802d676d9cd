// The fleet's recovery points (AlertService.GetRecoveryPoints), shared by the clients list and the
// status bar. Ages grow with time rather than with events, so this asks again every 15 s, and soon
// after a source changes (connects, disconnects, uploads); never more than once every 2 s.
import type { Api } from './client';
import { Resource } from './resource.svelte';
import { rpoBySource, type ClientRpo } from './rpo';
import type { GetRecoveryPointsResponse } from './pb';

export const RECOVERY_REFRESH_MS = 15_000;
const MIN_GAP_MS = 2_000;

export interface RecoveryAnswer {
  res: GetRecoveryPointsResponse;
  /** Per source, its folders and worst one. */
  bySource: Map<string, ClientRpo>;
  /** When the answer arrived (local clock, epoch ms): ages grow from there. */
  at: number;
}

export class RecoveryPoints {
  readonly answer = new Resource<RecoveryAnswer>();
  #api: Api | undefined;
  #isLive: () => boolean = () => true;
  #timer: ReturnType<typeof setInterval> | undefined;
  #soon: ReturnType<typeof setTimeout> | undefined;
  #lastAt = 0;

  /**
   * Loads now, then every RECOVERY_REFRESH_MS until stop(); only while `isLive` (the catcher is
   * heard from: while it is not, asking would only fail).
   */
  start(api: Api, isLive: () => boolean = () => true): void {
    this.stop();
    this.#api = api;
    this.#isLive = isLive;
    this.refresh();
    this.#timer = setInterval(() => this.refresh(), RECOVERY_REFRESH_MS);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#timer = undefined;
    this.#soon = undefined;
    this.answer.cancel();
    this.#api = undefined;
  }

  /** Asks again now (while live). */
  refresh(): void {
    const api = this.#api;
    if (!api) return;
    clearTimeout(this.#soon);
    this.#soon = undefined;
    if (!this.#isLive()) return;
    this.#lastAt = Date.now();
    void this.answer.load(async (o) => {
      const res = await api.alerts.getRecoveryPoints({}, o);
      return { res, bySource: rpoBySource(res.points), at: Date.now() };
    });
  }

  /** Asks again shortly (something changed), at most once every MIN_GAP_MS. */
  soon(): void {
    if (!this.#api || this.#soon !== undefined) return;
    const wait = Math.max(250, this.#lastAt + MIN_GAP_MS - Date.now());
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.refresh();
    }, wait);
  }
}

export const recovery = new RecoveryPoints();
