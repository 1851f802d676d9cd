import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { ConnectError, Code } from '@connectrpc/connect';
import { EntryKind, FileVersionSchema, type FileVersion } from './pb';
import { RestoreTree, type ListPage } from './restore-tree.svelte';

const v = (path: string, kind = EntryKind.FILE): FileVersion =>
  create(FileVersionSchema, { sourceId: 's', folder: '/data', entry: { path, kind, sizeBytes: 1n } });

/** A lister over a fixed tree, two entries per page, recording what it was asked. */
function lister(tree: Record<string, FileVersion[]>, asked: string[] = []): ListPage {
  return async ({ directory, pageToken }) => {
    asked.push(`${directory}@${pageToken}`);
    const all = tree[directory];
    if (!all) throw new ConnectError('no such directory', Code.NotFound);
    const from = pageToken ? Number(pageToken) : 0;
    const entries = all.slice(from, from + 2);
    return { entries, nextPageToken: from + 2 < all.length ? String(from + 2) : '' };
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));
const paths = (t: RestoreTree) => t.rows().map((r) => (r.type === 'entry' ? `${'  '.repeat(r.depth)}${r.path}` : `${'  '.repeat(r.depth)}[${r.type}]`));

describe('restore tree', () => {
  const data = {
    '': [v('docs', EntryKind.DIRECTORY), v('photos', EntryKind.DIRECTORY), v('top.txt')],
    docs: [v('docs/a.txt'), v('docs/b.txt'), v('docs/deep', EntryKind.DIRECTORY)],
    'docs/deep': [v('docs/deep/c.txt')],
    photos: [],
  };

  it('lists the top, pages with load more, and opens directories lazily', async () => {
    const asked: string[] = [];
    const t = new RestoreTree();
    t.reset(lister(data, asked));
    expect(paths(t)).toEqual(['[loading]']);
    await settle();
    expect(paths(t)).toEqual(['docs', 'photos', '[more]']);
    await t.load('', true);
    expect(paths(t)).toEqual(['docs', 'photos', 'top.txt']);
    t.toggle('docs');
    await settle();
    expect(paths(t)).toEqual(['docs', '  docs/a.txt', '  docs/b.txt', '  [more]', 'photos', 'top.txt']);
    t.toggle('photos');
    await settle();
    expect(paths(t)).toContain('  [empty]');
    // closing keeps the listing; opening again asks nothing
    t.toggle('docs');
    t.toggle('docs');
    expect(asked).toEqual(['@', '@2', 'docs@', 'photos@']);
  });

  it('reveals a path by opening every directory above it, paging on until each step is listed', async () => {
    const t = new RestoreTree();
    t.reset(lister(data));
    await t.reveal('docs/deep/c.txt');
    await settle();
    expect(paths(t)).toEqual(['docs', '  docs/a.txt', '  docs/b.txt', '  docs/deep', '    docs/deep/c.txt', 'photos', '[more]']);
    // a match on the top's second page
    const u = new RestoreTree();
    u.reset(lister(data));
    await u.reveal('top.txt');
    expect(paths(u)).toEqual(['docs', 'photos', 'top.txt']);
  });

  it('shows a listing error in place and retries it', async () => {
    const t = new RestoreTree();
    t.reset(lister({ '': [v('gone', EntryKind.DIRECTORY)] }));
    await settle();
    t.toggle('gone');
    await settle();
    const err = t.rows().find((r) => r.type === 'error');
    expect(err && err.type === 'error' && err.message).toBe('no such directory');
  });

  it('drops answers for an earlier folder or moment', async () => {
    const t = new RestoreTree();
    let release: () => void = () => {};
    const slow: ListPage = () => new Promise((r) => (release = () => r({ entries: [v('old.txt')], nextPageToken: '' })));
    t.reset(slow);
    t.reset(lister({ '': [v('new.txt')] }));
    release();
    await settle();
    expect(paths(t)).toEqual(['new.txt']);
    t.reset(undefined);
    expect(paths(t)).toEqual([]);
  });
});
