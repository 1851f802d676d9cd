// Browser end-to-end tests of the restore page: a real catcher, gateway and agent (which backs up a
// folder to a local station and restores it when the page asks), driven from headless Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PackageStatus } from '../src/gen/edgebackup/v1/common_pb.js';
import { EntryKind } from '../src/gen/edgebackup/v1/catalog_pb.js';
import { agentConfig, eventually, requireBinaries, screenshot, startStack } from './harness.mjs';

const T = { timeout: 240_000 };
const SOURCE = 'edge-e2e';

/** The files the agent backs up, relative to its watched folder. */
function dataFiles() {
  return {
    'docs/a.txt': Buffer.from('alpha: the one file wanted from docs\n'),
    'docs/b.txt': Buffer.from('beta: must not come back\n'),
    'docs/notes [draft].txt': Buffer.from('glob characters in a name select only that name\n'),
    'docs/sub/c.txt': Buffer.from('gamma, deeper in docs\n'),
    'photos/x.bin': randomBytes(300_000),
    'photos/2026/y.bin': randomBytes(40_000),
    'top.txt': Buffer.from('top level\n'),
  };
}

/**
 * A stack with one real agent that has backed up `files` (every file catalogued with a verified
 * copy). Returns the stack and the agent's directories.
 */
async function stackWithAgent(t, opts = {}) {
  requireBinaries(['agent']);
  const s = await startStack(t, { catcherConfig: '', catcherEnv: { CATCHER_HEARTBEAT_INTERVAL_SECS: '1' }, ...opts });
  const root = s.dir;
  const dirs = {
    data: join(root, 'data'),
    restores: join(root, 'restores'),
    state: join(root, 'agent-state'),
    station: join(root, 'stations', 'hot'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const files = dataFiles();
  for (const [rel, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(dirs.data, rel)), { recursive: true });
    writeFileSync(join(dirs.data, rel), bytes);
  }
  const config = agentConfig(join(root, 'agent.toml'), {
    sourceId: SOURCE,
    catcherUrl: s.catcher.url,
    stateDir: dirs.state,
    folder: dirs.data,
    station: dirs.station,
    restoreRoots: [dirs.restores],
  });
  const agent = await s.startAgent(config);
  t.after(() => {
    if (t.passed === false) console.error(`--- agent log (tail):\n${agent.logs().slice(-6000)}`);
  });
  // the catalog holds every file, each in a package with a verified copy
  const want = Object.keys(files);
  await eventually(
    async () => {
      const listed = await listAll(s, dirs.data);
      const filesListed = listed.filter((v) => v.entry.kind === EntryKind.FILE);
      if (!want.every((p) => filesListed.some((v) => v.entry.path === p && v.entry.packageId))) return false;
      const { packages } = await s.api.packages.listPackages({ sourceId: SOURCE, pageSize: 1000 });
      const ids = new Set(filesListed.map((v) => v.entry.packageId));
      return [...ids].every((id) => packages.some((p) => p.packageId === id && p.status === PackageStatus.COMPLETED));
    },
    `the agent's first pass catalogued and stored ${want.join(', ')} (agent log: ${agent.log})`,
    90_000,
  );
  return { s, dirs, files, agent };
}

/** Every entry of the watched folder now, walking ListFolder. */
async function listAll(s, folder, directory = '') {
  const out = [];
  let pageToken = '';
  do {
    const r = await s.api.catalog.listFolder({ sourceId: SOURCE, folder, directory, pageToken });
    out.push(...r.entries);
    pageToken = r.nextPageToken;
  } while (pageToken);
  for (const v of [...out]) if (v.entry.kind === EntryKind.DIRECTORY) out.push(...(await listAll(s, folder, v.entry.path)));
  return out;
}

async function openRestore(s) {
  const page = s.page;
  await page.goto(s.pageUrl);
  await eventually(async () => (await page.getByTestId('connection-indicator').getAttribute('data-state')) === 'connected', 'the live stream', 20_000);
  await page.getByTestId('nav-restore').click();
  await page.getByTestId('section-restore').waitFor();
  return page;
}

const entry = (page, path) => page.locator(`[data-testid="restore-entry"][data-path="${path}"]`);

/** Records every state and phase restore rows show, to see them move (no polling in the page). */
async function watchRows(page) {
  await page.evaluate(() => {
    const seen = (window.__restoreSeen = []);
    const record = () => {
      for (const el of document.querySelectorAll('[data-testid="restore-row"]')) {
        const v = `${el.getAttribute('data-command-id')}:${el.getAttribute('data-state')}:${el.getAttribute('data-phase')}`;
        if (seen.at(-1) !== v && !seen.includes(v)) seen.push(v);
      }
    };
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-phase'] });
  });
}

test('restore: browse and search a source, select a file and a folder, restore into an allowed directory, watch it succeed', T, async (t) => {
  const { s, dirs, files } = await stackWithAgent(t);
  // a source whose agent never made a pass: no catalog yet
  await s.api.sources.registerSource({ sourceId: 'edge-new', label: 'New device' });
  const page = await openRestore(s);

  const source = page.getByTestId('restore-source');
  await source.selectOption('edge-new');
  await page.getByTestId('restore-folders-empty').waitFor();
  assert.match(await page.getByTestId('restore-folders-empty').innerText(), /No catalog yet for edge-new/);

  await source.selectOption(SOURCE);
  await eventually(async () => (await page.getByTestId('restore-folder').inputValue()) === dirs.data, 'its one folder is picked');
  // the target device follows the source unless another is chosen
  assert.equal(await page.getByTestId('restore-target-source').inputValue(), SOURCE);

  // the top of the folder: kinds, sizes and modes
  await entry(page, 'docs').waitFor();
  assert.equal(await entry(page, 'docs').getAttribute('data-kind'), 'directory');
  assert.equal(await entry(page, 'top.txt').getAttribute('data-kind'), 'file');
  assert.match(await entry(page, 'top.txt').innerText(), /10 B[\s\S]*-rw-/);
  assert.equal(await entry(page, 'docs/a.txt').count(), 0, 'directories are listed when opened');

  // open docs, select a.txt
  await entry(page, 'docs').getByTestId('restore-entry-toggle').click();
  await entry(page, 'docs/a.txt').waitFor();
  assert.equal(await entry(page, 'docs/sub').getAttribute('data-kind'), 'directory');
  await entry(page, 'docs/a.txt').getByTestId('restore-entry-select').check();
  assert.equal(await entry(page, 'docs').getAttribute('data-check'), 'partial');

  // select the photos folder: everything below it is included
  await entry(page, 'photos').getByTestId('restore-entry-select').check();
  await entry(page, 'photos').getByTestId('restore-entry-toggle').click();
  await entry(page, 'photos/x.bin').waitFor();
  assert.equal(await entry(page, 'photos/x.bin').getAttribute('data-check'), 'covered');
  assert.equal(await entry(page, 'photos/x.bin').getByTestId('restore-entry-select').isDisabled(), true);

  // search for the file with glob characters in its name and select it from the results
  await page.getByTestId('restore-search').fill('D');
  await page.locator('#restore-search-hint.field-error').waitFor();
  await page.getByTestId('restore-search').fill('DRAFT');
  const match = page.locator('[data-testid="restore-search-result"][data-path="docs/notes [draft].txt"]');
  await match.waitFor({ timeout: 15_000 });
  assert.equal(await page.getByTestId('restore-search-result').count(), 1);
  await match.getByTestId('restore-search-select').check();
  assert.equal(await entry(page, 'docs/notes [draft].txt').getAttribute('data-check'), 'selected', 'the tree shows a selection made in the search');

  const count = page.getByTestId('restore-selected-count');
  assert.equal(await count.getAttribute('data-count'), '3');
  assert.match(await count.innerText(), /3 selected/);

  // the target directory is checked here first (the agent decides for real)
  const dir = page.getByTestId('restore-target-dir');
  await dir.fill('restores/r1');
  await page.getByTestId('restore-submit').click();
  assert.match(await page.getByTestId('restore-target-dir-error').innerText(), /"restores\/r1" is not absolute/);
  assert.equal(await dir.getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByTestId('restore-row').count(), 0, 'nothing was sent');

  const r1 = join(dirs.restores, 'r1');
  await dir.fill(r1);
  assert.equal(await page.getByTestId('restore-target-dir-error').count(), 0);
  assert.equal(await page.getByTestId('restore-landing').innerText(), `${r1}${dirs.data}/…`);
  await page.getByTestId('restore-submit').click();
  await page.getByTestId('notice-ok').waitFor();

  const row = page.locator('[data-testid="restore-row"][data-mine="true"]');
  await row.waitFor();
  await eventually(async () => (await row.getAttribute('data-state')) === 'succeeded', 'the restore to succeed', 90_000).catch(async (e) => {
    throw new Error(`${e.message}; row: ${await row.innerText()}`);
  });
  const result = row.getByTestId('restore-result');
  assert.equal(await result.getAttribute('data-files'), '4', await row.innerText());
  assert.equal(await result.getAttribute('data-skipped'), '0');
  assert.equal(await result.getAttribute('data-damaged'), '0');
  const bytes = ['docs/a.txt', 'docs/notes [draft].txt', 'photos/x.bin', 'photos/2026/y.bin'].reduce((n, p) => n + files[p].length, 0);
  assert.equal(await result.getAttribute('data-bytes'), String(bytes));
  assert.equal(await row.getByTestId('restore-progress-files').getAttribute('data-progress'), '100');
  assert.deepEqual(
    await row.getByTestId('restore-path').evaluateAll((els) => els.map((e) => e.textContent)),
    ['docs/a.txt', 'docs/notes \\[draft\\].txt', 'photos'],
    'the globs sent: files as their paths (glob characters escaped), the folder as its path',
  );
  assert.match(await row.innerText(), /Restored 4 files/);
  await row.scrollIntoViewIfNeeded();
  await screenshot(page, 'restore.png', { fullPage: false });

  // on disk: the selected files, byte for byte, and nothing else
  const landed = join(r1, dirs.data);
  for (const p of ['docs/a.txt', 'docs/notes [draft].txt', 'photos/x.bin', 'photos/2026/y.bin']) {
    assert.ok(existsSync(join(landed, p)), `${p} restored`);
    assert.ok(readFileSync(join(landed, p)).equals(files[p]), `${p} has the same contents`);
  }
  for (const p of ['docs/b.txt', 'docs/sub/c.txt', 'top.txt']) assert.equal(existsSync(join(landed, p)), false, `${p} was not selected`);

  // a directory outside the agent's restore_roots: the catcher passes it on, the agent refuses, with its words
  const outside = join(s.dir, 'elsewhere');
  await dir.fill(outside);
  await page.getByTestId('restore-submit').click();
  const refused = page.locator('[data-testid="restore-row"][data-mine="true"][data-state="failed"]');
  await refused.waitFor({ timeout: 60_000 });
  const message = await refused.getByTestId('restore-message').innerText();
  assert.match(message, /outside this agent's restore_roots/);
  assert.ok(message.includes(dirs.restores), message);
  const fieldError = page.getByTestId('restore-target-dir-error');
  await fieldError.waitFor();
  assert.match(await fieldError.innerText(), new RegExp(`${SOURCE} refused it: .*outside this agent's restore_roots`));
  assert.equal(existsSync(outside), false, 'nothing was written outside the roots');
  // editing the directory clears the agent's verdict from the field
  await dir.fill(join(dirs.restores, 'r2'));
  assert.equal(await fieldError.count(), 0);

  // another device restores this source's data: queued while it is offline, then done live
  // once its agent connects
  await page.getByTestId('restore-target-source').selectOption('edge-new');
  await page.getByTestId('restore-target-offline').waitFor();
  const other = { restores: join(s.dir, 'new-restores'), data: join(s.dir, 'new-data') };
  for (const d of Object.values(other)) mkdirSync(d, { recursive: true });
  const into = join(other.restores, 'from-e2e');
  await dir.fill(into);
  await watchRows(page);
  await page.getByTestId('restore-submit').click();
  const queued = page.locator('[data-testid="restore-row"][data-mine="true"][data-state="pending"]');
  await queued.waitFor();
  assert.match(await queued.getByTestId('restore-state').innerText(), /queued/);
  assert.equal(await queued.getByTestId('restore-target').innerText(), into);
  const id = await queued.getAttribute('data-command-id');
  await s.startAgent(
    agentConfig(join(s.dir, 'new.toml'), {
      sourceId: 'edge-new',
      catcherUrl: s.catcher.url,
      stateDir: join(s.dir, 'new-state'),
      folder: other.data,
      station: dirs.station,
      restoreRoots: [other.restores],
    }),
  );
  const moved = page.locator(`[data-testid="restore-row"][data-command-id="${id}"]`);
  await eventually(async () => (await moved.getAttribute('data-state')) === 'succeeded', 'the queued restore to run on the other device', 90_000).catch(async (e) => {
    throw new Error(`${e.message}; row: ${await moved.innerText()}`);
  });
  const seen = await page.evaluate((cid) => window.__restoreSeen.filter((v) => v.startsWith(cid)), id);
  assert.equal(seen[0], `${id}:pending:`, `the row followed the restore live: ${seen.join(' ')}`);
  assert.equal(await moved.getByTestId('restore-result').getAttribute('data-files'), '4');
  for (const p of ['docs/a.txt', 'docs/notes [draft].txt', 'photos/x.bin', 'photos/2026/y.bin']) {
    assert.ok(readFileSync(join(into, dirs.data, p)).equals(files[p]), `${p} restored on the other device`);
  }
  assert.equal(existsSync(join(into, dirs.data, 'top.txt')), false);
  assert.deepEqual(s.consoleErrors, []);
});

test('restore on a phone (390x844): an older moment, a deleted file found by search, no sideways scrolling, tap targets of 24 px', T, async (t) => {
  const { s, dirs, files } = await stackWithAgent(t, { viewport: { width: 390, height: 844 } });
  // a moment after the first pass (the field has whole seconds), then a change and a deletion
  // after it; the restore of that moment brings the old contents and the deleted file back
  const moment = Date.now() + 1000;
  await new Promise((r) => setTimeout(r, 2500));
  writeFileSync(join(dirs.data, 'top.txt'), 'changed later\n');
  rmSync(join(dirs.data, 'docs/b.txt'));
  await eventually(
    async () => {
      const { entries } = await s.api.catalog.listFolder({ sourceId: SOURCE, folder: dirs.data });
      const top = entries.find((v) => v.entry.path === 'top.txt');
      const docs = await s.api.catalog.listFolder({ sourceId: SOURCE, folder: dirs.data, directory: 'docs' });
      return top && top.entry.sizeBytes === 14n && top.entry.packageId && !docs.entries.some((v) => v.entry.path === 'docs/b.txt');
    },
    'the change and the deletion catalogued',
    60_000,
  );
  const page = await openRestore(s);
  await entry(page, 'top.txt').waitFor();
  assert.match(await entry(page, 'top.txt').innerText(), /14 B/);

  // a deleted file is found only when asked for, and selectable only at a moment that holds it
  await page.getByTestId('restore-search').fill('b.txt');
  await page.getByTestId('restore-search-empty').waitFor();
  await page.getByTestId('restore-search-deleted').check();
  const gone = page.locator('[data-testid="restore-search-result"][data-path="docs/b.txt"]');
  await gone.waitFor();
  assert.equal(await gone.getAttribute('data-deleted'), 'true');
  assert.equal(await gone.getByTestId('restore-search-select').isDisabled(), true, 'not at the latest moment');
  await gone.getByTestId('restore-search-before-deletion').click();
  assert.equal(await page.getByTestId('restore-moment-at').isChecked(), true);
  await gone.getByTestId('restore-search-select').check();
  assert.equal(await gone.getAttribute('data-check'), 'selected');

  // the moment: local time in the field, UTC beside it
  await page.getByTestId('restore-moment-at').check();
  const local = new Date(moment);
  const pad = (n) => String(n).padStart(2, '0');
  const value = `${local.getFullYear()}-${pad(local.getMonth() + 1)}-${pad(local.getDate())}T${pad(local.getHours())}:${pad(local.getMinutes())}:${pad(local.getSeconds())}`;
  await page.getByTestId('restore-moment').fill(value);
  assert.match(await page.getByTestId('restore-moment-help').innerText(), new RegExp(`${new Date(Math.floor(moment / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC`));
  await eventually(async () => /10 B/.test(await entry(page, 'top.txt').innerText()), 'the tree shows the earlier version', 15_000);

  await entry(page, 'top.txt').getByTestId('restore-entry-select').check();
  await page.getByTestId('restore-target-dir').fill(join(dirs.restores, 'phone'));

  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
  const small = await page.getByTestId('section-restore').evaluate((section) => {
    const targets = section.querySelectorAll('button, select, input:not([type="checkbox"]):not([type="radio"]), label:has(> input[type="checkbox"]), label:has(> input[type="radio"]), summary');
    const out = [];
    for (const el of targets) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue; // not rendered (closed details, hidden)
      if (r.height < 24 || r.width < 24) out.push(`${el.tagName.toLowerCase()}[${el.getAttribute('data-testid') ?? el.textContent?.trim().slice(0, 30)}] ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
    return out;
  });
  assert.deepEqual(small, [], 'tap targets under 24 px');
  await page.getByTestId('section-restore').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await screenshot(page, 'restore-narrow.png');

  await page.getByTestId('restore-submit').click();
  const row = page.locator('[data-testid="restore-row"][data-mine="true"]');
  await row.waitFor();
  await eventually(async () => (await row.getAttribute('data-state')) === 'succeeded', 'the restore to succeed', 90_000).catch(async (e) => {
    throw new Error(`${e.message}; row: ${await row.innerText()}`);
  });
  assert.equal(await row.getByTestId('restore-result').getAttribute('data-files'), '2');
  const landed = join(dirs.restores, 'phone', dirs.data);
  assert.ok(readFileSync(join(landed, 'top.txt')).equals(files['top.txt']), 'the earlier contents came back');
  assert.ok(readFileSync(join(landed, 'docs/b.txt')).equals(files['docs/b.txt']), 'the deleted file came back');
  assert.equal(existsSync(join(landed, 'docs/a.txt')), false);
  const overflowAfter = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflowAfter <= 0, `with a restore listed the page scrolls sideways by ${overflowAfter}px`);
  assert.deepEqual(s.consoleErrors, []);
});
