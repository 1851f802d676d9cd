import { describe, expect, it } from 'vitest';
import { AuthError, type Auth } from './auth';
import { Role } from './pb';
import { SessionFlow, type Browser } from './session-flow';
import { Session, SESSION_ENDED, type Person } from './session.svelte';

const TOKEN = `ebk_token_${'0f'.repeat(32)}`;
const ALICE: Person = { name: 'alice', role: Role.VIEWER, unredacted: false };

/** A page at `url` recording what happened to its address, in order. */
function browser(url: string) {
  const log: string[] = [];
  const u = new URL(url, 'https://gw.example');
  const b: Browser & { log: string[]; href: () => string } = {
    log,
    href: () => `${u.pathname}${u.search}${u.hash}`,
    location: {
      get pathname() {
        return u.pathname;
      },
      get search() {
        return u.search;
      },
      get hash() {
        return u.hash;
      },
      origin: u.origin,
      replace: (to) => log.push(`load ${to}`),
    },
    history: {
      replaceState: (_d, _t, to) => {
        const next = new URL(to, u);
        u.pathname = next.pathname;
        u.search = next.search;
        u.hash = next.hash;
        log.push(`replace ${to}`);
      },
    },
  };
  return b;
}

/** A gateway: `who` is whose the cookie is; `valid` the tokens it takes. */
function gateway(log: string[], who: Person | undefined, valid = [TOKEN]): Auth {
  return {
    session: async () => {
      log.push('GET /api/session');
      return who;
    },
    login: async (token) => {
      log.push(`POST /api/login ${token === TOKEN ? 'TOKEN' : token}`);
      if (!valid.includes(token)) throw new AuthError('token revoked', 401);
      return ALICE;
    },
    logout: async () => {
      log.push('POST /api/logout');
    },
  };
}

function setup(url: string, who?: Person, valid?: string[]) {
  const b = browser(url);
  const session = new Session();
  const flow = new SessionFlow(gateway(b.log, who, valid), session, b);
  return { b, session, flow };
}

describe('SessionFlow', () => {
  it('a login link drops its fragment before anything else, signs in, then loads the page', async () => {
    const { b, flow, session } = setup(`/login#token=${TOKEN}`);
    await flow.start();
    expect(b.log).toEqual(['replace /login', 'POST /api/login TOKEN', 'load /']);
    expect(session.state).toBe('signing-in');
  });

  it('a login link goes to ?next= when it is a path here, else to /', async () => {
    let s = setup(`/login?next=${encodeURIComponent('/#rules')}#token=${TOKEN}`);
    await s.flow.start();
    expect(s.b.log.at(-1)).toBe('load /#rules');
    s = setup(`/login?next=${encodeURIComponent('//evil.example/')}#token=${TOKEN}`);
    await s.flow.start();
    expect(s.b.log.at(-1)).toBe('load /');
  });

  it('a refused login link shows the reason at the field and stays', async () => {
    const { b, flow, session } = setup('/login#token=ebk_token_bad');
    await flow.start();
    expect(b.log).toEqual(['replace /login', 'POST /api/login ebk_token_bad']);
    expect([session.state, session.error]).toEqual(['signed-out', 'token revoked']);
    expect(b.href()).toBe('/login');
  });

  it('without a session, any page shows the login page and remembers itself', async () => {
    const { b, flow, session } = setup('/?api=http%3A%2F%2F127.0.0.1%3A8080#packages');
    await flow.start();
    expect(session.state).toBe('signed-out');
    expect(b.href()).toBe(`/login?next=${encodeURIComponent('/?api=http%3A%2F%2F127.0.0.1%3A8080#packages')}`);
    await flow.signIn(`  ${TOKEN}\n`);
    expect(b.log.slice(-2)).toEqual(['POST /api/login TOKEN', 'load /?api=http%3A%2F%2F127.0.0.1%3A8080#packages']);
  });

  it('with a session, the dashboard shows (the login page sends on to next)', async () => {
    let s = setup('/#rules', ALICE);
    await s.flow.start();
    expect([s.session.state, s.session.person?.name, s.b.href()]).toEqual(['signed-in', 'alice', '/#rules']);
    s = setup('/login?next=%2F%23journal', ALICE);
    await s.flow.start();
    expect([s.session.state, s.b.href()]).toEqual(['signed-in', '/#journal']);
  });

  it('an empty token is refused here, without asking the gateway', async () => {
    const { b, flow, session } = setup('/login');
    await flow.signIn('   ');
    expect(session.error).toBe('Enter your access token.');
    expect(b.log).toEqual([]);
  });

  it('a gateway that cannot be asked leaves the login page with the reason', async () => {
    const b = browser('/');
    const session = new Session();
    const auth = gateway(b.log, undefined);
    auth.session = async () => {
      throw new AuthError('Could not reach the gateway: Failed to fetch', 0);
    };
    await new SessionFlow(auth, session, b).start();
    expect(session.state).toBe('signed-out');
    expect(session.notice).toMatch(/Could not reach the gateway/);
  });

  it('a call refused Unauthenticated ends the session once, remembering the page', async () => {
    const { b, flow, session } = setup('/#clients', ALICE);
    await flow.start();
    flow.ended();
    flow.ended();
    expect([session.state, session.notice]).toEqual(['signed-out', SESSION_ENDED]);
    expect(b.log.filter((l) => l.startsWith('replace'))).toEqual([`replace /login?next=${encodeURIComponent('/#clients')}`]);
  });

  it('signing out asks the gateway, then shows the login page', async () => {
    const { b, flow, session } = setup('/#track', ALICE);
    await flow.start();
    await flow.signOut();
    expect(b.log.slice(-2)).toEqual(['POST /api/logout', 'replace /login']);
    expect([session.state, session.person, session.notice]).toEqual(['signed-out', undefined, '']);
  });

  it('streams ended by signing out are not a surprise: no "session ended", no next', async () => {
    const b = browser('/#track');
    const session = new Session();
    const auth = gateway(b.log, ALICE);
    const flow = new SessionFlow(auth, session, b);
    await flow.start();
    auth.logout = async () => {
      b.log.push('POST /api/logout');
      flow.ended(); // the gateway closed the Watch stream before answering
    };
    await flow.signOut();
    expect([session.state, session.notice, b.href()]).toEqual(['signed-out', '', '/login']);
  });

  it('a failed sign-out keeps the session and says why', async () => {
    const b = browser('/#track');
    const session = new Session();
    const auth = gateway(b.log, ALICE);
    auth.logout = async () => {
      throw new AuthError('Could not reach the gateway: Failed to fetch', 0);
    };
    const flow = new SessionFlow(auth, session, b);
    await flow.start();
    await expect(flow.signOut()).rejects.toThrow(/Could not reach/);
    expect([session.state, b.href()]).toEqual(['signed-in', '/#track']);
    flow.ended();
    expect(session.notice).toBe(SESSION_ENDED);
  });
});
