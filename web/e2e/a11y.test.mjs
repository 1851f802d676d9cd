// Accessibility: axe-core (injected into the real page) finds no serious or critical violation on
// the main views, on a desktop and on a phone, with live data, an expanded package and a dialog open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { PackageType, PlacementStatus, Tool } from '../src/gen/edgebackup/v1/common_pb.js';
import { eventually, quickAlertsConfig, sha256Hex, startStack, uuidv7 } from './harness.mjs';

const T = { timeout: 180_000 };
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Serious and critical violations axe finds in the page now, one line per element. */
async function axeProblems(page, what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const res = await window.axe.run(document, {
      resultTypes: ['violations'],
      // the label must contain the visible text (WCAG 2.5.3): experimental in axe, wanted here
      rules: { 'label-content-name-mismatch': { enabled: true } },
    });
    // axe did check the page (the contrast of its text among the rest)
    if (![...res.passes, ...res.violations, ...res.incomplete].some((r) => r.id === 'color-contrast')) {
      return [{ id: 'axe-did-not-run', impact: 'critical', nodes: [] }];
    }
    return res.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1, 2).join(' ')}`) }));
  });
  return violations.map((v) => `[${what}] ${v.impact} ${v.id}\n    ${v.nodes.join('\n    ')}`);
}

async function populate(s) {
  const agent = await s.agent('edge-a11y', { hostname: 'a11y.example' });
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const id = uuidv7();
    const sha = sha256Hex(id);
    await agent.ingest({ packageId: id, path: `/home/a11y/folder-${i}`, packageType: PackageType.USER_DATA, sizeBytes: 4096n, sha256: sha, tool: Tool.NATIVE });
    if (i > 0) await agent.complete(id, sha, 4096, [{ stationId: 'hot-nas', status: PlacementStatus.VERIFIED, verifiedSha256: sha }]);
    ids.push(id);
  }
  await agent.progress(ids[0], 40, 1600);
  // two folders with recovery points (one with files no package holds yet)
  for (const [folder, unprotected] of [['/home/a11y', 0n], ['/srv/a11y', 2n]]) {
    await agent.apply({ case: 'folderSnapshot', value: { folder, takenAt: timestampNow(), last: true, entries: 0n, unprotected, packageType: PackageType.USER_DATA } });
  }
  await agent.safetyAlert('canary file rewritten');
  // an agent that went away: an open AGENT_SILENT alert within seconds
  const gone = await s.agent('edge-a11y-gone');
  await gone.close();
  return ids;
}

async function openLive(s) {
  await s.page.goto(s.pageUrl);
  await eventually(async () => (await s.page.getByTestId('connection-indicator').getAttribute('data-state')) === 'connected', 'live');
  await s.page.locator('[data-testid="client-row"][data-safety="stopped"]').waitFor();
  await s.page.getByTestId('snapshot-row').first().waitFor();
  await s.page.getByTestId('journal-list').waitFor();
  await s.page.locator('[data-testid="alert-row"][data-kind="agent_silent"]').waitFor({ timeout: 20_000 });
}

for (const [name, viewport] of [
  ['desktop', { width: 1280, height: 900 }],
  ['phone', { width: 390, height: 844 }],
]) {
  test(`axe: no serious or critical violations on the main views (${name})`, T, async (t) => {
    const s = await startStack(t, { viewport, catcherConfig: quickAlertsConfig({ silentSecs: 2 }) });
    const ids = await populate(s);
    await openLive(s);
    const page = s.page;
    const problems = [...(await axeProblems(page, 'dashboard'))];

    // an expanded package, with its contents and copies
    const row = page.locator(`[data-testid="package-row"][data-package-id="${ids[1]}"]`);
    await row.getByTestId('package-toggle').click();
    await page.locator(`[data-testid="package-detail"][data-package-id="${ids[1]}"]`).getByTestId('placement-row').first().waitFor();
    problems.push(...(await axeProblems(page, 'package expanded')));

    // the packages by tier, a snapshot's diff
    await page.getByTestId('packages-view-tiers').click();
    await page.getByTestId('package-tracking').waitFor();
    await page.getByTestId('snapshot-diff-toggle').first().click();
    await page.locator('[data-testid="snapshot-diff-same"], [data-testid="snapshot-diff"]').first().waitFor();
    problems.push(...(await axeProblems(page, 'tracking and diff')));

    // the Resume dialog
    await page.locator('[data-testid="client-row"][data-safety="stopped"]').getByTestId('client-resume').click();
    await page.getByTestId('client-resume-dialog').getByTestId('confirm-ok').waitFor();
    problems.push(...(await axeProblems(page, 'resume dialog')));
    await page.getByTestId('client-resume-dialog').getByTestId('confirm-cancel').click();

    // the alerts with the Acknowledge dialog open, and a client's folders against their RPO
    await page.getByTestId('section-alerts').scrollIntoViewIfNeeded();
    await page.locator('[data-testid="alert-row"][data-kind="agent_silent"]').getByTestId('alert-acknowledge').click();
    await page.getByTestId('alert-ack-dialog').getByTestId('confirm-reason').waitFor();
    problems.push(...(await axeProblems(page, 'acknowledge dialog')));
    await page.getByTestId('alert-ack-dialog').getByTestId('confirm-cancel').click();
    await page.getByTestId('alert-filter-state').selectOption('all');
    const client = page.locator('[data-testid="client-row"][data-source-id="edge-a11y"]');
    await client.getByTestId('client-rpo-toggle').click();
    await page.locator('[data-testid="client-rpo-detail"][data-source-id="edge-a11y"]').getByTestId('rpo-folder-row').first().waitFor();
    problems.push(...(await axeProblems(page, 'alerts and recovery points')));

    assert.deepEqual(problems, [], `axe found:\n${problems.join('\n')}`);
    assert.deepEqual(s.consoleErrors, []);
  });
}
