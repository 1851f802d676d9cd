import { describe, expect, it } from 'vitest';
import { Role } from './pb';
import { ACTIONS, allows, denial, parseRole, roleName, Session, SESSION_ENDED, type Action, type Person } from './session.svelte';

const as = (role: Role, name = 'alice'): Person => ({ name, role, unredacted: false });
const viewer = as(Role.VIEWER);
const operator = as(Role.OPERATOR);
const admin = as(Role.ADMIN);
const OPERATOR_ACTIONS: Action[] = ['edit-rules', 'apply-preset', 'create-snapshot', 'restore-snapshot', 'send-command', 'restore-files', 'cancel-pending', 'acknowledge-alert', 'test-channel'];
const ADMIN_ACTIONS: Action[] = ['delete-package', 'manage-access'];

describe('roles', () => {
  it('reads the gateway spellings of the proto roles', () => {
    expect(parseRole('viewer')).toBe(Role.VIEWER);
    expect(parseRole('operator')).toBe(Role.OPERATOR);
    expect(parseRole('admin')).toBe(Role.ADMIN);
    for (const odd of ['Admin', 'root', '', 'unspecified', 3, undefined]) expect(parseRole(odd)).toBe(Role.UNSPECIFIED);
    expect(roleName(Role.OPERATOR)).toBe('operator');
    expect(roleName(Role.UNSPECIFIED)).toBe('unknown');
  });

  it('covers every action with one of the two roles above viewer', () => {
    expect(Object.keys(ACTIONS).sort()).toEqual([...OPERATOR_ACTIONS, ...ADMIN_ACTIONS].sort());
  });

  it('a viewer may do none of them, an operator the operator ones, an admin all', () => {
    for (const a of OPERATOR_ACTIONS) {
      expect([allows(viewer, a), allows(operator, a), allows(admin, a)], a).toEqual([false, true, true]);
    }
    for (const a of ADMIN_ACTIONS) {
      expect([allows(viewer, a), allows(operator, a), allows(admin, a)], a).toEqual([false, false, true]);
    }
  });

  it('nobody signed in and an unknown role may do nothing', () => {
    for (const a of Object.keys(ACTIONS) as Action[]) {
      expect(allows(undefined, a)).toBe(false);
      expect(allows(as(Role.UNSPECIFIED), a)).toBe(false);
    }
  });

  it('says which role is needed and which one the person has, or nothing when allowed', () => {
    expect(denial(viewer, 'edit-rules')).toBe('Needs the operator role — you are signed in as a viewer');
    expect(denial(viewer, 'manage-access')).toBe('Needs the admin role — you are signed in as a viewer');
    expect(denial(operator, 'delete-package')).toBe('Needs the admin role — you are signed in as an operator');
    expect(denial(as(Role.UNSPECIFIED), 'send-command')).toBe('Needs the operator role — you are signed in with a role this page does not know');
    expect(denial(undefined, 'send-command')).toBe('Sign in to do this');
    expect(denial(operator, 'send-command')).toBe('');
    expect(denial(admin, 'delete-package')).toBe('');
  });
});

describe('Session', () => {
  it('answers can/reason for whoever is signed in', () => {
    const s = new Session();
    expect(s.can('edit-rules')).toBe(false);
    s.signedIn(viewer);
    expect(s.can('edit-rules')).toBe(false);
    expect(s.reason('edit-rules')).toMatch(/operator role .* viewer/);
    s.signedIn(operator);
    expect(s.can('edit-rules')).toBe(true);
    expect(s.reason('edit-rules')).toBe('');
  });

  it('ends a signed-in session once, with the message, and forgets the person', () => {
    const s = new Session();
    expect(s.end()).toBe(false);
    s.signedIn(admin);
    expect(s.end()).toBe(true);
    expect([s.state, s.notice, s.person]).toEqual(['signed-out', SESSION_ENDED, undefined]);
    expect(s.end()).toBe(false);
    expect(s.can('send-command')).toBe(false);
  });

  it('a refused sign-in keeps the notice and shows the error; the next attempt clears it', () => {
    const s = new Session();
    s.signedOut(SESSION_ENDED);
    s.signingIn();
    s.refused('token revoked');
    expect([s.state, s.error, s.notice]).toEqual(['signed-out', 'token revoked', SESSION_ENDED]);
    s.signingIn();
    expect([s.state, s.error]).toEqual(['signing-in', '']);
  });
});
