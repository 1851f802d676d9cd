// Which hop is down while the live stream is away: the browser → gateway hop (the gateway's
// /healthz does not answer) or the gateway → catcher hop (/healthz answers, its JSON says the
// catcher is "unreachable" or "not_serving").

/** The gateway's /healthz body: {gateway, catcher, catcher_url, error}. */
export interface HealthBody {
  gateway?: string;
  catcher?: string;
  catcher_url?: string;
  error?: string | null;
}

export type Hop = 'unknown' | 'gateway' | 'catcher' | 'none';

export interface HopView {
  /** Which hop is down: the gateway (from this browser), the catcher (from the gateway), or none. */
  down: Hop;
  text: string;
}

/** Reads a /healthz answer; `body` undefined when the request itself failed (no answer). */
export function hopFromHealth(gatewayUrl: string, body: HealthBody | undefined): HopView {
  if (!body || body.gateway !== 'serving') {
    return { down: 'gateway', text: `The gateway at ${gatewayUrl} does not answer this browser: check the network or whether the gateway runs.` };
  }
  if (body.catcher !== 'serving') {
    const where = body.catcher_url ? ` at ${body.catcher_url}` : '';
    const why = body.error ? ` (${body.error})` : '';
    const state = body.catcher === 'not_serving' ? 'is not serving' : 'cannot be reached';
    return { down: 'catcher', text: `The gateway is up, but the catcher${where} ${state} from it${why}.` };
  }
  return { down: 'none', text: 'The gateway and the catcher both answer; the live stream is reconnecting.' };
}

/** Asks the gateway's /healthz (no credential needed); never throws. */
export async function checkHealth(baseUrl: string, fetcher: typeof fetch = fetch, timeoutMs = 5000): Promise<HopView> {
  try {
    const res = await fetcher(`${baseUrl}/healthz`, { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as HealthBody;
    return hopFromHealth(baseUrl, body);
  } catch {
    return hopFromHealth(baseUrl, undefined);
  }
}
