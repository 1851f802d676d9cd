import { firstCursor } from './packages-model.svelte';
import { describe, expect, it } from 'vitest';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  changeAffectsRows,
  computeRows,
  DEFAULT_SORT,
  EMPTY_FILTER,
  isFilterEmpty,
  listRequestFilter,
  matchesFilter,
  serverFilterKey,
  serverQuery,
} from './packages-view';
import { pkg } from './testdata';
import { PackageStatus, PackageType, Tier } from './pb';

const a = pkg('0001', { path: 'logs/app.log', packageType: PackageType.APP_LOGS, sizeBytes: 50n, createdMs: 1000, tier: Tier.HOT, status: PackageStatus.COMPLETED });
const b = pkg('0002', { path: 'docs/Report.pdf', sourceId: 'src-b', sizeBytes: 500n, createdMs: 2000, status: PackageStatus.IN_PROGRESS, progressPercent: 40 });
const c = pkg('0003', { path: 'docs/notes.txt', sizeBytes: 5n, createdMs: 3000, sha256: 'abcdef01', tier: Tier.WARM, status: PackageStatus.COMPLETED });
const all = [a, b, c];

describe('package filters', () => {
  it('matches by fields and text', () => {
    expect(computeRows(all, { ...EMPTY_FILTER, status: PackageStatus.COMPLETED }, DEFAULT_SORT)).toEqual(['0003', '0001']);
    expect(computeRows(all, { ...EMPTY_FILTER, sourceId: 'src-b' }, DEFAULT_SORT)).toEqual(['0002']);
    expect(computeRows(all, { ...EMPTY_FILTER, type: PackageType.APP_LOGS }, DEFAULT_SORT)).toEqual(['0001']);
    expect(computeRows(all, { ...EMPTY_FILTER, tier: Tier.UNSPECIFIED }, DEFAULT_SORT)).toEqual(['0002']);
    expect(computeRows(all, { ...EMPTY_FILTER, text: 'REPORT' }, DEFAULT_SORT)).toEqual(['0002']);
    expect(computeRows(all, { ...EMPTY_FILTER, text: 'abcdef' }, DEFAULT_SORT)).toEqual(['0003']);
    expect(computeRows(all, { ...EMPTY_FILTER, text: 'docs', status: PackageStatus.COMPLETED }, DEFAULT_SORT)).toEqual(['0003']);
  });

  it('knows an empty filter', () => {
    expect(isFilterEmpty(EMPTY_FILTER)).toBe(true);
    expect(isFilterEmpty({ ...EMPTY_FILTER, text: '  ' })).toBe(true);
    expect(isFilterEmpty({ ...EMPTY_FILTER, tier: Tier.UNSPECIFIED })).toBe(false);
  });

  it('maps to the server filter: the text as the catcher\'s query, "no tier" client-side', () => {
    const f = { ...EMPTY_FILTER, status: PackageStatus.FAILED, tier: Tier.UNSPECIFIED, text: ' x ' };
    expect(listRequestFilter(f)).toEqual({ status: PackageStatus.FAILED, sourceId: '', packageType: 0, tier: 0, query: 'x' });
    expect(serverFilterKey(f)).toBe(serverFilterKey({ ...f, text: 'x' }));
    expect(serverFilterKey(f)).not.toBe(serverFilterKey({ ...f, text: 'other' }));
    expect(serverFilterKey(f)).not.toBe(serverFilterKey({ ...f, sourceId: 'src-a' }));
  });

  it('asks the catcher only searches it takes (1..256 characters)', () => {
    expect(serverQuery('   ')).toBe('');
    expect(serverQuery('a'.repeat(256))).toHaveLength(256);
    expect(serverQuery('a'.repeat(257))).toBe('');
  });
});

describe('package sorting', () => {
  it('sorts by each key with newest-first ties', () => {
    expect(computeRows(all, EMPTY_FILTER, { key: 'created', desc: true })).toEqual(['0003', '0002', '0001']);
    expect(computeRows(all, EMPTY_FILTER, { key: 'path', desc: false })).toEqual(['0003', '0002', '0001']);
    expect(computeRows(all, EMPTY_FILTER, { key: 'size', desc: true })).toEqual(['0002', '0001', '0003']);
    expect(computeRows(all, EMPTY_FILTER, { key: 'progress', desc: false })).toEqual(['0002', '0003', '0001']);
    expect(computeRows(all, EMPTY_FILTER, { key: 'tier', desc: false })).toEqual(['0002', '0001', '0003']);
  });

  it('stays fast enough for 100k rows', () => {
    const many = Array.from({ length: 100_000 }, (_, i) =>
      pkg(String(i).padStart(8, '0'), { sizeBytes: BigInt((i * 7919) % 100_000), createdAt: timestampFromMs(i) }),
    );
    const t0 = performance.now();
    const rows = computeRows(many, EMPTY_FILTER, { key: 'size', desc: true });
    const ms = performance.now() - t0;
    expect(rows).toHaveLength(100_000);
    expect(ms).toBeLessThan(1500);
  });
});

describe('changeAffectsRows', () => {
  const tick = (from: number, to: number) => ({
    id: '0002',
    before: pkg('0002', { progressPercent: from, status: PackageStatus.IN_PROGRESS }),
    after: pkg('0002', { progressPercent: to, status: PackageStatus.IN_PROGRESS }),
  });

  it('ignores progress ticks unless sorted by progress', () => {
    expect(changeAffectsRows(tick(10, 20), EMPTY_FILTER, DEFAULT_SORT)).toBe(false);
    expect(changeAffectsRows(tick(10, 20), EMPTY_FILTER, { key: 'progress', desc: true })).toBe(true);
  });

  it('notices membership changes', () => {
    const f = { ...EMPTY_FILTER, status: PackageStatus.IN_PROGRESS };
    const done = { id: '0002', before: b, after: pkg('0002', { status: PackageStatus.COMPLETED }) };
    expect(changeAffectsRows(done, f, DEFAULT_SORT)).toBe(true);
    expect(changeAffectsRows({ id: 'n', after: pkg('n') }, EMPTY_FILTER, DEFAULT_SORT)).toBe(true);
    expect(changeAffectsRows({ id: 'n', after: pkg('n') }, f, DEFAULT_SORT)).toBe(false);
    expect(changeAffectsRows({ id: '0002', before: b }, EMPTY_FILTER, DEFAULT_SORT)).toBe(true);
    expect(matchesFilter(b, f)).toBe(true);
  });
});

describe('paging start', () => {
  it('continues below a full snapshot, and knows a short one held everything', () => {
    expect(firstCursor(false, { count: 2000, oldestId: '0042', limit: 2000 })).toEqual({ token: '0042', done: false });
    expect(firstCursor(false, { count: 12, oldestId: '0001', limit: 2000 })).toEqual({ token: '', done: true });
    expect(firstCursor(true, { count: 2000, oldestId: '0042', limit: 2000 })).toEqual({ token: '', done: false });
  });
});
