// Browser end-to-end test of protected retention: an operator shortens a rule set in the page, the
// catcher holds the change for its protection delay, the page shows it as a pending destructive
// change with a countdown (Cancel disabled with the reason for a viewer), and the operator cancels
// it. Real catcher and gateway, with a one-hour protection delay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { PackageType } from '../src/gen/edgebackup/v1/common_pb.js';
import { PendingChangeState, PolicyService } from '../src/gen/edgebackup/v1/policy_pb.js';
import { bearer, eventually, screenshot, startStack } from './harness.mjs';

const T = { timeout: 120_000 };
const DELAY_SECS = 3600;
const DENIED_TO_VIEWER = 'Needs the operator role — you are signed in as a viewer';

/** Waits for the live stream, as the other browser tests do. */
async function waitLive(page) {
  await eventually(async () => (await page.getByTestId('connection-indicator').getAttribute('data-state', { timeout: 1000 })) === 'connected', 'the live stream', 20_000);
}

/** The user data rule set as the catcher holds it. */
async function userData(api) {
  const { ruleSets } = await api.listRuleSets({});
  const rs = ruleSets.find((r) => r.packageType === PackageType.USER_DATA);
  assert.ok(rs, 'the catcher has a user data rule set');
  return rs;
}

const seconds = (stop) => Number(stop?.wait?.seconds ?? 0n);

test('a shortened rule set is held as a pending change: banner, countdown, viewer cannot cancel, operator cancels', T, async (t) => {
  const s = await startStack(t, { catcherEnv: { CATCHER_PROTECTION_DELAY_SECS: String(DELAY_SECS) } });
  const page = s.page;
  const before = await userData(s.api.policy);
  const hotBefore = seconds(before.hot);
  assert.ok(before.hot?.enabled && hotBefore > 3600, `the hot stop waits more than an hour to begin with (${hotBefore} s)`);
  const { snapshots: snapshotsBefore } = await s.api.policy.listConfigSnapshots({});

  // an operator shortens the hot wait to one hour in the page
  const opToken = await s.person('otto', 'operator');
  await s.signIn(page, opToken);
  await page.goto(s.pageUrl);
  await waitLive(page);
  assert.equal(await page.getByTestId('session-user').innerText(), 'otto · operator');
  assert.equal(await page.getByTestId('pending-changes').count(), 0, 'no banner while nothing is pending');

  await page.getByTestId('rule-tab-user_data').click();
  await page.getByTestId('rule-field-user_data-hot-wait').fill('1');
  await page.getByTestId('rule-field-user_data-hot-wait-unit').selectOption('h');
  await page.getByTestId('rule-reason-user_data').fill('e2e: save space');
  await page.getByTestId('rule-save-user_data').click();

  // the page says it was held, not saved
  const result = page.getByTestId('rule-save-result-user_data');
  await result.waitFor();
  assert.equal(await result.getAttribute('data-held'), 'true');
  const resultText = await result.innerText();
  assert.match(resultText, /Held for 1 h: takes effect at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d unless cancelled/);
  assert.doesNotMatch(resultText, /Saved as/);

  // the catcher holds it: one open change, the rule set in force unchanged, no snapshot written
  const { changes, protectionDelaySecs } = await s.api.policy.listPendingChanges({});
  assert.equal(Number(protectionDelaySecs), DELAY_SECS);
  assert.equal(changes.length, 1, 'one pending change');
  const change = changes[0];
  assert.equal(change.state, PendingChangeState.PENDING);
  assert.equal(change.change.case, 'ruleSet');
  assert.match(change.requestedBy, /otto/);
  assert.equal(change.reason, 'e2e: save space');
  const shortened = change.change.value.shortened;
  assert.ok(shortened.length > 0 && shortened.some((l) => /hot/.test(l)), `the catcher says what gets shorter: ${shortened.join(' | ')}`);
  const id = String(change.changeId);
  assert.equal(seconds((await userData(s.api.policy)).hot), hotBefore, 'the rule set in force is unchanged while held');
  assert.equal((await s.api.policy.listConfigSnapshots({})).snapshots.length, snapshotsBefore.length, 'a held change writes no snapshot');

  // the banner near the top: what, who, why, countdown with the absolute time on hover
  const banner = page.getByTestId('pending-changes');
  await banner.waitFor();
  const row = page.getByTestId(`pending-change-${id}`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-kind'), 'rule_set');
  const rowText = await row.innerText();
  assert.match(rowText, /Rule set for user data/);
  for (const line of shortened) assert.ok(rowText.includes(line), `the banner shows "${line}": ${rowText}`);
  assert.match(await page.getByTestId(`pending-origin-${id}`).innerText(), /update/);
  assert.match(await page.getByTestId(`pending-requested-by-${id}`).innerText(), /otto/);
  assert.equal(await page.getByTestId(`pending-reason-${id}`).innerText(), 'e2e: save space');
  const countdown = page.getByTestId(`pending-countdown-${id}`);
  assert.match(await countdown.innerText(), /^takes effect in (59 min( \d+ s)?|1 h)$/);
  assert.match(await countdown.getAttribute('title'), /^Takes effect at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  // the banner comes before the sections
  const [bannerTop, trackTop] = await Promise.all([banner.boundingBox(), page.locator('#track').boundingBox()]);
  assert.ok(bannerTop && trackTop && bannerTop.y < trackTop.y, 'the banner is above the first section');
  // the editor shows the rule set still in force, and points at the pending change
  await page.getByTestId('rule-pending-user_data').waitFor();
  assert.equal(await page.getByTestId('train-line-user_data-hot').getAttribute('data-wait-seconds'), String(hotBefore));
  const opCancel = page.getByTestId(`pending-cancel-${id}`);
  assert.equal(await opCancel.isDisabled(), false, 'an operator may cancel');
  await banner.scrollIntoViewIfNeeded();
  await screenshot(page, 'pending-change.png');

  // a viewer (another browser) sees it live, with Cancel disabled and the reason
  const viewerToken = await s.person('vera', 'viewer');
  const ctx = await s.browser.newContext({ viewport: { width: 1280, height: 720 } });
  t.after(() => ctx.close().catch(() => {}));
  const vp = await ctx.newPage();
  await s.signIn(vp, viewerToken);
  await vp.goto(s.pageUrl);
  await waitLive(vp);
  await vp.getByTestId(`pending-change-${id}`).waitFor();
  const vCancel = vp.getByTestId(`pending-cancel-${id}`);
  assert.equal(await vCancel.isDisabled(), true, 'a viewer cannot cancel');
  assert.equal(await vCancel.getAttribute('title'), DENIED_TO_VIEWER);
  const described = ((await vCancel.getAttribute('aria-describedby')) ?? '').split(/\s+/).filter(Boolean);
  assert.ok(described.length > 0, 'Cancel points at its hint');
  const hint = vp.locator(`[id="${described[0]}"]`);
  assert.equal(await hint.isVisible(), true);
  assert.equal(await hint.innerText(), DENIED_TO_VIEWER);
  assert.match(await vp.getByTestId('pending-who-can-cancel').innerText(), /operators and admins can cancel/i);
  // and the catcher refuses a viewer's cancel too
  const asViewer = createClient(PolicyService, createGrpcTransport({ baseUrl: s.catcher.url, interceptors: [bearer(viewerToken)] }));
  await assert.rejects(asViewer.cancelPendingChange({ changeId: change.changeId, reason: 'viewer tries' }), (e) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, Code.PermissionDenied);
    return true;
  });

  // the operator cancels: asks for a reason, then the banner goes away (in both browsers)
  await opCancel.click();
  const dialog = page.getByTestId('pending-cancel-dialog');
  await dialog.getByTestId('confirm-reason').waitFor();
  assert.match(await dialog.innerText(), /Cancel pending change #\d+\?/);
  // changing one's mind first: nothing happens
  await dialog.getByTestId('confirm-cancel').click();
  assert.equal(await dialog.isVisible(), false);
  assert.equal(await row.count(), 1, 'still pending');
  await opCancel.click();
  await dialog.getByTestId('confirm-reason').fill('e2e: not today');
  await dialog.getByTestId('confirm-ok').click();
  await banner.waitFor({ state: 'detached', timeout: 15_000 });
  await vp.getByTestId('pending-changes').waitFor({ state: 'detached', timeout: 15_000 });
  assert.equal(await dialog.isVisible(), false);
  await page.getByTestId('notice-ok').waitFor();
  assert.equal(await page.getByTestId('rule-pending-user_data').count(), 0);

  // the catcher agrees: cancelled by otto with the reason, and the rule set is unchanged
  const all = await s.api.policy.listPendingChanges({ includeResolved: true });
  const resolved = all.changes.find((c) => c.changeId === change.changeId);
  assert.ok(resolved, 'the cancelled change is listed with the resolved ones');
  assert.equal(resolved.state, PendingChangeState.CANCELLED);
  assert.match(resolved.resolvedBy, /otto/);
  assert.equal(resolved.outcome, 'e2e: not today', 'the reason given is kept');
  assert.equal(all.changes.filter((c) => c.state === PendingChangeState.PENDING).length, 0);
  const after = await userData(s.api.policy);
  assert.equal(seconds(after.hot), hotBefore, 'the hot wait is what it was');
  assert.deepEqual(
    { hot: after.hot, warm: after.warm, cold: after.cold, offsite: after.offsite, replicateToAll: after.replicateToAll },
    { hot: before.hot, warm: before.warm, cold: before.cold, offsite: before.offsite, replicateToAll: before.replicateToAll },
    'the whole rule set is unchanged',
  );
  assert.equal(await page.getByTestId('train-line-user_data-hot').getAttribute('data-wait-seconds'), String(hotBefore));
  assert.equal((await s.api.policy.listConfigSnapshots({})).snapshots.length, snapshotsBefore.length, 'still no new snapshot');

  // the journal tells the story in words
  for (const type of ['pending_change.created', 'pending_change.cancelled']) {
    const entry = page.locator(`[data-testid="journal-list"] [data-testid="journal-entry"][data-event-type="${type}"]`);
    await eventually(async () => (await entry.count()) > 0, `a ${type} journal entry`, 15_000);
    const summary = await entry.first().getByTestId('journal-summary').innerText();
    assert.match(summary, type.endsWith('created') ? /held/ : /cancelled/, `${type}: ${summary}`);
    assert.match(await entry.first().innerText(), /otto/, `${type} names who`);
  }
  // the cancellation's reason is journaled
  const cancelled = page.locator('[data-testid="journal-list"] [data-testid="journal-entry"][data-event-type="pending_change.cancelled"]');
  assert.match(await cancelled.first().textContent(), /not today/);

  // config snapshots say who took them
  const actor = page.getByTestId('snapshot-actor').first();
  await actor.waitFor();
  assert.notEqual((await actor.innerText()).trim(), '—', 'the snapshot list names who took each');
  assert.deepEqual(s.consoleErrors, []);
});
