// Browser end-to-end tests of alerts and recovery point objectives against the real catcher, its
// alerts evaluated every second: an agent finishes a pass (a recovery point) and goes away, and the
// page shows AGENT_SILENT, then RPO_BREACHED for its folder, live; the status bar counts them; an
// operator acknowledges one with a note (journaled); a viewer cannot; the agent comes back and
// AGENT_SILENT resolves live. The clients list shows each client's worst RPO and its folders, the
// status bar the fleet's; the rules editor edits the RPO of a package type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { PackageType } from '../src/gen/edgebackup/v1/common_pb.js';
import { AlertKind, AlertService, AlertState, RpoState } from '../src/gen/edgebackup/v1/alerts_pb.js';
import { attrEventually, bearer, eventually, openDashboard as open, quickAlertsConfig, screenshot, startStack, textEventually } from './harness.mjs';

const T = { timeout: 240_000 };
const SOURCE = 'e2e-edge';
const FOLDER = '/srv/e2e-data';
const RPO_SECS = 8;
const DENIED_TO_VIEWER = 'Needs the operator role — you are signed in as a viewer';

/** A gRPC code as the page names it: "failed precondition". */
const codeWords = (code) => Code[code].replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

/** An HTTP receiver of webhook notifications on a free loopback port; records every POST. */
async function webhookReceiver(t) {
  const received = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ method: req.method, path: req.url, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, port: server.address().port, received };
}

/** A loopback port nothing listens on. */
async function deadPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function waitLive(page) {
  await attrEventually(page.getByTestId('connection-indicator'), 'data-state', (v) => v === 'connected', 'the live stream', 20_000);
}

/** The alert of `kind` about `subject` as the catcher lists it (any state). */
async function catcherAlert(api, kind, subject) {
  const { alerts } = await api.listAlerts({ kind, limit: 1000 });
  return alerts.find((a) => a.subject === subject);
}

test('alerts: raised live, counted in the status bar, acknowledged by an operator with a note, refused to a viewer, resolved live', T, async (t) => {
  const s = await startStack(t, { catcherConfig: quickAlertsConfig({ silentSecs: 2, rpoBySource: { [SOURCE]: RPO_SECS } }) });
  const page = s.page;
  const opToken = await s.person('otto', 'operator');
  const viewerToken = await s.person('vera', 'viewer');
  await s.signIn(page, opToken);
  await open(s, '#alerts');

  // nothing to say yet; no channels configured
  await page.getByTestId('alerts-empty').waitFor();
  const chip = page.getByTestId('status-alerts');
  assert.equal(await chip.getAttribute('data-open'), '0');
  assert.match(await chip.innerText(), /Alerts\s+none open/);
  await page.getByTestId('channels-empty').waitFor();

  // an agent connects, finishes a pass with every file protected (a recovery point), and goes away
  const agent = await s.agent(SOURCE, { hostname: 'e2e-edge.example' });
  const passAt = Date.now();
  await agent.apply({
    case: 'folderSnapshot',
    value: { folder: FOLDER, takenAt: timestampNow(), last: true, entries: 0n, unprotected: 0n, packageType: PackageType.USER_DATA },
  });
  const point = await eventually(
    async () => (await s.api.alerts.getRecoveryPoints({ sourceId: SOURCE })).points.find((p) => p.folder === FOLDER),
    'a recovery point for the folder',
  );
  assert.equal(point.packageType, PackageType.USER_DATA);
  assert.equal(Number(point.rpo?.seconds ?? -1), RPO_SECS, 'the per-source RPO applies');
  assert.ok(point.lastBackupAt, 'the pass is the last backup');
  if (Date.now() - passAt < (RPO_SECS - 2) * 1000) assert.equal(point.state, RpoState.HELD, 'held within its RPO');
  await agent.close();

  // AGENT_SILENT about the source appears live
  const silent = page.locator(`[data-testid="alert-row"][data-kind="agent_silent"][data-subject="${SOURCE}"]`);
  await silent.waitFor({ timeout: 20_000 });
  assert.equal(await silent.getAttribute('data-state'), 'open');
  assert.equal(await silent.getAttribute('data-acknowledged'), 'false');
  assert.equal(await silent.getByTestId('alert-kind').innerText(), 'agent silent');
  assert.equal(await silent.getByTestId('alert-source').innerText(), SOURCE);
  assert.ok((await silent.getByTestId('alert-message').innerText()).trim().length > 0, 'it says what was found');
  assert.match(await silent.getByTestId('alert-raised').innerText(), /just now|ago/);
  assert.equal(await silent.getByTestId('alert-resolved').innerText(), 'open');
  assert.equal(await silent.getByTestId('alert-acknowledge').isDisabled(), false, 'an operator may acknowledge');

  // the status bar counts it, urgently while nobody acknowledged it
  await attrEventually(chip, 'data-open', (v) => Number(v) >= 1, 'the status bar counts the open alert');
  await attrEventually(chip, 'data-unacknowledged', (v) => Number(v) >= 1, 'and calls it unacknowledged');
  assert.match(await chip.getAttribute('class'), /\burgent\b/);
  await page.getByTestId('status-alerts-unacknowledged').waitFor();

  // then RPO_BREACHED for its folder, once the pass is older than the RPO
  const breached = page.locator(`[data-testid="alert-row"][data-kind="rpo_breached"][data-subject="${SOURCE}:${FOLDER}"]`);
  await breached.waitFor({ timeout: 30_000 });
  assert.equal(await breached.getByTestId('alert-kind').innerText(), 'RPO breached');
  assert.equal(await breached.getAttribute('data-state'), 'open');
  await attrEventually(chip, 'data-open', (v) => Number(v) >= 2, 'the count rises to two');
  // open ones newest first: the breach was raised after the silence
  const order = await page.getByTestId('alert-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
  assert.ok(order.indexOf('rpo_breached') < order.indexOf('agent_silent'), `newest first: ${order.join(', ')}`);
  // the page agrees with the catcher
  await eventually(async () => {
    const res = await s.api.alerts.listAlerts({ state: AlertState.OPEN });
    return (await chip.getAttribute('data-open')) === String(res.open) && (await chip.getAttribute('data-unacknowledged')) === String(res.unacknowledged);
  }, 'the status bar counts what the catcher counts', 15_000);
  // the chip leads to the section
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await chip.click();
  await eventually(async () => page.evaluate(() => location.hash === '#alerts'), 'the chip links to the alerts');

  // a viewer sees them live, cannot acknowledge (disabled, with the reason), and the catcher refuses
  const ctx = await s.browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.after(() => ctx.close().catch(() => {}));
  const vp = await ctx.newPage();
  const viewerErrors = [];
  vp.on('pageerror', (e) => viewerErrors.push(String(e)));
  await s.signIn(vp, viewerToken);
  await vp.goto(`${s.pageUrl}#alerts`);
  await waitLive(vp);
  const vSilent = vp.locator(`[data-testid="alert-row"][data-kind="agent_silent"][data-source-id="${SOURCE}"]`);
  await vSilent.waitFor();
  const vAck = vSilent.getByTestId('alert-acknowledge');
  assert.equal(await vAck.isDisabled(), true, 'a viewer has no usable Acknowledge');
  assert.equal(await vAck.getAttribute('title'), DENIED_TO_VIEWER);
  const hintId = await vAck.getAttribute('aria-describedby');
  assert.equal(await vp.locator(`[id="${hintId}"]`).innerText(), DENIED_TO_VIEWER);
  const silentAlert = await catcherAlert(s.api.alerts, AlertKind.AGENT_SILENT, SOURCE);
  assert.ok(silentAlert, 'the catcher lists the AGENT_SILENT alert');
  const asViewer = createClient(AlertService, createGrpcTransport({ baseUrl: s.catcher.url, interceptors: [bearer(viewerToken)] }));
  assert.ok((await asViewer.listAlerts({})).alerts.length >= 2, 'a viewer may list alerts');
  await assert.rejects(asViewer.acknowledgeAlert({ id: silentAlert.id, note: 'viewer tries' }), (e) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, Code.PermissionDenied);
    return true;
  });

  // the operator acknowledges the breach with a note
  const note = 'e2e: restoring the uplink, backups resume after';
  await breached.getByTestId('alert-acknowledge').click();
  const dialog = page.getByTestId('alert-ack-dialog');
  await dialog.getByTestId('confirm-reason').waitFor();
  assert.match(await dialog.innerText(), /RPO breached/);
  assert.match(await dialog.innerText(), new RegExp(`${SOURCE}:${FOLDER}`));
  await dialog.getByTestId('confirm-reason').fill(note);
  await dialog.getByTestId('confirm-ok').click();
  await attrEventually(breached, 'data-acknowledged', (v) => v === 'true', 'acknowledged');
  assert.equal(await dialog.isVisible(), false);
  assert.match(await breached.getByTestId('alert-ack-by').innerText(), /otto/);
  assert.equal(await breached.getByTestId('alert-ack-note').innerText(), `“${note}”`);
  assert.match(await breached.getByTestId('alert-ack-at').innerText(), /just now|ago/);
  assert.equal(await breached.getByTestId('alert-acknowledge').count(), 0, 'no second acknowledgement offered');
  assert.equal(await breached.getAttribute('data-state'), 'open', 'it stays open until its condition clears');
  // the viewer sees it too, live
  const vBreached = vp.locator('[data-testid="alert-row"][data-kind="rpo_breached"]');
  await attrEventually(vBreached, 'data-acknowledged', (v) => v === 'true', 'the viewer sees the acknowledgement');
  assert.equal(await vBreached.getByTestId('alert-ack-note').innerText(), `“${note}”`);
  // the catcher agrees, and the status bar counts one unacknowledged fewer
  const acked = await catcherAlert(s.api.alerts, AlertKind.RPO_BREACHED, `${SOURCE}:${FOLDER}`);
  assert.match(acked.acknowledgedBy, /otto/);
  assert.equal(acked.note, note);
  assert.ok(acked.acknowledgedAt, 'with the time');
  await eventually(async () => {
    const res = await s.api.alerts.listAlerts({ state: AlertState.OPEN });
    return (await chip.getAttribute('data-unacknowledged')) === String(res.unacknowledged) && Number(res.unacknowledged) < Number(res.open);
  }, 'one unacknowledged fewer in the status bar', 15_000);
  // journaled, with who and the note
  const entry = page.locator('[data-testid="journal-list"] [data-testid="journal-entry"][data-event-type="alert.acknowledged"]');
  await eventually(async () => (await entry.count()) > 0, 'an alert.acknowledged journal entry', 15_000);
  assert.match(await entry.first().innerText(), /otto/);
  assert.match(await entry.first().textContent(), /restoring the uplink/);
  await page.getByTestId('section-alerts').scrollIntoViewIfNeeded();
  await screenshot(page, 'alerts.png');

  // an acknowledgement somebody else made meanwhile: the dialog says so, and the catcher's refusal is shown as it is
  await silent.getByTestId('alert-acknowledge').click();
  await dialog.getByTestId('confirm-reason').waitFor();
  await s.api.alerts.acknowledgeAlert({ id: silentAlert.id, note: 'the admin got there first' });
  await textEventually(dialog.getByTestId('confirm-error'), (v) => /acknowledged it meanwhile/.test(v), 'the dialog says it was acknowledged meanwhile');
  let refusal;
  await assert.rejects(s.api.alerts.acknowledgeAlert({ id: silentAlert.id, note: 'twice' }), (e) => {
    assert.ok(e instanceof ConnectError, String(e));
    refusal = e;
    return true;
  });
  await dialog.getByTestId('confirm-ok').click();
  await textEventually(
    dialog.getByTestId('confirm-error'),
    (v) => v === `${codeWords(refusal.code)}: ${refusal.rawMessage}`,
    `the refusal as the catcher gave it (${codeWords(refusal.code)}: ${refusal.rawMessage})`,
  );
  await dialog.getByTestId('confirm-cancel').click();
  await attrEventually(silent, 'data-acknowledged', (v) => v === 'true', "the admin's acknowledgement shows");

  // the agent comes back: AGENT_SILENT resolves live (it leaves the open list), the breach stays
  const back = await s.agent(SOURCE, { hostname: 'e2e-edge.example' });
  assert.ok(back, 'reconnected');
  await silent.waitFor({ state: 'detached', timeout: 20_000 });
  await vSilent.waitFor({ state: 'detached', timeout: 20_000 });
  assert.equal(await breached.count(), 1, 'the breach stays open: no newer pass');
  await page.getByTestId('alert-filter-state').selectOption('all');
  const resolved = page.locator(`[data-testid="alert-row"][data-kind="agent_silent"][data-subject="${SOURCE}"]`);
  await attrEventually(resolved, 'data-state', (v) => v === 'resolved', 'listed as resolved');
  assert.match(await resolved.getByTestId('alert-resolved').innerText(), /just now|ago/);
  assert.match(await resolved.getByTestId('alert-ack-by').innerText(), /admin|token/);
  // resolved ones come after the open ones
  const states = await page.getByTestId('alert-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
  assert.deepEqual(states, [...states].sort((a, b) => (a === 'open' ? 0 : 1) - (b === 'open' ? 0 : 1)), `open first: ${states.join(', ')}`);
  await page.getByTestId('alert-filter-state').selectOption('resolved');
  await resolved.waitFor();
  assert.equal(await breached.count(), 0, 'the resolved filter hides open ones');
  await page.getByTestId('alert-filter-kind').selectOption('rpo_breached');
  await page.getByTestId('alerts-empty').waitFor();
  await page.getByTestId('alert-filter-clear').click();
  await breached.waitFor();
  const resolvedEntry = page.locator('[data-testid="journal-list"] [data-testid="journal-entry"][data-event-type="alert.resolved"]');
  await eventually(async () => (await resolvedEntry.count()) > 0, 'an alert.resolved journal entry', 15_000);
  const catcherSilent = await catcherAlert(s.api.alerts, AlertKind.AGENT_SILENT, SOURCE);
  assert.equal(catcherSilent.state, AlertState.RESOLVED);
  assert.deepEqual(s.consoleErrors, []);
  assert.deepEqual(viewerErrors, []);
});

test('RPO: each client shows its worst folder, its folders in detail, the fleet summary in the status bar', T, async (t) => {
  const s = await startStack(t, { catcherConfig: quickAlertsConfig({ silentSecs: 3600, rpoBySource: { [SOURCE]: RPO_SECS } }) });
  const page = s.page;
  await open(s, '#clients');
  const agent = await s.agent(SOURCE);
  await agent.apply({
    case: 'folderSnapshot',
    value: { folder: FOLDER, takenAt: timestampNow(), last: true, entries: 0n, unprotected: 0n, packageType: PackageType.USER_DATA },
  });
  await agent.apply({
    case: 'folderSnapshot',
    value: { folder: '/var/log/e2e', takenAt: timestampNow(), last: true, entries: 0n, unprotected: 3n, packageType: PackageType.APP_LOGS },
  });
  const row = page.locator(`[data-testid="client-row"][data-source-id="${SOURCE}"]`);
  await row.waitFor();
  const cell = row.getByTestId('client-rpo');
  await attrEventually(cell, 'data-state', (v) => v === 'held' || v === 'breached', 'the client shows its RPO state', 30_000);
  assert.match(await row.getByTestId('client-rpo-age').innerText(), /\d+ s|never/);
  await row.getByTestId('client-rpo-toggle').click();
  const detail = page.locator(`[data-testid="client-rpo-detail"][data-source-id="${SOURCE}"]`);
  await detail.waitFor();
  const folder = detail.locator(`[data-testid="rpo-folder-row"][data-folder="${FOLDER}"]`);
  await folder.waitFor();
  assert.equal(await folder.getByTestId('rpo-folder-type').innerText(), 'user data');
  assert.equal(await folder.getByTestId('rpo-folder-unprotected').innerText(), '0');
  assert.notEqual(await folder.getByTestId('rpo-folder-last').innerText(), 'never');
  assert.match(await folder.getByTestId('rpo-folder-age').innerText(), /of 8 s|\(RPO 8 s/);
  const logs = detail.locator('[data-testid="rpo-folder-row"][data-folder="/var/log/e2e"]');
  await logs.waitFor();
  assert.equal(await logs.getByTestId('rpo-folder-type').innerText(), 'app logs');
  assert.equal(await logs.getByTestId('rpo-folder-unprotected').innerText(), '3');

  // past the RPO: breached, in the client (refreshed every 15 s) and in the fleet summary
  await attrEventually(cell, 'data-state', (v) => v === 'breached', 'the client turns breached', 40_000);
  await attrEventually(folder, 'data-state', (v) => v === 'breached', 'the folder is breached (next refresh)', 25_000);
  const rpoChip = page.getByTestId('status-rpo');
  await attrEventually(rpoChip, 'data-breached', (v) => Number(v) >= 1, 'the status bar counts the breach', 30_000);
  await textEventually(rpoChip, (v) => /\d+ held · \d+ breached · worst \d+/.test(v), 'the fleet summary with the worst age', 30_000);
  const res = await s.api.alerts.getRecoveryPoints({});
  assert.ok(Number(res.breached) >= 1);
  assert.deepEqual(s.consoleErrors, []);
});

test('rules: the RPO of a package type is shown and edited (empty: the default)', T, async (t) => {
  const s = await startStack(t);
  const page = s.page;
  await open(s, '#rules');
  await page.getByTestId('rule-tab-app_logs').click();
  const field = page.getByTestId('rule-field-app_logs-rpo');
  await field.waitFor();
  assert.match(await page.getByTestId('rule-rpo-hint-app_logs').innerText(), /empty: the\s+default \(1 d\), 0: no objective/);
  const before = (await s.api.policy.listRuleSets({})).ruleSets.find((r) => r.packageType === PackageType.APP_LOGS);
  if (!before.rpo) assert.equal(await field.inputValue(), '', 'unset: the field is empty');

  await field.fill('12');
  await page.getByTestId('rule-field-app_logs-rpo-unit').selectOption('h');
  await page.getByTestId('rule-save-app_logs').click();
  await textEventually(page.getByTestId('rule-save-result-app_logs'), (v) => /Saved as config snapshot/.test(v), 'saved');
  const saved = (await s.api.policy.listRuleSets({})).ruleSets.find((r) => r.packageType === PackageType.APP_LOGS);
  assert.equal(Number(saved.rpo?.seconds ?? -1), 12 * 3600, 'the catcher keeps the RPO');
  assert.equal(await field.inputValue(), '12');
  assert.equal(await page.getByTestId('rule-field-app_logs-rpo-unit').inputValue(), 'h');

  // back to the default: the field emptied leaves it unset
  await field.fill('');
  await page.getByTestId('rule-save-app_logs').click();
  await eventually(async () => !(await s.api.policy.listRuleSets({})).ruleSets.find((r) => r.packageType === PackageType.APP_LOGS).rpo, 'the RPO is unset again', 15_000);
  // an unreadable value is caught at the field
  await field.fill('soon');
  await page.getByTestId('rule-save-app_logs').click();
  await page.getByTestId('rule-error-app_logs-rpo').waitFor();
  assert.deepEqual(s.consoleErrors, []);
});

test('channels: listed with their deliveries, Send test shows what the receiver answered, a viewer cannot test', T, async (t) => {
  const hook = await webhookReceiver(t);
  const dead = await deadPort();
  const s = await startStack(t, {
    catcherConfig: quickAlertsConfig({
      silentSecs: 2,
      channels: [
        { name: 'ops-hook', kind: 'webhook', url: hook.url },
        { name: 'broken-hook', kind: 'webhook', url: `http://127.0.0.1:${dead}/nowhere` },
      ],
    }),
  });
  const page = s.page;
  const opToken = await s.person('otto', 'operator');
  await s.signIn(page, opToken);
  await open(s, '#alerts');

  // in configuration order, secrets and paths left out of the target
  const rows = page.getByTestId('channels-table').getByTestId('channel-row');
  await rows.first().waitFor();
  assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-channel'))), ['ops-hook', 'broken-hook']);
  const ops = page.locator('[data-testid="channel-row"][data-channel="ops-hook"]');
  const broken = page.locator('[data-testid="channel-row"][data-channel="broken-hook"]');
  assert.equal(await ops.getByTestId('channel-kind').innerText(), 'webhook');
  const target = await ops.getByTestId('channel-target').innerText();
  assert.match(target, new RegExp(`127\\.0\\.0\\.1:${hook.port}`));
  assert.doesNotMatch(target, /\/hook/, 'the target names no path');

  // a test through the working channel: delivered, and the receiver has it
  await ops.getByTestId('channel-test').click();
  const okOutcome = ops.getByTestId('channel-test-outcome');
  await okOutcome.waitFor({ timeout: 20_000 });
  assert.equal(await okOutcome.getAttribute('data-delivered'), 'true');
  assert.match(await okOutcome.innerText(), /^Delivered/);
  await eventually(async () => hook.received.some((r) => r.method === 'POST' && r.path === '/hook'), 'the receiver got the test');
  // and through the broken one: not delivered, with the reason
  await broken.getByTestId('channel-test').click();
  const badOutcome = broken.getByTestId('channel-test-outcome');
  await badOutcome.waitFor({ timeout: 30_000 });
  assert.equal(await badOutcome.getAttribute('data-delivered'), 'false');
  assert.match(await badOutcome.innerText(), /^(Not delivered|Could not test)/);
  const refused = await s.api.alerts.testChannel({ name: 'broken-hook' });
  assert.equal(refused.delivered, false);
  assert.ok((await badOutcome.innerText()).length > 'Not delivered'.length, 'it says why');
  // journaled
  const tested = page.locator('[data-testid="journal-list"] [data-testid="journal-entry"][data-event-type="alert.channel_tested"]');
  await eventually(async () => (await tested.count()) >= 3, 'alert.channel_tested journal entries', 15_000);
  assert.ok((await tested.filter({ hasText: 'otto' }).count()) >= 2, 'the tests otto made name him');
  assert.match(await tested.filter({ hasText: 'otto' }).first().innerText(), /channel \S+-hook tested · (not )?delivered/);

  // an alert is delivered through it: the panel counts it (as the catcher does)
  const agent = await s.agent(SOURCE);
  await agent.close();
  await page.locator(`[data-testid="alert-row"][data-kind="agent_silent"][data-subject="${SOURCE}"]`).waitFor({ timeout: 20_000 });
  await eventually(async () => hook.received.some((r) => r.body.includes(SOURCE)), 'the receiver got the alert', 20_000);
  await eventually(async () => {
    await page.getByTestId('channels-refresh').click();
    const { channels } = await s.api.alerts.listChannels({});
    const c = channels.find((x) => x.name === 'ops-hook');
    await page.waitForTimeout(300);
    return Number(c.delivered) > 0 && (await ops.getAttribute('data-delivered')) === String(c.delivered);
  }, 'the delivered count as the catcher keeps it', 20_000);

  // a viewer sees the channels with Send test disabled, and the catcher refuses the viewer
  const viewerToken = await s.person('vera', 'viewer');
  const ctx = await s.browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.after(() => ctx.close().catch(() => {}));
  const vp = await ctx.newPage();
  await s.signIn(vp, viewerToken);
  await vp.goto(`${s.pageUrl}#alerts`);
  await waitLive(vp);
  const vTest = vp.locator('[data-testid="channel-row"][data-channel="ops-hook"]').getByTestId('channel-test');
  await vTest.waitFor();
  assert.equal(await vTest.isDisabled(), true);
  assert.equal(await vTest.getAttribute('title'), DENIED_TO_VIEWER);
  const asViewer = createClient(AlertService, createGrpcTransport({ baseUrl: s.catcher.url, interceptors: [bearer(viewerToken)] }));
  assert.equal((await asViewer.listChannels({})).channels.length, 2, 'a viewer may list channels');
  await assert.rejects(asViewer.testChannel({ name: 'ops-hook' }), (e) => e instanceof ConnectError && e.code === Code.PermissionDenied);
  assert.deepEqual(s.consoleErrors, []);
});
