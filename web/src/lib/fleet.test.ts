import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { applyWatchEvent, emptyFleet, mergePackages, totalPackages, JOURNAL_CAP } from './fleet';
import { event, journalEvent, pkg, snapshotEvent } from './testdata';
import {
  GetStatusResponseSchema,
  PackageStatus,
  PackageType,
  RuleSetSchema,
  RulesChangedSchema,
  SourceSchema,
  StatusCountsSchema,
} from './pb';

describe('fleet reducer', () => {
  it('starts empty and loads a snapshot', () => {
    const s = emptyFleet();
    expect(s.generation).toBe(0);
    const c = applyWatchEvent(
      s,
      snapshotEvent({ packages: [pkg('p1'), pkg('p2')], journal: [journalEvent(1), journalEvent(3), journalEvent(2)] }),
    );
    expect(c.resync).toBe(true);
    expect(s.generation).toBe(1);
    expect([...s.packages.keys()]).toEqual(['p1', 'p2']);
    expect(s.journal.map((e) => Number(e.sequence))).toEqual([3, 2, 1]);
    expect(s.sources.get('src-a')?.connected).toBe(true);
  });

  it('keeps a listed file count through Watch deltas, which carry none', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('p1', { updatedMs: 1000 })] }));
    mergePackages(s, [pkg('p1', { fileCount: 121n, updatedMs: 1000 })]);
    applyWatchEvent(s, event({ case: 'packageChanged', value: pkg('p1', { progressPercent: 40, updatedMs: 2000 }) }));
    expect(s.packages.get('p1')?.fileCount).toBe(121n);
    expect(s.packages.get('p1')?.progressPercent).toBe(40);
  });

  it('remembers how many packages the snapshot brought and the oldest of them', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('0003'), pkg('0001'), pkg('0002')] }));
    expect(s.snapshotPackages).toBe(3);
    expect(s.snapshotOldestId).toBe('0001');
  });

  it('applies package deltas and reports before/after', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('p1', { progressPercent: 10, updatedMs: 1000 })] }));
    const c = applyWatchEvent(s, event({ case: 'packageChanged', value: pkg('p1', { progressPercent: 40, updatedMs: 2000 }) }));
    expect(c.packages).toHaveLength(1);
    expect(c.packages[0].before?.progressPercent).toBe(10);
    expect(c.packages[0].after?.progressPercent).toBe(40);
    expect(s.packages.get('p1')?.progressPercent).toBe(40);

    const added = applyWatchEvent(s, event({ case: 'packageChanged', value: pkg('p2') }));
    expect(added.packages[0].before).toBeUndefined();
    expect(s.packages.size).toBe(2);
  });

  it('deletes packages and keeps late pages from resurrecting them', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('p1'), pkg('p2')] }));
    const c = applyWatchEvent(s, event({ case: 'packageDeleted', value: 'p1' }));
    expect(c.packages[0]).toMatchObject({ id: 'p1' });
    expect(c.packages[0].after).toBeUndefined();
    expect(s.packages.has('p1')).toBe(false);
    mergePackages(s, [pkg('p1'), pkg('p3')]);
    expect(s.packages.has('p1')).toBe(false);
    expect(s.packages.has('p3')).toBe(true);
  });

  it('keeps the newer copy when a page is older than a live delta', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent());
    applyWatchEvent(s, event({ case: 'packageChanged', value: pkg('p1', { progressPercent: 80, updatedMs: 5000 }) }));
    const c = mergePackages(s, [pkg('p1', { progressPercent: 20, updatedMs: 4000 })]);
    expect(c.packages).toHaveLength(0);
    expect(s.packages.get('p1')?.progressPercent).toBe(80);
  });

  it('replaces everything on a resync snapshot', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('old')] }));
    mergePackages(s, [pkg('paged')]);
    applyWatchEvent(s, event({ case: 'packageDeleted', value: 'gone' }));
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('new')] }));
    expect([...s.packages.keys()]).toEqual(['new']);
    expect(s.deleted.size).toBe(0);
    expect(s.generation).toBe(2);
  });

  it('replaces sources, status and rules from deltas', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent());
    applyWatchEvent(s, event({ case: 'sourceChanged', value: create(SourceSchema, { sourceId: 'src-b', connected: true }) }));
    expect(s.sources.size).toBe(2);
    const status = create(GetStatusResponseSchema, {
      statuses: create(StatusCountsSchema, { pending: 1n, inProgress: 2n, completed: 3n, failed: 4n, expired: 5n }),
    });
    expect(applyWatchEvent(s, event({ case: 'statusChanged', value: status })).status).toBe(true);
    expect(totalPackages(s.status)).toBe(15);
    const rules = create(RulesChangedSchema, { ruleSets: [create(RuleSetSchema, { packageType: PackageType.CACHE })] });
    expect(applyWatchEvent(s, event({ case: 'rulesChanged', value: rules })).rules).toBe(true);
    expect([...s.ruleSets.keys()]).toEqual([PackageType.CACHE]);
  });

  it('appends journal events newest first without duplicates', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ journal: [journalEvent(5), journalEvent(4)] }));
    expect(applyWatchEvent(s, event({ case: 'journalAppended', value: journalEvent(6) })).journal).toBe(true);
    expect(applyWatchEvent(s, event({ case: 'journalAppended', value: journalEvent(5) })).journal).toBe(false);
    applyWatchEvent(s, event({ case: 'journalAppended', value: journalEvent(3) }));
    expect(s.journal.map((e) => Number(e.sequence))).toEqual([6, 5, 4, 3]);
  });

  it('caps the journal', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent());
    for (let i = 1; i <= JOURNAL_CAP + 10; i++) applyWatchEvent(s, event({ case: 'journalAppended', value: journalEvent(i) }));
    expect(s.journal).toHaveLength(JOURNAL_CAP);
    expect(Number(s.journal[0].sequence)).toBe(JOURNAL_CAP + 10);
  });

  it('ignores unknown event kinds', () => {
    const s = emptyFleet();
    const c = applyWatchEvent(s, event({ case: undefined }));
    expect(c.packages).toHaveLength(0);
    expect(c.resync).toBe(false);
  });

  it('treats a status-less package as current', () => {
    const s = emptyFleet();
    applyWatchEvent(s, snapshotEvent({ packages: [pkg('p1', { status: PackageStatus.PENDING })] }));
    applyWatchEvent(s, event({ case: 'packageChanged', value: pkg('p1', { status: PackageStatus.COMPLETED }) }));
    expect(s.packages.get('p1')?.status).toBe(PackageStatus.COMPLETED);
  });
});
