// While the live stream is away: which hop is down, asked of the gateway's /healthz once per
// failed attempt of the stream (never on a timer of its own), cleared when the stream is back.
import { checkHealth, type HopView } from './health';

export class Outage {
  /** The last answer; undefined while connected or not asked yet. */
  hop = $state.raw<HopView | undefined>(undefined);
  #asked = 0;

  /** Asks /healthz now; a later answer wins over an earlier one. */
  async check(baseUrl: string): Promise<void> {
    const n = ++this.#asked;
    const view = await checkHealth(baseUrl);
    if (n === this.#asked) this.hop = view;
  }

  clear(): void {
    this.#asked++;
    this.hop = undefined;
  }
}

export const outage = new Outage();
