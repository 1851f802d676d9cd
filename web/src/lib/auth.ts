// The gateway's session endpoints, on the same origin as grpc-web: POST /api/login trades a token for
// an HttpOnly cookie, GET /api/session says whose cookie it is, POST /api/logout clears it. The
// token only ever travels in the login request's body; the page keeps nothing (the cookie does).
import { parseRole, type Person } from './session.svelte';

/** A refused or failed session request; `status` 0 when the gateway could not be reached. */
export class AuthError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface Auth {
  /** The person the cookie names, or undefined when there is no valid session (401). */
  session(): Promise<Person | undefined>;
  /** Signs in with a token; throws AuthError with the gateway's reason when refused. */
  login(token: string): Promise<Person>;
  logout(): Promise<void>;
}

export function createAuth(baseUrl: string, fetchFn: typeof fetch = (...a) => fetch(...a)): Auth {
  async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
    try {
      return await fetchFn(`${baseUrl}${path}`, {
        method,
        // `include`, so that a gateway named by ?api= on another origin gets its cookie too
        credentials: 'include',
        cache: 'no-store',
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new AuthError(`Could not reach the gateway: ${e instanceof Error ? e.message : String(e)}`, 0);
    }
  }

  return {
    async session() {
      const res = await call('GET', '/api/session');
      if (res.status === 401) return undefined;
      return person(await answer(res));
    },
    async login(token) {
      return person(await answer(await call('POST', '/api/login', { token })));
    },
    async logout() {
      await answer(await call('POST', '/api/logout'));
    },
  };
}

/** The JSON body of a successful answer (undefined when empty); an AuthError with the gateway's reason otherwise. */
async function answer(res: Response): Promise<unknown> {
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.ok) return json;
  const reason = (json as { error?: unknown } | undefined)?.error;
  throw new AuthError(typeof reason === 'string' && reason ? reason : `The gateway answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, res.status);
}

function person(json: unknown): Person {
  const j = (json ?? {}) as Record<string, unknown>;
  if (typeof j.name !== 'string' || !j.name) throw new AuthError('The gateway answered without naming who is signed in', 200);
  return { name: j.name, role: parseRole(j.role), unredacted: j.unredacted === true };
}
