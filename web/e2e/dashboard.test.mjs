// Browser end-to-end tests: real headless Chromium against a real catcher and gateway per test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PackageStatus,
  PackageType,
  PlacementStatus,
  SafetyState,
  Tier,
  Tool,
} from '../src/gen/edgebackup/v1/common_pb.js';
import { CommandKind } from '../src/gen/edgebackup/v1/commands_pb.js';
import { attrEventually, eventually, openDashboard as open, screenshot, sha256Hex, startStack, textEventually, uuidv7 } from './harness.mjs';

const T = { timeout: 120_000 };

function data(n, fill) {
  return Buffer.alloc(n, fill);
}

/** Announces a package through the agent stream; returns its id and checksum. */
async function ingest(agent, { path, type = PackageType.USER_DATA, size = 4096, fill = 1 } = {}) {
  const id = uuidv7();
  const sha = sha256Hex(data(size, fill));
  await agent.ingest({ packageId: id, path, packageType: type, sizeBytes: BigInt(size), sha256: sha, tool: Tool.NATIVE });
  return { id, sha, size };
}

test('empty state: a fresh catcher shows empty sections, not errors', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  await page.getByTestId('packages-empty').waitFor();
  await page.getByTestId('clients-empty').waitFor();
  await page.getByTestId('track-empty').waitFor();
  assert.equal(await page.getByTestId('status-clients').getAttribute('data-total'), '0');
  for (const tier of ['clients', 'hot', 'warm', 'cold', 'offsite']) {
    assert.equal(await page.getByTestId(`train-car-${tier}`).getAttribute('data-count'), '0', tier);
  }
  // the initial preset is in force and was snapshotted at first start
  assert.equal(await page.getByTestId('train-line-user_data-hot').getAttribute('data-wait-seconds'), String(7 * 86400));
  await page.getByTestId('snapshot-row').first().waitFor();
  assert.equal(await page.getByTestId('snapshot-row').count(), 1);
  // the journal already holds the catcher's first events
  await page.getByTestId('journal-list').getByTestId('journal-entry').first().waitFor();
  // the stations come from the catcher's config (STATIONS_TOML), each with its tier
  const stations = page.getByTestId('stations-table').getByTestId('station-row');
  await stations.first().waitFor();
  const listed = await stations.evaluateAll((els) =>
    els.map((e) => ({
      id: e.getAttribute('data-station-id'),
      tier: e.querySelector('[data-testid="station-tier"]')?.textContent?.trim(),
      tierClass: e.querySelector('[data-testid="station-tier"]')?.className.includes(`tier-${e.getAttribute('data-tier')}`),
      kind: e.querySelector('[data-testid="station-kind"]')?.textContent?.trim(),
      text: e.textContent,
    })),
  );
  assert.deepEqual(
    listed.map(({ id, tier, tierClass, kind }) => ({ id, tier, tierClass, kind })).sort((a, b) => a.id.localeCompare(b.id)),
    [
      { id: 'hot-nas', tier: 'Hot', tierClass: true, kind: 'local' },
      { id: 'warm-s3', tier: 'Warm', tierClass: true, kind: 's3' },
    ],
  );
  assert.match(listed.find((x) => x.id === 'hot-nas').text, /\/srv\/backup\/hot/);
  assert.match(listed.find((x) => x.id === 'warm-s3').text, /s3:\/\/edge-warm\/packages/);
  // no restore drill has run on a fresh catcher
  const drill = page.getByTestId('status-drill');
  assert.equal(await drill.getAttribute('data-passed'), 'none');
  assert.match(await drill.innerText(), /no drill yet/);
  // one catcher on SQLite: one replica, holding the lease and serving this page, on one line under
  // the status bar that opens to the table
  const replicas = page.getByTestId('catcher-replicas');
  await attrEventually(replicas, 'data-count', (v) => v === '1', 'one catcher replica listed');
  const replicasLine = replicas.getByTestId('catcher-replicas-summary');
  assert.match(await replicasLine.innerText(), /1 catcher replica · holds the lease · serving you/);
  await replicasLine.click();
  const replicaRows = replicas.getByTestId('catcher-replica-row');
  await replicaRows.first().waitFor();
  assert.equal(await replicaRows.count(), 1);
  const replicaRow = replicaRows.first();
  assert.deepEqual(
    await replicaRow.evaluate((e) => [e.dataset.lease, e.dataset.serving, e.dataset.stale]),
    ['true', 'true', 'false'],
  );
  assert.equal(await replicas.getAttribute('data-lease-holder'), await replicaRow.getAttribute('data-replica-id'));
  const replicaText = await replicaRow.innerText();
  assert.match(replicaText, /lease holder/);
  assert.match(replicaText, /serving you/);
  assert.ok(replicaText.includes(s.catcher.addr), `the replica's address ${s.catcher.addr} in: ${replicaText}`);
  assert.equal(await replicas.locator('.badge', { hasText: 'lease holder' }).count(), 1, 'one lease holder');
  assert.equal(await page.locator('[data-testid$="-error"]').count(), 0, 'no section shows an error');
  assert.deepEqual(s.consoleErrors, []);
});

test('stations: a catcher without stations says tiers advance as metadata only', T, async (t) => {
  const s = await startStack(t, { catcherConfig: '' });
  await open(s);
  const page = s.page;
  await page.getByTestId('stations-empty').waitFor();
  assert.match(await page.getByTestId('stations-empty').innerText(), /No stations configured: tiers advance as metadata only\./);
  assert.equal(await page.getByTestId('stations-table').count(), 0);
  await page.getByTestId('nav-stations').click();
  await eventually(async () => page.evaluate(() => location.hash === '#stations'), 'nav link to stations');
  assert.deepEqual(s.consoleErrors, []);
});

test('a package ingested through the agent stream appears and its progress moves live', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  await page.evaluate(() => ((window).__sameDocument = 'yes'));

  const agent = await s.agent('edge-lab-01', { label: 'Lab gateway' });
  const client = page.locator('[data-testid="client-row"][data-source-id="edge-lab-01"]');
  await attrEventually(client, 'data-connected', (v) => v === 'true', 'client row connected');

  const big = await ingest(agent, { path: 'srv/db/dump-2026-11-24.sql.zst', size: 3 * 1024 * 1024, fill: 3 });
  const row = page.locator(`[data-testid="package-row"][data-package-id="${big.id}"]`);
  await row.waitFor();
  assert.equal(await row.getAttribute('data-status'), 'pending');
  const bar = row.getByTestId('package-progress');

  await agent.progress(big.id, 12, 377_000);
  await attrEventually(bar, 'data-progress', (v) => v === '12', 'progress 12');
  assert.equal(await row.getAttribute('data-status'), 'in_progress');
  await agent.progress(big.id, 64, 2_013_000);
  await attrEventually(bar, 'data-progress', (v) => v === '64', 'progress 64');
  assert.equal(await page.evaluate(() => (window).__sameDocument), 'yes', 'no reload happened');

  // a few more packages so the overview has something to show
  const logs = await ingest(agent, { path: 'var/log/app/app-2026-11-24.log.zst', type: PackageType.APP_LOGS, size: 90_000, fill: 4 });
  await agent.progress(logs.id, 100, 90_000);
  await agent.complete(logs.id, logs.sha, logs.size, [
    { stationId: 'hot-nas', status: PlacementStatus.VERIFIED, verifiedSha256: logs.sha },
  ]);
  await ingest(agent, { path: 'home/ana/Documents/report.odt', size: 48_213, fill: 5 });
  await attrEventually(page.getByTestId('train-car-hot'), 'data-count', (v) => v === '1', 'hot car counts the completed package');
  // train lines count exactly, per type, from the catcher's counters
  await attrEventually(page.getByTestId('train-line-app_logs-hot'), 'data-count', (v) => v === '1', 'app logs line: 1 in hot');
  assert.equal(await page.getByTestId('train-line-user_data-hot').getAttribute('data-count'), '0');
  await attrEventually(page.getByTestId('status-clients'), 'data-connected', (v) => v === '1', 'status bar: 1 connected');
  await page.getByTestId('section-track').scrollIntoViewIfNeeded();
  await screenshot(page, 'dashboard-overview.png');

  // completion: status, checksum, and the copies on stations in the expanded row
  await agent.complete(big.id, big.sha, big.size, [
    { stationId: 'hot-nas', status: PlacementStatus.VERIFIED, verifiedSha256: big.sha },
    { stationId: 'warm-s3', status: PlacementStatus.FAILED, error: 'upload timed out after 30 s' },
  ]);
  await attrEventually(row, 'data-status', (v) => v === 'completed', 'completed');
  await attrEventually(bar, 'data-progress', (v) => v === '100', 'progress 100');
  assert.match(await row.getByTestId('package-checksum').getAttribute('title'), new RegExp(big.sha));

  await row.getByTestId('package-toggle').click();
  const detail = page.locator(`[data-testid="package-detail"][data-package-id="${big.id}"]`);
  await detail.waitFor();
  assert.equal(await detail.getByTestId('package-field-sha-256').innerText(), big.sha);
  assert.equal(await detail.getByTestId('package-field-path').innerText(), 'srv/db/dump-2026-11-24.sql.zst');
  await detail.locator('[data-testid="placement-row"][data-station-id="hot-nas"]').waitFor();
  assert.match(await detail.locator('[data-testid="placement-row"][data-station-id="warm-s3"]').innerText(), /upload timed out/);
  const types = await eventually(async () => {
    const v = await detail.getByTestId('journal-entry').evaluateAll((els) => els.map((e) => e.getAttribute('data-event-type')));
    return v.length >= 2 ? v : false;
  }, 'package journal entries');
  assert.ok(types.some((x) => x.includes('ingest')), `journal of the package: ${types}`);
  await page.getByTestId('section-packages').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'packages-expanded.png');
  assert.deepEqual(s.consoleErrors, []);
});

test('rules: the server rejects an edit with its message next to the field, then accepts one', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const snapshots = page.getByTestId('snapshot-row');
  await snapshots.first().waitFor();
  const before = await snapshots.count();

  await page.getByTestId('rule-tab-user_data').click();
  const hot = page.getByTestId('rule-field-user_data-hot-wait');
  await hot.fill('0');
  await page.getByTestId('rule-save-user_data').click();
  const err = page.getByTestId('rule-error-user_data-hot-wait');
  await err.waitFor();
  const message = await err.innerText();
  // exactly the catcher's words (without its field path, which the placement already says)
  assert.match(message, /at least 1 s/);
  assert.equal(await hot.getAttribute('aria-invalid'), 'true');
  assert.equal(await hot.getAttribute('aria-describedby'), await err.getAttribute('id'));
  await page.getByTestId('rule-editor-user_data').scrollIntoViewIfNeeded();
  await screenshot(page, 'rules-error.png');
  assert.equal(await snapshots.count(), before, 'a rejected edit writes no snapshot');

  await hot.fill('2');
  await page.getByTestId('rule-field-user_data-hot-wait-unit').selectOption('d');
  await page.getByTestId('rule-save-user_data').click();
  await page.getByTestId('rule-save-result-user_data').waitFor();
  assert.equal(await err.count(), 0, 'the error is gone');
  await eventually(async () => (await snapshots.count()) === before + 1, 'one more snapshot');
  await attrEventually(page.getByTestId('train-line-user_data-hot'), 'data-wait-seconds', (v) => v === String(2 * 86400), 'train line shows the new wait');
  const { snapshots: listed } = await s.api.policy.listConfigSnapshots({});
  assert.equal(listed.length, before + 1);
});

test('config snapshot restore with confirmation brings the old rules back', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const snapshots = page.getByTestId('snapshot-row');
  await snapshots.first().waitFor();

  // change the rules elsewhere (another operator): the page follows live
  const { ruleSets } = await s.api.policy.listRuleSets({});
  const user = ruleSets.find((r) => r.packageType === PackageType.USER_DATA);
  user.hot.wait.seconds = 3600n;
  await s.api.policy.updateRuleSet({ ruleSet: user, reason: 'e2e: shorter hot stay' });
  await attrEventually(page.getByTestId('train-line-user_data-hot'), 'data-wait-seconds', (v) => v === '3600', 'live rules');
  await eventually(async () => (await snapshots.count()) === 2, 'two snapshots listed');

  const first = page.locator('[data-testid="snapshot-row"][data-snapshot-id="1"]');
  await first.getByTestId('snapshot-diff-toggle').click();
  const diffRow = page.locator('[data-testid="snapshot-diff-row"][data-type="user_data"][data-field="hot"]');
  await diffRow.waitFor();
  assert.match(await diffRow.innerText(), /1 h[\s\S]*7 d/);

  await first.getByTestId('snapshot-restore').click();
  const dialog = page.getByTestId('snapshot-restore-dialog');
  await dialog.getByTestId('restore-diff').waitFor();
  // cancel first: nothing happens
  await dialog.getByTestId('confirm-cancel').click();
  assert.equal(await dialog.isVisible(), false);
  assert.equal(await page.getByTestId('train-line-user_data-hot').getAttribute('data-wait-seconds'), '3600');

  await first.getByTestId('snapshot-restore').click();
  await dialog.getByTestId('restore-diff').waitFor();
  await dialog.getByTestId('confirm-reason').fill('e2e: back to the defaults');
  await dialog.getByTestId('confirm-ok').click();
  await attrEventually(page.getByTestId('train-line-user_data-hot'), 'data-wait-seconds', (v) => v === String(7 * 86400), 'restored rules');
  await eventually(async () => (await snapshots.count()) === 3, 'the restore is itself snapshotted');
  await page.getByTestId('notice-ok').waitFor();
  const reasons = (await s.api.policy.listConfigSnapshots({})).snapshots.map((x) => x.reason);
  assert.ok(reasons.some((r) => r.includes('back to the defaults')), reasons.join(' | '));
});

test('packages table filters by status, source, type, tier and text', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const a = await s.agent('edge-a');
  const b = await s.agent('edge-b');
  const done = await ingest(a, { path: 'home/a/photos/2026/img-0001.jpg', size: 2000, fill: 1 });
  await a.complete(done.id, done.sha, done.size, [{ stationId: 'hot-nas', status: PlacementStatus.VERIFIED, verifiedSha256: done.sha }]);
  await ingest(a, { path: 'var/log/nginx/access.log.1.zst', type: PackageType.APP_LOGS, size: 3000, fill: 2 });
  const audit = await ingest(b, { path: 'var/log/audit/audit.log.zst', type: PackageType.AUDIT_LOGS, size: 5000, fill: 3 });
  await b.progress(audit.id, 30, 1500);
  const erp = await ingest(b, { path: 'opt/erp/invoices-2026-11.csv', type: PackageType.BUSINESS_DATA, size: 7000, fill: 4 });

  const table = page.getByTestId('package-table');
  const rows = page.getByTestId('package-row');
  await attrEventually(table, 'data-row-count', (v) => v === '4', 'four packages');
  const count = async () => Number(await table.getAttribute('data-row-count'));
  const ids = () => rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-package-id')));

  await page.getByTestId('filter-status').selectOption(String(PackageStatus.COMPLETED));
  await eventually(async () => (await count()) === 1, 'status filter');
  assert.deepEqual(await ids(), [done.id]);

  await page.getByTestId('filter-status').selectOption('');
  await page.getByTestId('filter-source').selectOption('edge-b');
  await eventually(async () => (await count()) === 2, 'source filter');

  await page.getByTestId('filter-type').selectOption(String(PackageType.AUDIT_LOGS));
  await eventually(async () => (await count()) === 1, 'source + type filter');
  assert.deepEqual(await ids(), [audit.id]);

  await page.getByTestId('filter-clear').click();
  await page.getByTestId('filter-tier').selectOption(String(Tier.HOT));
  await eventually(async () => (await count()) === 1, 'tier filter');
  assert.deepEqual(await ids(), [done.id]);

  await page.getByTestId('filter-clear').click();
  await page.getByTestId('filter-search').fill('INVOICES');
  await eventually(async () => (await count()) === 1, 'text search');
  assert.match(await rows.first().innerText(), /invoices-2026-11\.csv/);

  await page.getByTestId('filter-search').fill('no-such-package');
  await page.getByTestId('packages-filtered-empty').waitFor();

  // a live change enters a filtered view without reload
  await page.getByTestId('filter-search').fill('');
  await page.getByTestId('filter-status').selectOption(String(PackageStatus.IN_PROGRESS));
  await eventually(async () => (await count()) === 1, 'one in progress');
  const late = await ingest(a, { path: 'home/a/late.bin', size: 100, fill: 9 });
  await a.progress(late.id, 5, 5);
  await eventually(async () => (await count()) === 2, 'the new upload joins the filtered view');

  // sorting by size puts the largest first, then flips
  await page.getByTestId('filter-clear').click();
  await eventually(async () => (await count()) === 5, 'all five');
  await page.getByTestId('sort-size').click();
  await eventually(async () => (await ids())[0] === erp.id, 'largest first');
  assert.equal(await page.locator('[data-testid="package-table"] [aria-sort]').getAttribute('aria-sort'), 'descending');
  await page.getByTestId('sort-size').click();
  await eventually(async () => (await ids())[0] === late.id, 'smallest first after flipping');
});

test('clients: a tripped panic brake shows, and Resume sends a RESUME command to the agent', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const agent = await s.agent('edge-kiosk-7', { hostname: 'kiosk-7.shop.example' });
  await agent.safetyAlert('canary file rewritten (entropy 7.99 bits/byte)');
  const row = page.locator('[data-testid="client-row"][data-source-id="edge-kiosk-7"]');
  await attrEventually(row, 'data-safety', (v) => v === 'stopped', 'stopped for safety');
  assert.match(await row.innerText(), /canary file rewritten/);
  assert.match(await row.innerText(), /kiosk-7\.shop\.example/);

  await row.getByTestId('client-resume').click();
  const dialog = page.getByTestId('client-resume-dialog');
  await dialog.getByTestId('confirm-reason').fill('checked the device');
  await dialog.getByTestId('confirm-ok').click();
  const cmd = await agent.waitFor((m) => m.body.case === 'command' && m.body.value.kind === CommandKind.RESUME, 'RESUME command');
  await page.getByTestId('notice-ok').waitFor();
  // the agent resumes and says so; the catcher clears the brake and the page follows
  await agent.apply({ case: 'commandResult', value: { commandId: cmd.body.value.commandId, success: true, message: 'resumed' } });
  await attrEventually(row, 'data-safety', (v) => v === 'ok', 'the brake is cleared and the row follows live');
  const src = await s.api.sources.getSource({ sourceId: 'edge-kiosk-7' });
  assert.equal(src.safetyState, SafetyState.OK);
});

test('connection indicator: disconnected when the catcher dies, live again after restart', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const indicator = page.getByTestId('connection-indicator');
  const agent = await s.agent('edge-01');
  const p = await ingest(agent, { path: 'etc/hosts', size: 321, fill: 7 });
  await page.locator(`[data-testid="package-row"][data-package-id="${p.id}"]`).waitFor();
  await agent.close();

  await s.catcher.kill();
  await attrEventually(indicator, 'data-state', (v) => v === 'reconnecting' || v === 'offline', 'indicator leaves "connected"');
  // the last known state stays on screen, marked stale
  await page.getByTestId('stale-banner').waitFor();
  assert.equal(await page.locator(`[data-testid="package-row"][data-package-id="${p.id}"]`).count(), 1);

  await s.restartCatcher();
  await attrEventually(indicator, 'data-state', (v) => v === 'connected', 'live again', 40_000);
  assert.equal(await page.getByTestId('stale-banner').count(), 0);
  // and the new stream carries live changes again
  const agent2 = await s.agent('edge-01');
  const q = await ingest(agent2, { path: 'etc/fstab', size: 654, fill: 8 });
  await page.locator(`[data-testid="package-row"][data-package-id="${q.id}"]`).waitFor();
});

test('narrow screen (390x844): no sideways scrolling, sections reachable', T, async (t) => {
  const s = await startStack(t, { viewport: { width: 390, height: 844 } });
  await open(s);
  const page = s.page;
  const agent = await s.agent('edge-phone-test');
  const p = await ingest(agent, { path: 'sdcard/DCIM/Camera/IMG_2026.jpg', size: 2_400_000, fill: 2 });
  await agent.progress(p.id, 47, 1_128_000);
  await attrEventually(page.locator(`[data-testid="package-progress"][data-package-id="${p.id}"]`), 'data-progress', (v) => v === '47', 'progress');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
  await screenshot(page, 'narrow.png');
  await page.getByTestId('nav-packages').click();
  await eventually(async () => page.evaluate(() => location.hash === '#packages'), 'nav link');
});

test('100k packages: all load, the table stays windowed, sorting and search stay quick', { timeout: 300_000 }, async (t) => {
  const s = await startStack(t);
  const N = 100_000;
  const agent = await s.agent('edge-bulk');
  const types = [PackageType.USER_DATA, PackageType.APP_LOGS, PackageType.AUDIT_LOGS, PackageType.BUSINESS_DATA, PackageType.JOB_PACKAGE];
  const base = Date.now() - N;
  await agent.sendMany(
    Array.from({ length: N }, (_, i) => ({
      case: 'ingest',
      value: { packageId: uuidv7(base + i), path: `bulk/${String(i).padStart(6, '0')}.bin`, packageType: types[i % 5], sizeBytes: 0n, tool: Tool.NATIVE },
    })),
  );
  await open(s);
  const page = s.page;
  const table = page.getByTestId('package-table');
  await table.waitFor();
  // loading ~98,000 more packages into the browser asks first
  await page.getByTestId('packages-load-all').click();
  const ask = page.getByTestId('packages-load-all-dialog');
  assert.match(await ask.getByRole('heading').innerText(), /Load all 98,000 remaining packages\?/);
  await ask.getByTestId('confirm-ok').click();
  await page.getByTestId('packages-all-loaded').waitFor({ timeout: 120_000 });
  assert.equal(await table.getAttribute('data-row-count'), String(N));
  assert.equal(await page.getByTestId('packages-summary').getAttribute('data-total'), String(N));

  const scroll = await page.evaluate(async () => {
    const el = document.querySelector('[data-testid="package-table"]');
    const frames = [];
    let last = performance.now();
    for (let i = 0; i < 60; i++) {
      el.scrollTop += el.scrollHeight / 80;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    frames.sort((a, b) => a - b);
    const rows = el.querySelectorAll('[data-testid="package-row"]').length;
    el.scrollTop = 0;
    return { median: frames[30], rows };
  });
  assert.ok(scroll.rows > 0 && scroll.rows < 100, `only visible rows are in the DOM (${scroll.rows})`);
  assert.ok(scroll.median < 100, `scrolling 100k rows: median frame ${scroll.median.toFixed(1)} ms`);

  let t0 = Date.now();
  await page.getByTestId('sort-path').click();
  const firstRow = page.locator('[data-testid="package-row"][data-index="0"]');
  await eventually(async () => (await firstRow.count()) === 1 && (await firstRow.innerText()).includes('000000.bin'), 'sorted by path');
  const sortMs = Date.now() - t0;
  t0 = Date.now();
  // text search matches anywhere in the path: "bulk/0999" is 099900..099999
  await page.getByTestId('filter-search').fill('bulk/0999');
  await eventually(async () => (await table.getAttribute('data-row-count')) === '100', 'search over 100k');
  const searchMs = Date.now() - t0;
  assert.ok(sortMs < 3000 && searchMs < 3000, `sort ${sortMs} ms, search ${searchMs} ms`);
});
