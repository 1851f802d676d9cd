import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { drillView } from './drill';
import { RestoreDrillSummarySchema } from './pb';

describe('drillView', () => {
  const now = 1_700_000_000_000;

  it('says so when no drill finished yet', () => {
    expect(drillView(undefined, now)).toMatchObject({ passed: 'none', text: 'no drill yet' });
  });

  it('summarises a passed drill with its age, tier and package count', () => {
    const d = create(RestoreDrillSummarySchema, {
      finishedAt: timestampFromMs(now - 2 * 60_000),
      passed: true,
      tier: 'offsite',
      packagesChecked: 3n,
      sourceId: 'edge-01',
      message: '3 packages restored intact',
    });
    const v = drillView(d, now);
    expect(v.passed).toBe('true');
    expect(v.text).toBe('passed 2 min ago (offsite, 3 packages)');
    expect(v.title).toContain('edge-01');
  });

  it('uses the singular and omits an empty tier', () => {
    const d = create(RestoreDrillSummarySchema, { finishedAt: timestampFromMs(now - 45_000), passed: true, packagesChecked: 1n });
    expect(drillView(d, now).text).toBe('passed 45 s ago (1 package)');
  });

  it('leads with FAILED and the agent message on failure', () => {
    const d = create(RestoreDrillSummarySchema, {
      finishedAt: timestampFromMs(now - 60_000),
      passed: false,
      tier: 'cold',
      packagesChecked: 2n,
      message: 'sha256 mismatch: pkg 0190… on cold-nas',
    });
    const v = drillView(d, now);
    expect(v.passed).toBe('false');
    expect(v.text).toBe('FAILED 1 min ago: sha256 mismatch: pkg 0190… on cold-nas');
  });

  it('copes with a missing time and message', () => {
    const d = create(RestoreDrillSummarySchema, { passed: false });
    expect(drillView(d, now).text).toBe('FAILED: no details');
  });
});
