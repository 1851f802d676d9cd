// Browser end-to-end tests of signing in: the login page and login links, the role-aware controls,
// a revoked token ending the session live, and signing out. Real catcher and gateway per test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, loginLink, startStack } from './harness.mjs';

const T = { timeout: 120_000 };
const DENIED_TO_VIEWER = 'Needs the operator role — you are signed in as a viewer';

/** The page's pathname, search and hash. */
const where = (page) => {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}${u.hash}`;
};

/** Waits for the live stream, as the dashboard tests do. */
async function waitLive(page) {
  await eventually(async () => (await page.getByTestId('connection-indicator').getAttribute('data-state', { timeout: 1000 })) === 'connected', 'the live stream', 20_000);
}

/** Status of GET /api/session from the page (with its cookie). */
const sessionStatus = (page) => page.evaluate(() => fetch('/api/session', { cache: 'no-store' }).then((r) => r.status));

/** `control` is disabled, says why in its tooltip, and points at a visible hint saying the same. */
async function assertDenied(page, control, what) {
  await control.waitFor();
  assert.equal(await control.isDisabled(), true, `${what} is disabled`);
  assert.equal(await control.getAttribute('title'), DENIED_TO_VIEWER, `${what} says why in its tooltip`);
  const ids = ((await control.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
  const hints = [];
  for (const id of ids) {
    const el = page.locator(`[id="${id}"]`);
    if ((await el.count()) === 1 && (await el.isVisible())) hints.push(await el.innerText());
  }
  assert.ok(hints.includes(DENIED_TO_VIEWER), `${what} is described by a visible hint with the reason (described by ${ids.join(', ')}: ${hints.join(' | ')})`);
}

test('login page: an unauthenticated visit shows it, a wrong token is refused at the field, then ?next= is followed', T, async (t) => {
  const s = await startStack(t, { signedIn: false });
  const page = s.page;
  await page.goto(`${s.pageUrl}#rules`);
  await page.getByTestId('login-page').waitFor();
  assert.equal(where(page), '/login?next=%2F%23rules', 'the login page remembers where the person wanted to go');
  assert.equal(await page.getByTestId('connection-indicator').count(), 0, 'no dashboard before signing in');
  const field = page.getByTestId('login-token');
  assert.equal(await field.getAttribute('type'), 'password');
  assert.equal(await field.getAttribute('autocomplete'), 'off');

  await field.fill(`ebk_token_${'0'.repeat(64)}`);
  await page.getByTestId('login-submit').click();
  const err = page.getByTestId('login-error');
  await err.waitFor();
  assert.notEqual((await err.innerText()).trim(), '', 'the gateway says why');
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  assert.equal(await field.getAttribute('aria-describedby'), await err.getAttribute('id'));
  assert.equal(await sessionStatus(page), 401, 'a refused token makes no session');

  // the form with the right token goes on to where the person wanted to go
  await field.fill(s.adminToken);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('session-user').waitFor();
  assert.equal(where(page), '/#rules');
  assert.equal(await page.getByTestId('session-user').getAttribute('data-role'), 'admin');
  await waitLive(page);

  // ?next= never leaves this origin
  await page.goto(loginLink(s.pageUrl, s.adminToken, '//evil.example/x'));
  await page.getByTestId('session-user').waitFor();
  assert.equal(new URL(page.url()).origin, new URL(s.pageUrl).origin);
  assert.equal(where(page), '/');
});

test('login link: signs in, drops the token from the address at once, names the person and role', T, async (t) => {
  const s = await startStack(t, { signedIn: false });
  const page = s.page;
  const token = await s.person('alice', 'viewer');
  // the address when the page sends the token: its fragment must already be gone
  let addressAtPost;
  await page.route('**/api/login', async (route) => {
    addressAtPost = await page.evaluate(() => location.href);
    await route.continue();
  });
  await page.goto(loginLink(s.pageUrl, token));
  const user = page.getByTestId('session-user');
  await user.waitFor();
  assert.ok(addressAtPost, 'the page posted the token');
  assert.ok(!addressAtPost.includes('#') && !addressAtPost.includes(token), `fragment removed before the POST: ${addressAtPost}`);
  assert.equal(where(page), '/');
  assert.ok(!page.url().includes(token));
  assert.equal(await user.innerText(), 'alice · viewer');
  assert.equal(await user.getAttribute('data-name'), 'alice');
  assert.equal(await user.getAttribute('data-role'), 'viewer');
  await waitLive(page);

  // the cookie holds the session, out of the page's reach; the page stores nothing
  const cookie = (await s.context.cookies()).find((c) => c.name === 'ebk_session');
  assert.ok(cookie, 'the gateway set ebk_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  const stored = await page.evaluate(() => ({ cookie: document.cookie, local: JSON.stringify({ ...localStorage }), session: JSON.stringify({ ...sessionStorage }) }));
  assert.ok(!stored.cookie.includes('ebk_session'), 'the page cannot read the session cookie');
  assert.ok(!stored.local.includes(token) && !stored.session.includes(token), 'no token in web storage');
  assert.equal(await sessionStatus(page), 200);
  assert.deepEqual(s.consoleErrors, []);
});

test('a viewer sees operator controls disabled with the reason; an operator may use them', T, async (t) => {
  const s = await startStack(t);
  // a client whose panic brake tripped, so its Resume command button shows
  const agent = await s.agent('edge-kiosk-7');
  await agent.safetyAlert('canary file rewritten');
  const page = s.page;
  await s.signIn(page, await s.person('vera', 'viewer'));
  await page.goto(s.pageUrl);
  await waitLive(page);
  assert.equal(await page.getByTestId('session-user').innerText(), 'vera · viewer');

  // rules: every field and the save button
  await page.getByTestId('rule-tab-user_data').click();
  await assertDenied(page, page.getByTestId('rule-save-user_data'), 'rules save');
  assert.equal(await page.getByTestId('rule-field-user_data-hot-wait').isDisabled(), true, 'rule fields are disabled');
  // presets: previewing is reading, applying is not
  const option = page.locator('[data-testid^="preset-option-"]').first();
  await option.check();
  await assertDenied(page, page.getByTestId('preset-apply'), 'preset apply');
  // config snapshots: the diff is a read, restore is not
  await page.getByTestId('snapshot-row').first().waitFor();
  assert.equal(await page.getByTestId('snapshot-diff-toggle').first().isDisabled(), false, 'a viewer may compare snapshots');
  await assertDenied(page, page.getByTestId('snapshot-restore').first(), 'snapshot restore');
  // commands: resume after the panic brake
  const row = page.locator('[data-testid="client-row"][data-source-id="edge-kiosk-7"]');
  await eventually(async () => (await row.getAttribute('data-safety', { timeout: 1000 })) === 'stopped', 'stopped for safety');
  await assertDenied(page, row.getByTestId('client-resume'), 'resume command');
  // restore: browsing is a read, choosing where and starting it are not
  await page.getByTestId('nav-restore').click();
  await page.getByTestId('restore-source').selectOption('edge-kiosk-7');
  await assertDenied(page, page.getByTestId('restore-submit'), 'restore');
  assert.equal(await page.getByTestId('restore-target-dir').isDisabled(), true, 'the restore target is disabled');
  assert.equal(await page.getByTestId('restore-source').isDisabled(), false, 'choosing what to browse is not');

  // an operator (another browser) gets them enabled, without hints
  const ctx = await s.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const op = await ctx.newPage();
  await s.signIn(op, await s.person('otto', 'operator'));
  await op.goto(s.pageUrl);
  await waitLive(op);
  assert.equal(await op.getByTestId('session-user').innerText(), 'otto · operator');
  await op.getByTestId('rule-tab-user_data').click();
  const hot = op.getByTestId('rule-field-user_data-hot-wait');
  assert.equal(await hot.isDisabled(), false);
  await hot.fill('3');
  const save = op.getByTestId('rule-save-user_data');
  assert.equal(await save.isDisabled(), false);
  assert.equal(await save.getAttribute('title'), null);
  const opRow = op.locator('[data-testid="client-row"][data-source-id="edge-kiosk-7"]');
  assert.equal(await opRow.getByTestId('client-resume').isDisabled(), false);
  assert.equal(await op.getByTestId('role-hint').count(), 0, 'no role hints for an operator');
});

test("revoking a viewer's token ends their session live: the login page says so, without a reload", T, async (t) => {
  const s = await startStack(t, { signedIn: false });
  const page = s.page;
  const token = await s.person('vera', 'viewer');
  await s.signIn(page, token);
  await page.goto(`${s.pageUrl}#journal`);
  await waitLive(page);
  await page.evaluate(() => (window.__sameDocument = 'yes'));

  await s.revokePerson('vera');
  // the catcher closes the Watch stream (Unauthenticated) within seconds
  await page.getByTestId('login-page').waitFor({ timeout: 15_000 });
  assert.match(await page.getByTestId('login-notice').innerText(), /session ended: sign in again/i);
  assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'no reload happened');
  assert.equal(where(page), '/login?next=%2F%23journal');
  assert.equal(await page.getByTestId('connection-indicator').count(), 0, 'the dashboard is gone');
  assert.equal(await sessionStatus(page), 401, 'the gateway no longer knows the session');

  // the revoked token cannot sign in again; another one goes back where the person was
  await page.getByTestId('login-token').fill(token);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').waitFor();
  assert.equal(await sessionStatus(page), 401);
  await page.getByTestId('login-token').fill(await s.person('vera2', 'viewer'));
  await page.getByTestId('login-submit').click();
  await page.getByTestId('session-user').waitFor();
  assert.equal(where(page), '/#journal');
});

test('sign out returns to the login page and ends the session at the gateway', T, async (t) => {
  const s = await startStack(t);
  const page = s.page;
  await page.goto(s.pageUrl);
  await waitLive(page);
  await page.evaluate(() => (window.__sameDocument = 'yes'));
  assert.equal(await page.getByTestId('session-user').getAttribute('data-role'), 'admin');

  await page.getByTestId('sign-out').click();
  await page.getByTestId('login-page').waitFor();
  assert.equal(where(page), '/login');
  assert.equal(await page.getByTestId('login-notice').count(), 0, 'signing out is no surprise: no notice');
  assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'no reload happened');
  assert.equal(await sessionStatus(page), 401);
  assert.ok(!(await s.context.cookies()).some((c) => c.name === 'ebk_session' && c.value), 'the cookie is cleared');

  // a fresh visit shows the login page again
  await page.goto(s.pageUrl);
  await page.getByTestId('login-page').waitFor();
  assert.equal(where(page), '/login');
});
