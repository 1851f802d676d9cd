// Moves the page between the login page and the dashboard: at start (login link or cookie), on
// sign-in and sign-out, and when a call says the session is gone. Framework-free and given the
// browser's location and history, so it can be unit tested.
import { AuthError, type Auth } from './auth';
import { isLoginPath, loginHref, LOGIN_PATH, nextTarget, tokenFromFragment } from './route';
import type { Session } from './session.svelte';

/** The parts of `window` this uses. */
export interface Browser {
  location: { pathname: string; search: string; hash: string; origin: string; replace(url: string): void };
  history: { replaceState(data: unknown, unused: string, url: string): void };
}

export class SessionFlow {
  /** Signing out: streams the gateway ends meanwhile are expected, not "your session ended". */
  private leaving = false;

  constructor(
    private readonly auth: Auth,
    private readonly session: Session,
    private readonly browser: Browser,
  ) {}

  /** Signs in with a login link's token, or asks the gateway whose cookie this is. */
  async start(): Promise<void> {
    if (await this.followLink()) return;
    const { location, history } = this.browser;
    try {
      const person = await this.auth.session();
      if (person) {
        if (isLoginPath(location.pathname)) history.replaceState(null, '', nextTarget(location.search, location.origin));
        this.session.signedIn(person);
        return;
      }
      this.toLogin('');
    } catch (e) {
      this.toLogin(`Could not check your session (${message(e)}).`);
    }
  }

  /** Signs in with the token of the login page's `#token=` fragment, if it has one. */
  async followLink(): Promise<boolean> {
    const { location, history } = this.browser;
    if (!isLoginPath(location.pathname)) return false;
    const token = tokenFromFragment(location.hash);
    if (token === undefined) return false;
    // before anything else: the token must not stay in the address bar or in history
    history.replaceState(null, '', `${location.pathname}${location.search}`);
    await this.signIn(token);
    return true;
  }

  async signIn(token: string): Promise<void> {
    const t = token.trim();
    if (!t) {
      this.session.refused('Enter your access token.');
      return;
    }
    this.session.signingIn();
    try {
      await this.auth.login(t);
    } catch (e) {
      this.session.refused(message(e));
      return;
    }
    // a new document for the new session: nothing an earlier one loaded stays in memory
    const { location } = this.browser;
    location.replace(isLoginPath(location.pathname) ? nextTarget(location.search, location.origin) : '/');
  }

  /** Ends the session at the gateway, then shows the login page. */
  async signOut(): Promise<void> {
    this.leaving = true;
    try {
      await this.auth.logout();
    } finally {
      this.leaving = false;
    }
    this.session.signedOut();
    this.browser.history.replaceState(null, '', LOGIN_PATH);
  }

  /** A call was refused Unauthenticated: the login page, remembering where the person was. */
  ended(): void {
    const { location, history } = this.browser;
    if (this.leaving || !this.session.end()) return;
    history.replaceState(null, '', loginHref(`${location.pathname}${location.search}${location.hash}`));
  }

  private toLogin(notice: string): void {
    const { location, history } = this.browser;
    if (!isLoginPath(location.pathname)) history.replaceState(null, '', loginHref(`${location.pathname}${location.search}${location.hash}`));
    this.session.signedOut(notice);
  }
}

function message(e: unknown): string {
  return e instanceof AuthError || e instanceof Error ? e.message : String(e);
}
