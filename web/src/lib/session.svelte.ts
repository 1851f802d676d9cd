// Who is signed in, and what their role lets them do. The catcher decides every call (a refused one
// fails PermissionDenied); this only lets the page disable what would be refused and say why.
import { enumFromSpelling, enumSpelling } from './enums';
import { Role, RoleSchema } from './pb';

/** The least role each mutating action needs (each role includes the ones before it). */
export const ACTIONS = {
  'edit-rules': Role.OPERATOR,
  'apply-preset': Role.OPERATOR,
  'create-snapshot': Role.OPERATOR,
  'restore-snapshot': Role.OPERATOR,
  /** Backup now, pause, resume, verify, restore drill. */
  'send-command': Role.OPERATOR,
  'restore-files': Role.OPERATOR,
  /** Cancelling a change held by protected retention (any operator). */
  'cancel-pending': Role.OPERATOR,
  /** Marking an open alert as seen, with a note. */
  'acknowledge-alert': Role.OPERATOR,
  /** Sending a test notification through a channel. */
  'test-channel': Role.OPERATOR,
  'delete-package': Role.ADMIN,
  /** Tokens, enrollment, revocation. */
  'manage-access': Role.ADMIN,
} as const satisfies Record<string, Role>;

export type Action = keyof typeof ACTIONS;

/** A signed-in person as the gateway describes them. */
export interface Person {
  name: string;
  role: Role;
  /** Whether they see file paths and URIs unredacted. */
  unredacted: boolean;
}

/** "viewer" -> Role.VIEWER; anything undeclared is UNSPECIFIED, which allows nothing. */
export function parseRole(spelling: unknown): Role {
  return (typeof spelling === 'string' ? enumFromSpelling(RoleSchema, spelling) : undefined) ?? Role.UNSPECIFIED;
}

/** "viewer"; "unknown" for UNSPECIFIED. */
export function roleName(role: Role): string {
  return role === Role.UNSPECIFIED ? 'unknown' : enumSpelling(RoleSchema, role);
}

export function allows(person: Person | undefined, action: Action): boolean {
  return person !== undefined && person.role !== Role.UNSPECIFIED && person.role >= ACTIONS[action];
}

const withArticle = (word: string) => `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;

/** Why `person` may not do `action`, for tooltips and hints; '' when they may. */
export function denial(person: Person | undefined, action: Action): string {
  if (allows(person, action)) return '';
  if (!person) return 'Sign in to do this';
  const as = person.role === Role.UNSPECIFIED ? 'with a role this page does not know' : `as ${withArticle(roleName(person.role))}`;
  return `Needs the ${roleName(ACTIONS[action])} role — you are signed in ${as}`;
}

/** Checking the cookie, showing the login page (signing in or not), or showing the dashboard. */
export type SessionState = 'checking' | 'signed-out' | 'signing-in' | 'signed-in';

export const SESSION_ENDED = 'Your session ended: sign in again.';

export class Session {
  state = $state<SessionState>('checking');
  person = $state.raw<Person | undefined>(undefined);
  /** Why the login page is shown, e.g. the session ended ('' when there is nothing to say). */
  notice = $state('');
  /** Why the last sign-in failed, shown at the token field. */
  error = $state('');

  can(action: Action): boolean {
    return allows(this.person, action);
  }

  reason(action: Action): string {
    return denial(this.person, action);
  }

  signingIn(): void {
    this.state = 'signing-in';
    this.error = '';
  }

  signedIn(person: Person): void {
    this.person = person;
    this.state = 'signed-in';
    this.notice = '';
    this.error = '';
  }

  signedOut(notice = ''): void {
    this.person = undefined;
    this.state = 'signed-out';
    this.notice = notice;
    this.error = '';
  }

  refused(error: string): void {
    this.state = 'signed-out';
    this.error = error;
  }

  /** A call said the credential is gone; true only for the first such call of a session. */
  end(): boolean {
    if (this.state !== 'signed-in') return false;
    this.signedOut(SESSION_ENDED);
    return true;
  }
}

export const session = new Session();
