import { describe, expect, it } from 'vitest';
import { isLoginPath, loginHref, nextTarget, tokenFromFragment } from './route';

const ORIGIN = 'https://backup.example:8443';
const next = (n: string) => nextTarget(`?next=${encodeURIComponent(n)}`, ORIGIN);

describe('login route', () => {
  it('knows the login path', () => {
    expect(isLoginPath('/login')).toBe(true);
    expect(isLoginPath('/login/')).toBe(true);
    expect(isLoginPath('/')).toBe(false);
    expect(isLoginPath('/loginx')).toBe(false);
  });

  it('reads the token of a login link fragment', () => {
    const t = `ebk_token_${'ab'.repeat(32)}`;
    expect(tokenFromFragment(`#token=${t}`)).toBe(t);
    expect(tokenFromFragment(`#x=1&token=${t}`)).toBe(t);
    expect(tokenFromFragment('#token=')).toBe('');
    expect(tokenFromFragment('#rules')).toBeUndefined();
    expect(tokenFromFragment('')).toBeUndefined();
  });

  it('remembers where the person was, but not the login page itself', () => {
    expect(loginHref('/#rules')).toBe('/login?next=%2F%23rules');
    expect(loginHref('/?api=http%3A%2F%2Fx')).toBe(`/login?next=${encodeURIComponent('/?api=http%3A%2F%2Fx')}`);
    expect(loginHref('/')).toBe('/login');
    expect(loginHref('/login?next=%2F')).toBe('/login');
  });

  it('goes next only to paths of this origin', () => {
    expect(next('/#packages')).toBe('/#packages');
    expect(next('/?api=http://127.0.0.1:8080#rules')).toBe('/?api=http://127.0.0.1:8080#rules');
    for (const hostile of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', 'evil', '/login', '/login?next=%2F']) {
      expect(next(hostile), hostile).toBe('/');
    }
    expect(nextTarget('', ORIGIN)).toBe('/');
  });
});
