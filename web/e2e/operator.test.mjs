// Browser end-to-end tests of "the operator's day" (issue 20): telling packages apart and looking
// inside them, searching the catcher, paging that always makes progress, the panic brake's Resume
// feedback, the outage display, clients at scale, the phone layout and stale feedback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { DurationSchema, timestampNow } from '@bufbuild/protobuf/wkt';
import { PackageType, PlacementStatus, Tool } from '../src/gen/edgebackup/v1/common_pb.js';
import { SafetyTrigger } from '../src/gen/edgebackup/v1/agent_pb.js';
import { CommandKind } from '../src/gen/edgebackup/v1/commands_pb.js';
import { ManifestEntrySchema } from '../src/gen/edgebackup/v1/common_pb.js';
import { attrEventually, eventually, openDashboard as open, screenshot, sha256Hex, startStack, textEventually, uuidv7 } from './harness.mjs';

const T = { timeout: 180_000 };

/**
 * A package of `files` ({path, size}); unless `complete` is false it completes with a verified copy
 * on hot-nas and its manifest (an agent reports the files with Complete).
 */
async function packageWithFiles(agent, path, files, { id = uuidv7(), complete = true } = {}) {
  const sha = sha256Hex(`${id}${path}`);
  const size = files.reduce((n, f) => n + f.size, 0);
  await agent.ingest({ packageId: id, path, packageType: PackageType.USER_DATA, sizeBytes: BigInt(size), sha256: sha, tool: Tool.NATIVE });
  if (complete) {
    const manifest = files.map((f) => create(ManifestEntrySchema, { path: f.path, sizeBytes: BigInt(f.size), sha256: sha256Hex(f.path), modifiedAt: timestampNow() }));
    const placements = [{ stationId: 'hot-nas', status: PlacementStatus.VERIFIED, verifiedSha256: sha }];
    await agent.apply({ case: 'complete', value: { packageId: id, sha256: sha, sizeBytes: BigInt(size), placements, manifest } });
  }
  return { id, sha, size };
}

test('packages: id and file count columns, the contents of a package, and tracking per tier', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const agent = await s.agent('edge-office');
  // every package of a watched folder has the folder as its path: the id and the count tell them apart
  const files = Array.from({ length: 120 }, (_, i) => ({ path: `docs/report-${String(i).padStart(3, '0')}.odt`, size: 1000 + i }));
  files.push({ path: 'photos/2026/beach.jpg', size: 250_000 });
  const a = await packageWithFiles(agent, '/home/ana', files);
  const b = await packageWithFiles(agent, '/home/ana', [{ path: 'notes.txt', size: 12 }], { complete: false });
  const rowA = page.locator(`[data-testid="package-row"][data-package-id="${a.id}"]`);
  const rowB = page.locator(`[data-testid="package-row"][data-package-id="${b.id}"]`);
  await rowA.waitFor();
  await rowB.waitFor();
  assert.equal(await rowA.getByTestId('package-short-id').innerText(), a.id.slice(0, 13));
  assert.equal(await rowA.getByTestId('package-short-id').getAttribute('title'), a.id);
  // Watch deltas carry no file count ("—"); a listing of the catcher (here: a search) brings it,
  // and later deltas keep it
  assert.equal(await rowA.getByTestId('package-file-count').innerText(), '—');
  await page.getByTestId('filter-search').fill('/home/ana');
  await attrEventually(rowA.getByTestId('package-file-count'), 'data-files', (v) => v === '121', 'file count of a from the search');
  // a package still on its way has reported no files yet
  assert.equal(await rowB.getByTestId('package-file-count').innerText(), '—');
  await page.getByTestId('filter-clear').click();
  // the age fits its column
  const clipped = await rowA.locator('.c-age').evaluate((el) => el.scrollWidth > el.clientWidth);
  assert.equal(clipped, false, 'the age is not clipped');

  // what is inside: the count, the first files, and a filter over the manifest
  await rowA.getByTestId('package-toggle').click();
  const detail = page.locator(`[data-testid="package-detail"][data-package-id="${a.id}"]`);
  const contents = detail.getByTestId('package-contents');
  await contents.getByTestId('package-contents-table').waitFor();
  assert.match(await contents.getByTestId('package-contents-count').innerText(), /^121 entries/);
  assert.equal(await contents.getByTestId('package-contents-row').count(), 50, 'the first 50 files');
  await contents.getByTestId('package-contents-more').click();
  assert.equal(await contents.getByTestId('package-contents-row').count(), 121);
  await contents.getByTestId('package-contents-filter').fill('beach');
  await eventually(async () => (await contents.getByTestId('package-contents-row').count()) === 1, 'the filter finds one file');
  assert.equal(await contents.getByTestId('package-contents-row').getAttribute('data-path'), 'photos/2026/beach.jpg');
  assert.match(await contents.getByTestId('package-contents-count').innerText(), /121 entries · 1 matching/);
  await page.getByTestId('section-packages').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'packages-contents.png');

  // package tracking: name · source · age · size per tier
  await page.getByTestId('packages-view-tiers').click();
  const hot = page.getByTestId('tracking-tier-hot');
  await attrEventually(hot, 'data-count', (v) => v === '1', 'one package in hot');
  assert.equal(await page.getByTestId('tracking-tier-clients').getAttribute('data-count'), '1');
  const item = hot.locator(`[data-testid="tracking-item"][data-package-id="${a.id}"]`);
  assert.match(await item.innerText(), /ana[\s\S]*edge-office · (just now|\d+ s ago) · \d+ KiB/);
  await screenshot(page, 'packages-by-tier.png');
  // a tracked package opens in the table
  await item.getByRole('button').click();
  await page.locator(`[data-testid="package-detail"][data-package-id="${a.id}"]`).waitFor();
  assert.deepEqual(s.consoleErrors, []);
});

test('packages: search asks the catcher, and Load older always brings older packages', T, async (t) => {
  const s = await startStack(t);
  const agent = await s.agent('edge-bulk');
  // 2,600 packages: the snapshot brings the newest 2,000, the rest only when asked
  const N = 2600;
  const base = Date.now() - N * 10;
  const ids = Array.from({ length: N }, (_, i) => uuidv7(base + i * 10));
  await agent.sendMany(
    ids.map((id, i) => ({
      case: 'ingest',
      value: { packageId: id, path: `bulk/${String(i).padStart(5, '0')}.bin`, packageType: PackageType.USER_DATA, sizeBytes: 10n, sha256: sha256Hex(id), tool: Tool.NATIVE },
    })),
  );
  await open(s);
  const page = s.page;
  const summary = page.getByTestId('packages-summary');
  await attrEventually(summary, 'data-loaded', (v) => v === '2000', 'the snapshot holds 2000');

  // an old package, pasted by id, is found on the catcher though not loaded
  const oldest = ids[3];
  assert.equal(await page.locator(`[data-testid="package-row"][data-package-id="${oldest}"]`).count(), 0);
  await page.getByTestId('filter-search').fill(oldest);
  await page.locator(`[data-testid="package-row"][data-package-id="${oldest}"]`).waitFor();
  // by checksum prefix, and by a part of the path
  await page.getByTestId('filter-search').fill(sha256Hex(ids[7]).slice(0, 16));
  await page.locator(`[data-testid="package-row"][data-package-id="${ids[7]}"]`).waitFor();
  await page.getByTestId('filter-search').fill('bulk/00011');
  await page.locator(`[data-testid="package-row"][data-package-id="${ids[11]}"]`).waitFor();
  await page.getByTestId('filter-clear').click();

  // Load older: every click brings packages the page did not hold (no re-fetch of the newest page)
  const loaded = async () => Number(await summary.getAttribute('data-loaded'));
  const before = await loaded();
  await page.getByTestId('packages-load-more').click();
  await eventually(async () => (await loaded()) > before, 'a click on Load older adds packages');
  const after = await loaded();
  assert.equal(after, N, `the first click loads the rest (${before} -> ${after})`);
  await page.getByTestId('packages-all-loaded').waitFor();
  assert.deepEqual(s.consoleErrors, []);
});

test('clients: Resume follows the real state and says at once when the brake trips again', T, async (t) => {
  const s = await startStack(t);
  await open(s, '#clients');
  const page = s.page;
  const agent = await s.agent('edge-kiosk-7', { hostname: 'kiosk-7.shop.example' });
  const trip = (reason, trigger, measurements) => agent.apply({ case: 'safetyAlert', value: { reason, trigger, measurements } });
  await trip('412 files changed within a minute (limit 300)', SafetyTrigger.CHANGE_RATE, { windowSecs: 60, changed: 412, removed: 3 });
  const row = page.locator('[data-testid="client-row"][data-source-id="edge-kiosk-7"]');
  await attrEventually(row, 'data-safety', (v) => v === 'stopped', 'stopped for safety');
  // the trip's measurements and what to fix first
  await textEventually(row.getByTestId('client-trip-measured'), (v) => /412 files changed · 3 files removed within 1 min/.test(v), 'measurements');
  assert.match(await row.getByTestId('client-trip-fix').innerText(), /Stop whatever is still changing files/);

  await row.getByTestId('client-resume').click();
  const dialog = page.getByTestId('client-resume-dialog');
  await dialog.getByTestId('confirm-reason').fill('checked the kiosk');
  await dialog.getByTestId('confirm-ok').click();
  const cmd = await agent.waitFor((m) => m.body.case === 'command' && m.body.value.kind === CommandKind.RESUME, 'RESUME command');
  // waiting for the agent: the real state, not a fixed "queued"
  await attrEventually(row.getByTestId('client-resume-state'), 'data-phase', (v) => v === 'waiting', 'waiting for the agent');
  assert.equal(await row.getByTestId('client-resume').isDisabled(), true, 'no second resume while one is on its way');

  // the agent resumes, then its pass trips the brake again (the burst goes on)
  await agent.apply({ case: 'commandResult', value: { commandId: cmd.body.value.commandId, success: true, message: 'resumed; a backup pass follows' } });
  await attrEventually(row, 'data-safety', (v) => v === 'ok', 'resumed');
  assert.equal(await row.getByTestId('client-resume-state').getAttribute('data-phase'), 'resumed');
  await trip('377 files changed within a minute (limit 300)', SafetyTrigger.CHANGE_RATE, { windowSecs: 60, changed: 377 });
  await attrEventually(row, 'data-safety', (v) => v === 'stopped', 'stopped again');
  const again = await textEventually(row.getByTestId('client-resume-state'), (v) => /tripped again/.test(v), 'tripped again');
  assert.match(again, /The brake tripped again .*after the resume: 377 files changed within a minute/);
  assert.match(await row.getByTestId('client-trip-fix').innerText(), /Stop whatever is still changing files/);
  assert.equal(await row.getByTestId('client-resume').innerText(), 'Resume again…');

  // the journal reads the command lines
  await page.getByTestId('journal-filter-type').selectOption({ label: 'command finished' });
  const line = page.getByTestId('journal-list').locator('[data-event-type="command.finished"]').first();
  await textEventually(line.getByTestId('journal-summary'), (v) => /^Resume command [0-9a-f-]{13} succeeded$/.test(v), 'readable command line');
  assert.deepEqual(s.consoleErrors, []);
});

test('outage: the banner names the hop that is down, the catcher clock stops, stale data is dimmed', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  const chip = page.getByTestId('status-catcher');
  await textEventually(chip, (v) => / up /.test(v), 'the catcher chip shows its uptime');
  assert.equal(await page.getByTestId('main-stale').count(), 0);
  await s.catcher.kill();
  const banner = page.getByTestId('stale-banner');
  await attrEventually(banner, 'data-hop', (v) => v === 'catcher', 'the banner blames the catcher hop', 20_000);
  assert.match(await banner.getByTestId('outage-hop').innerText(), /The gateway is up, but the catcher at \S+ cannot be reached from it/);
  assert.equal(await chip.getAttribute('data-state'), 'down');
  const first = await chip.innerText();
  assert.doesNotMatch(first, / up /, 'no uptime while down');
  assert.match(first, /unreachable from the gateway since/);
  await page.waitForTimeout(2200);
  assert.equal(await chip.innerText(), first, 'the catcher chip does not tick while down');
  assert.equal(await page.locator('main').getAttribute('data-stale'), 'true');
  const opacity = await page.getByTestId('section-packages').evaluate((el) => Number(getComputedStyle(el).opacity));
  assert.ok(opacity < 1, `stale sections are dimmed (opacity ${opacity})`);
  await screenshot(page, 'outage.png');

  await s.restartCatcher();
  await attrEventually(page.getByTestId('connection-indicator'), 'data-state', (v) => v === 'connected', 'live again', 40_000);
  assert.equal(await banner.count(), 0);
  assert.equal(await chip.getAttribute('data-state'), 'up');
  assert.equal(await page.locator('main').getAttribute('data-stale'), 'false');
});

test('clients at scale: 1,000 clients are paged and filtered by state, safety and name', T, async (t) => {
  const s = await startStack(t);
  await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      s.api.sources.registerSource({ sourceId: `edge-${String(i).padStart(4, '0')}`, label: i === 777 ? 'Lobby kiosk' : '' }),
    ),
  );
  const kiosk = await s.agent('edge-0042');
  await kiosk.safetyAlert('canary file rewritten');
  await open(s, '#clients');
  const page = s.page;
  const summary = page.getByTestId('clients-summary');
  await attrEventually(summary, 'data-total', (v) => v === '1000', 'all clients known');
  const rows = page.getByTestId('client-row');
  assert.equal(await rows.count(), 50, 'one page of 50, not a 1,000-row table');
  // the stopped one first
  await attrEventually(rows.first(), 'data-source-id', (v) => v === 'edge-0042', 'stopped first');
  assert.match(await page.getByTestId('clients-range').innerText(), /1–50 of 1,000/);
  await page.getByTestId('clients-next').click();
  await textEventually(page.getByTestId('clients-range'), (v) => /51–100 of 1,000/.test(v), 'page 2');

  await page.getByTestId('client-filter-safety').selectOption('stopped');
  await eventually(async () => (await rows.count()) === 1, 'one stopped');
  await page.getByTestId('client-filter-safety').selectOption('');
  await page.getByTestId('client-filter-connection').selectOption('connected');
  await eventually(async () => (await rows.count()) === 1, 'one connected');
  await page.getByTestId('client-filter-connection').selectOption('');
  await page.getByTestId('client-filter-search').fill('lobby');
  await eventually(async () => (await rows.count()) === 1, 'found by label');
  assert.equal(await rows.first().getAttribute('data-source-id'), 'edge-0777');
  assert.equal(await page.getByTestId('clients-pager').count(), 0, 'no pager for one row');
  assert.deepEqual(s.consoleErrors, []);
});

/** Interactive elements of the main sections smaller than 24×24 px (a label around one counts). */
function smallTargets(page) {
  return page.evaluate(() => {
    const sel = 'a[href], button, input, select, textarea, summary, [role="tab"], [tabindex]:not([tabindex="-1"])';
    const out = [];
    for (const el of document.querySelectorAll(`main ${sel}, header ${sel}`)) {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || style.visibility === 'hidden' || r.right <= 0) continue;
      if (el.closest('[hidden], .sr-only')) continue;
      let box = r;
      const label = el.closest('label');
      if (label) box = label.getBoundingClientRect();
      if (box.width < 24 || box.height < 24) out.push(`${el.tagName.toLowerCase()}[${el.getAttribute('type') ?? ''}][${el.getAttribute('data-testid') ?? ''}].${el.className} "${(el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 30)}" ${Math.round(box.width)}×${Math.round(box.height)}`);
    }
    return out;
  });
}

test('phone (390×844): cards with Resume and Diff/Restore in reach, readable journal, nav cue, 24 px targets', T, async (t) => {
  const s = await startStack(t, { viewport: { width: 390, height: 844 } });
  await open(s);
  const page = s.page;
  const agent = await s.agent('edge-phone-with-a-long-source-name');
  await agent.safetyAlert('canary file rewritten');
  await packageWithFiles(agent, '/sdcard/DCIM', [{ path: 'IMG_1.jpg', size: 2_000_000 }]);
  const row = page.locator('[data-testid="client-row"][data-source-id="edge-phone-with-a-long-source-name"]');
  await attrEventually(row, 'data-safety', (v) => v === 'stopped', 'stopped');

  // Resume is on screen without sideways scrolling
  const inView = (loc) => loc.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.left >= 0 && r.right <= window.innerWidth;
  });
  await row.getByTestId('client-resume').scrollIntoViewIfNeeded();
  assert.equal(await inView(row.getByTestId('client-resume')), true, 'Resume within the screen');
  const snap = page.getByTestId('snapshot-row').first();
  await snap.waitFor();
  await snap.scrollIntoViewIfNeeded();
  assert.equal(await inView(snap.getByTestId('snapshot-diff-toggle')), true, 'Diff within the screen');
  assert.equal(await inView(snap.getByTestId('snapshot-restore')), true, 'Restore within the screen');
  for (const id of ['clients-table', 'snapshots-table']) {
    const sideways = await page.getByTestId(id).evaluate((el) => el.parentElement.scrollWidth - el.parentElement.clientWidth);
    assert.ok(sideways <= 0, `${id} scrolls sideways by ${sideways}px`);
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);

  // journal badges do not overlap the actor
  const entries = page.getByTestId('journal-list').getByTestId('journal-entry');
  await entries.first().waitFor();
  const overlaps = await entries.evaluateAll((els) =>
    els.slice(0, 30).filter((li) => {
      const a = li.querySelector('.badge')?.getBoundingClientRect();
      const b = li.querySelector('.actor')?.getBoundingClientRect();
      if (!a || !b || b.width === 0) return false;
      return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    }).length,
  );
  assert.equal(overlaps, 0, 'journal badges overlap their actor');

  // the nav shows that it hides sections, and its arrow scrolls there
  await page.evaluate(() => window.scrollTo(0, 0));
  const nav = page.getByTestId('nav');
  await attrEventually(nav, 'data-more-right', (v) => v === 'true', 'a cue for hidden sections');
  await page.getByTestId('nav-more-right').click();
  await attrEventually(nav, 'data-more-left', (v) => v === 'true', 'scrolled: earlier ones hidden now');

  // tap targets
  await page.getByTestId('section-clients').scrollIntoViewIfNeeded();
  const small = await smallTargets(page);
  assert.deepEqual(small, [], `interactive elements smaller than 24×24 px:\n${small.join('\n')}`);
  await screenshot(page, 'narrow-clients.png', { fullPage: false });
  assert.deepEqual(s.consoleErrors, []);
});

test('stale feedback: a save note clears when rules change, the chain check follows new events, the nav marks Snapshots', T, async (t) => {
  const s = await startStack(t);
  await open(s);
  const page = s.page;
  // the first car is the packages on the way, not a second client count
  const car = page.getByTestId('train-car-clients');
  assert.match(await car.innerText(), /^On the way/i);
  assert.doesNotMatch(await car.innerText(), /^clients/i);

  // "Saved as config snapshot #N" holds until the rules change otherwise
  await page.getByTestId('rule-tab-user_data').click();
  await page.getByTestId('rule-field-user_data-hot-wait').fill('3');
  await page.getByTestId('rule-save-user_data').click();
  const result = page.getByTestId('rule-save-result-user_data');
  await textEventually(result, (v) => /Saved as config snapshot #\d+; \d+ packages? re-planned/.test(v), 'saved note');
  await page.waitForTimeout(500);
  assert.equal(await result.count(), 1, 'the save note stays while the rules are as saved');
  const { presets } = await s.api.policy.listPresets({});
  const other = presets.find((p) => p.name !== 'demo') ?? presets[0];
  await s.api.policy.applyPreset({ name: other.name, reason: 'e2e: another operator applies a preset' });
  await eventually(async () => (await result.count()) === 0, 'the save note clears when a preset is applied');

  // consistent waits: a 1095-day stop reads "3 y" in the lines and "3 years" in the editor
  const { ruleSets } = await s.api.policy.listRuleSets({});
  const user = ruleSets.find((r) => r.packageType === PackageType.USER_DATA);
  user.offsite = { ...user.offsite, enabled: true, neverDelete: false, wait: create(DurationSchema, { seconds: 1095n * 86400n }) };
  await s.api.policy.updateRuleSet({ ruleSet: user, reason: 'e2e: three years offsite' });
  await textEventually(page.getByTestId('train-line-user_data-offsite'), (v) => /3 y/.test(v), 'train line says 3 y');
  await attrEventually(page.getByTestId('rule-field-user_data-offsite-wait'), 'value', (v) => v === '3', 'editor value 3', 15_000).catch(async () => {
    assert.equal(await page.getByTestId('rule-field-user_data-offsite-wait').inputValue(), '3');
  });
  assert.equal(await page.getByTestId('rule-field-user_data-offsite-wait-unit').inputValue(), 'y');

  // the chain check is refreshed by new events
  await page.getByTestId('journal-verify').click();
  const verified = page.getByTestId('journal-verify-result');
  await attrEventually(verified, 'data-ok', (v) => v === 'true', 'chain intact');
  assert.match(await verified.innerText(), /chain intact \(\d+ events\)/);
  const agent = await s.agent('edge-new');
  await packageWithFiles(agent, '/srv', [{ path: 'a', size: 1 }], { complete: false });
  await attrEventually(verified, 'data-ok', (v) => v === 'stale', 'the check says newer events are not checked');
  assert.match(await verified.innerText(), /intact up to #\d+; \d+ newer events? not checked yet/);

  // the Snapshots section, at the bottom, is the one the nav marks
  await page.getByTestId('nav-snapshots').click();
  await attrEventually(page.getByTestId('nav-snapshots'), 'aria-current', (v) => v === 'location', 'Snapshots marked').catch(async (e) => {
    const state = await page.evaluate(() => ({
      hash: location.hash,
      y: window.scrollY,
      h: document.documentElement.scrollHeight,
      vh: window.innerHeight,
      current: document.querySelector('nav [aria-current]')?.getAttribute('data-testid'),
      tops: [...document.querySelectorAll('main > section')].map((el) => `${el.id}:${Math.round(el.getBoundingClientRect().top)}`),
    }));
    throw new Error(`${e.message} ${JSON.stringify(state)}`);
  });
  assert.equal(await page.getByTestId('nav-journal').getAttribute('aria-current'), null);

  // the journal's type list and text search
  const types = await page.getByTestId('journal-filter-type').locator('option').count();
  assert.ok(types > 40, `every journal event type is offered (${types})`);
  await page.getByTestId('journal-filter-search').fill('rules');
  await eventually(
    async () => {
      const t2 = await page.getByTestId('journal-list').getByTestId('journal-entry').evaluateAll((els) => els.map((e) => e.getAttribute('data-event-type')));
      return t2.length > 0 && t2.every((x) => x.startsWith('rules.') || x.startsWith('config.') || x.startsWith('pending_change'));
    },
    'text search finds the rules events',
  );

  // a snapshot taken now, with a label
  await page.getByTestId('snapshot-take-label').fill('before the audit');
  await page.getByTestId('snapshot-take-now').click();
  await page.locator('[data-testid="snapshot-row"]').filter({ hasText: 'before the audit' }).waitFor();
  // settings in one place
  assert.match(await page.getByTestId('settings-protection-delay').innerText(), /none/);
  assert.match(await page.getByTestId('settings-presets').innerText(), new RegExp(other.name));
  assert.deepEqual(s.consoleErrors, []);
});
