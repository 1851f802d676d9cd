// The login route's URLs: `/login`, `?next=` (where to go after signing in, same-origin paths only,
// so a crafted link cannot send a person elsewhere) and the `#token=` of a login link.

export const LOGIN_PATH = '/login';

export function isLoginPath(pathname: string): boolean {
  return pathname === LOGIN_PATH || pathname === `${LOGIN_PATH}/`;
}

/** The token of a login link's fragment (`#token=ebk_token_…`), or undefined when it has none. */
export function tokenFromFragment(hash: string): string | undefined {
  return new URLSearchParams(hash.replace(/^#/, '')).get('token') ?? undefined;
}

/** The login page's URL, remembering `next` (a path, search and hash of this origin). */
export function loginHref(next: string): string {
  return next && next !== '/' && !isLoginPath(next.split(/[?#]/)[0]) ? `${LOGIN_PATH}?next=${encodeURIComponent(next)}` : LOGIN_PATH;
}

/** Where to go after signing in: `?next=` when it is a path on `origin` other than the login page, else "/". */
export function nextTarget(search: string, origin: string): string {
  const next = new URLSearchParams(search).get('next');
  // "//host" and "/\host" are other origins to a browser; only a single leading slash is a path
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  let url: URL;
  try {
    url = new URL(next, origin);
  } catch {
    return '/';
  }
  if (url.origin !== origin || isLoginPath(url.pathname)) return '/';
  return `${url.pathname}${url.search}${url.hash}`;
}
