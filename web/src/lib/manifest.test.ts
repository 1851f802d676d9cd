import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { ManifestEntrySchema } from './pb';
import { filterManifest } from './manifest';

const entries = ['docs/a.txt', 'docs/B.txt', 'photos/2026/x.jpg', 'photos/y.jpg', 'top.txt'].map((path, i) =>
  create(ManifestEntrySchema, { path, sizeBytes: BigInt(i) }),
);

describe('manifest filter', () => {
  it('shows the first entries and the count when nothing is typed', () => {
    const v = filterManifest(entries, '  ', 3);
    expect(v.shown.map((e) => e.path)).toEqual(['docs/a.txt', 'docs/B.txt', 'photos/2026/x.jpg']);
    expect(v).toMatchObject({ matching: 5, total: 5 });
  });

  it('matches every typed word anywhere in the path, case-insensitively', () => {
    expect(filterManifest(entries, 'DOCS', 10).shown.map((e) => e.path)).toEqual(['docs/a.txt', 'docs/B.txt']);
    expect(filterManifest(entries, 'photos jpg 2026', 10).shown.map((e) => e.path)).toEqual(['photos/2026/x.jpg']);
    expect(filterManifest(entries, 'nothing', 10)).toMatchObject({ shown: [], matching: 0, total: 5 });
  });

  it('counts all matches beyond the limit', () => {
    const many = Array.from({ length: 5000 }, (_, i) => create(ManifestEntrySchema, { path: `f/${i}.bin` }));
    const v = filterManifest(many, '.bin', 50);
    expect(v.shown).toHaveLength(50);
    expect(v.matching).toBe(5000);
  });
});
