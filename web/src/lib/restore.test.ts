import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { CommandKind, CreateCommandRequestSchema, EntryKind } from './pb';
import {
  MAX_RESTORE_PATHS,
  ancestors,
  beforeDeletionMs,
  checkState,
  escapeGlob,
  folderPatterns,
  formatMode,
  formatUtc,
  fromLocalInput,
  kindLabel,
  landingDir,
  octalMode,
  restorePlans,
  restoreRequest,
  targetDirProblem,
  toLocalInput,
  toggleEntry,
  utcOffsetLabel,
  type SelectedEntry,
} from './restore';

const F = '/home/ana';
const file = (path: string, folder = F, size = 10n): SelectedEntry => ({ folder, path, kind: EntryKind.FILE, sizeBytes: size });
const dir = (path: string, folder = F): SelectedEntry => ({ folder, path, kind: EntryKind.DIRECTORY });
const select = (...entries: SelectedEntry[]) => entries.reduce<Map<string, SelectedEntry>>((m, e) => toggleEntry(m, e), new Map());

describe('selection', () => {
  it('toggles files and shows what a selected directory includes', () => {
    let s = select(file('docs/a.txt'), dir('photos'));
    expect(checkState(s, F, 'docs/a.txt', EntryKind.FILE)).toBe('selected');
    expect(checkState(s, F, 'docs', EntryKind.DIRECTORY)).toBe('partial');
    expect(checkState(s, F, 'docs/b.txt', EntryKind.FILE)).toBe('none');
    expect(checkState(s, F, 'photos', EntryKind.DIRECTORY)).toBe('selected');
    expect(checkState(s, F, 'photos/2026/x.jpg', EntryKind.FILE)).toBe('covered');
    // a sibling whose name starts like the directory is not inside it
    expect(checkState(s, F, 'photos-old/y.jpg', EntryKind.FILE)).toBe('none');
    // the same path in another folder is another entry
    expect(checkState(s, '/etc', 'docs/a.txt', EntryKind.FILE)).toBe('none');
    expect(checkState(s, F, '', EntryKind.DIRECTORY)).toBe('partial');
    s = toggleEntry(s, file('docs/a.txt'));
    expect(checkState(s, F, 'docs/a.txt', EntryKind.FILE)).toBe('none');
    expect(s.size).toBe(1);
  });

  it('selecting a directory drops the entries it includes; an included entry cannot be toggled alone', () => {
    let s = select(file('docs/a.txt'), file('docs/sub/c.txt'), file('top.txt'));
    s = toggleEntry(s, dir('docs'));
    expect([...s.values()].map((e) => e.path).sort()).toEqual(['docs', 'top.txt']);
    const same = toggleEntry(s, file('docs/b.txt'));
    expect(same.size).toBe(2);
    expect(same.has(`${F}\u0000docs/b.txt`)).toBe(false);
    // the whole folder includes everything
    s = toggleEntry(s, dir(''));
    expect([...s.values()].map((e) => e.path)).toEqual(['']);
    expect(checkState(s, F, 'anything/deep', EntryKind.FILE)).toBe('covered');
  });
});

describe('globs', () => {
  it('escapes glob characters so names match only themselves', () => {
    expect(escapeGlob('docs/a.txt')).toBe('docs/a.txt');
    expect(escapeGlob('r[1]/*?{a,b}\\x')).toBe('r\\[1\\]/\\*\\?\\{a,b\\}\\\\x');
  });

  it('a selected directory is its own path (the agent adds "<path>/**"), files are their paths', () => {
    expect(folderPatterns([file('docs/a.txt'), dir('photos'), file('photos/x.bin'), file('docs/b[1].txt')])).toEqual([
      'docs/a.txt',
      'docs/b\\[1\\].txt',
      'photos',
    ]);
  });

  it('the whole folder is no globs at all', () => {
    expect(folderPatterns([dir(''), file('docs/a.txt')])).toEqual([]);
  });

  it('one restore per watched folder, since globs apply to every folder a restore names', () => {
    const s = select(file('docs/a.txt'), dir('photos'), file('hosts', '/etc'));
    const { plans, error } = restorePlans(s);
    expect(error).toBe('');
    expect(plans).toEqual([
      { folder: '/etc', paths: ['hosts'], count: 1 },
      { folder: F, paths: ['docs/a.txt', 'photos'], count: 2 },
    ]);
  });

  it(`refuses more than ${MAX_RESTORE_PATHS} globs in a folder with a precise message`, () => {
    const s = select(...Array.from({ length: MAX_RESTORE_PATHS + 1 }, (_, i) => file(`docs/f${i}.txt`)));
    const { error } = restorePlans(s);
    expect(error).toMatch(/101 entries are selected in \/home\/ana; one restore takes at most 100/);
    expect(restorePlans(select(...Array.from({ length: MAX_RESTORE_PATHS }, (_, i) => file(`f${i}`)))).error).toBe('');
  });

  it('builds the CreateCommand request: target agent, data source, folder, globs, moment, directory', () => {
    const plan = { folder: F, paths: ['docs/a.txt', 'photos'], count: 2 };
    const req = create(
      CreateCommandRequestSchema,
      restoreRequest(plan, { sourceId: 'edge-a', targetSourceId: 'edge-b', asOfMs: 1_767_225_600_123, targetDir: ' /srv/restores/r1 ', overwrite: true }),
    );
    expect(req.sourceId).toBe('edge-b');
    expect(req.kind).toBe(CommandKind.RESTORE);
    expect(req.args?.kind.case).toBe('restore');
    const a = req.args?.kind.case === 'restore' ? req.args.kind.value : undefined;
    expect(a?.sourceId).toBe('edge-a');
    expect(a?.folders).toEqual([F]);
    expect(a?.paths).toEqual(['docs/a.txt', 'photos']);
    expect(a?.targetDir).toBe('/srv/restores/r1');
    expect(a?.overwrite).toBe(true);
    expect(a?.asOf?.seconds).toBe(1_767_225_600n);
    expect(a?.asOf?.nanos).toBe(123_000_000);
    const latest = create(CreateCommandRequestSchema, restoreRequest(plan, { sourceId: 'edge-a', targetSourceId: 'edge-a', asOfMs: undefined, targetDir: '/x', overwrite: false }));
    expect(latest.args?.kind.case === 'restore' && latest.args.kind.value.asOf).toBeUndefined();
  });
});

describe('target directory', () => {
  it('says precisely what is wrong', () => {
    expect(targetDirProblem('')).toMatch(/Enter the directory/);
    expect(targetDirProblem('  ')).toMatch(/Enter the directory/);
    expect(targetDirProblem('restores/r1')).toBe('"restores/r1" is not absolute: it must start with "/".');
    expect(targetDirProblem('/srv/../etc')).toBe('It must not contain ".." parts.');
    expect(targetDirProblem('/srv/a..b')).toBe('');
    expect(targetDirProblem('/srv/restores/r1')).toBe('');
  });

  it('shows where a folder lands: target + the folder\'s absolute path', () => {
    expect(landingDir('/srv/r1/', '/home/ana')).toBe('/srv/r1/home/ana');
    expect(landingDir('/', '/data')).toBe('/data');
  });
});

describe('moment', () => {
  it('round-trips local datetime-local values and refuses ones that do not exist', () => {
    const ms = new Date(2026, 0, 2, 13, 4, 5).getTime();
    expect(toLocalInput(ms)).toBe('2026-01-02T13:04:05');
    expect(fromLocalInput('2026-01-02T13:04:05')).toBe(ms);
    expect(fromLocalInput('2026-01-02T13:04')).toBe(new Date(2026, 0, 2, 13, 4).getTime());
    expect(fromLocalInput('2026-01-02T13:04:05.5')).toBe(ms + 500);
    expect(fromLocalInput('2026-02-30T10:00')).toBeUndefined();
    expect(fromLocalInput('yesterday')).toBeUndefined();
    expect(fromLocalInput('')).toBeUndefined();
  });

  it('shows UTC next to local time', () => {
    expect(formatUtc(Date.UTC(2026, 0, 2, 11, 4, 5))).toBe('2026-01-02 11:04:05 UTC');
    expect(utcOffsetLabel(Date.now())).toMatch(/^UTC[+-]\d{2}:\d{2}$/);
  });

  it('looks just before a deletion, never before the version began', () => {
    expect(beforeDeletionMs(1000, 5000)).toBe(4999);
    expect(beforeDeletionMs(5000, 5000)).toBe(5000);
    expect(beforeDeletionMs(1000, undefined)).toBeUndefined();
  });
});

describe('entries', () => {
  it('spells kinds and modes as ls does', () => {
    expect(kindLabel(EntryKind.FILE)).toBe('file');
    expect(kindLabel(EntryKind.DIRECTORY)).toBe('directory');
    expect(kindLabel(EntryKind.SYMLINK)).toBe('symlink');
    expect(kindLabel(EntryKind.HARDLINK)).toBe('hardlink');
    expect(kindLabel(EntryKind.UNSPECIFIED)).toBe('entry');
    expect(kindLabel(42 as EntryKind)).toBe('entry');
    expect(formatMode(0o644, EntryKind.FILE)).toBe('-rw-r--r--');
    expect(formatMode(0o755, EntryKind.DIRECTORY)).toBe('drwxr-xr-x');
    expect(formatMode(0o777, EntryKind.SYMLINK)).toBe('lrwxrwxrwx');
    expect(formatMode(0o4755, EntryKind.FILE)).toBe('-rwsr-xr-x');
    expect(formatMode(0o2644, EntryKind.FILE)).toBe('-rw-r-Sr--');
    expect(formatMode(0o1777, EntryKind.DIRECTORY)).toBe('drwxrwxrwt');
    expect(octalMode(0o644)).toBe('0644');
    expect(octalMode(0o104755)).toBe('4755');
  });

  it('lists the directories above a path', () => {
    expect(ancestors('a/b/c.txt')).toEqual(['a', 'a/b']);
    expect(ancestors('top.txt')).toEqual([]);
  });
});
