import { describe, expect, it } from 'vitest';
import { AuthError, createAuth } from './auth';
import { Role } from './pb';

interface Seen {
  url: string;
  init: RequestInit;
}

/** A fetch answering `status` with `body` (a string is sent as is), recording the requests. */
function fake(status: number, body?: unknown) {
  const seen: Seen[] = [];
  const fn = (async (url: string, init: RequestInit) => {
    seen.push({ url, init });
    const text = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status });
  }) as unknown as typeof fetch;
  return { seen, fn };
}

const BASE = 'https://gw.example';
const ALICE = { name: 'alice', role: 'operator', unredacted: false };

describe('createAuth', () => {
  it('logs in with the token in a JSON body, sending and keeping the cookie', async () => {
    const f = fake(200, ALICE);
    const person = await createAuth(BASE, f.fn).login('ebk_token_x');
    expect(person).toEqual({ name: 'alice', role: Role.OPERATOR, unredacted: false });
    expect(f.seen[0].url).toBe('https://gw.example/api/login');
    expect(f.seen[0].init.method).toBe('POST');
    expect(f.seen[0].init.credentials).toBe('include');
    expect(JSON.parse(String(f.seen[0].init.body))).toEqual({ token: 'ebk_token_x' });
  });

  it("a refused login throws the gateway's reason", async () => {
    const err = await createAuth(BASE, fake(401, { error: 'token expired' }).fn)
      .login('ebk_token_x')
      .catch((e) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect([err.message, err.status]).toEqual(['token expired', 401]);
  });

  it('an answer without a reason still says what happened', async () => {
    const err = await createAuth(BASE, fake(502, '<html>bad gateway</html>').fn)
      .login('t')
      .catch((e) => e);
    expect(err.message).toBe('The gateway answered HTTP 502');
    const down = (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch;
    const err2 = await createAuth(BASE, down).session().catch((e) => e);
    expect([err2.message, err2.status]).toEqual(['Could not reach the gateway: Failed to fetch', 0]);
  });

  it('the session is the person, or undefined on 401; other failures throw', async () => {
    const f = fake(200, { ...ALICE, role: 'viewer', unredacted: true });
    expect(await createAuth(BASE, f.fn).session()).toEqual({ name: 'alice', role: Role.VIEWER, unredacted: true });
    expect(f.seen[0].init.method).toBe('GET');
    expect(f.seen[0].url).toBe('https://gw.example/api/session');
    expect(await createAuth(BASE, fake(401, { error: 'not signed in' }).fn).session()).toBeUndefined();
    await expect(createAuth(BASE, fake(500, { error: 'db down' }).fn).session()).rejects.toThrow('db down');
    await expect(createAuth(BASE, fake(200, {}).fn).session()).rejects.toThrow(/without naming/);
  });

  it('logs out with a POST and an empty 204', async () => {
    const f = fake(204);
    await createAuth(BASE, f.fn).logout();
    expect([f.seen[0].url, f.seen[0].init.method]).toEqual(['https://gw.example/api/logout', 'POST']);
  });
});
