// The restore page's pure logic: what is selected, the RestoreArgs it becomes, the moment, the
// target directory's client-side check, and how entries are described.
//
// How the agent reads `RestoreArgs.paths` (agent/src/restore/state.rs, `globs`): each pattern is a
// globset glob over paths relative to the watched folder, and the agent adds `<pattern>/**` to
// every one ("`docs` selects the directory and everything under it"). So a selected file is its
// path, and a selected directory is its path too: the agent matches the directory itself and
// everything below it. Glob characters in names are escaped (globset takes `\` escapes), so a file
// named `a[1].txt` selects exactly that file.
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { CommandKind, EntryKind, EntryKindSchema, type CreateCommandRequestSchema, type RestoreArgsSchema } from './pb';
import { enumSpelling } from './enums';

/** At most this many globs per restore (the catcher refuses more). */
export const MAX_RESTORE_PATHS = 100;

/** One selected entry of a watched folder; `path` "" is the whole folder. */
export interface SelectedEntry {
  folder: string;
  /** Relative to the folder, `/` separators; "" for the folder itself. */
  path: string;
  kind: EntryKind;
  /** Files: their size (for the summary); unknown for directories. */
  sizeBytes?: bigint;
}

export type Selection = ReadonlyMap<string, SelectedEntry>;

export function selectionKey(folder: string, path: string): string {
  return `${folder}\u0000${path}`;
}

/** Whether `path` is `dir` or lies below it ("" is the folder's top, above everything). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

/** The selected directory (or whole folder) that already includes `path`, other than itself. */
export function coveringEntry(sel: Selection, folder: string, path: string): SelectedEntry | undefined {
  if (path === '') return undefined;
  const whole = sel.get(selectionKey(folder, ''));
  if (whole) return whole;
  let i = path.lastIndexOf('/');
  while (i > 0) {
    const hit = sel.get(selectionKey(folder, path.slice(0, i)));
    if (hit && hit.kind === EntryKind.DIRECTORY) return hit;
    i = path.lastIndexOf('/', i - 1);
  }
  return undefined;
}

export type CheckState = 'selected' | 'covered' | 'partial' | 'none';

/**
 * How an entry's checkbox shows: selected itself, included by a selected directory above it,
 * partly selected (a directory with selected entries below), or not.
 */
export function checkState(sel: Selection, folder: string, path: string, kind: EntryKind): CheckState {
  if (sel.has(selectionKey(folder, path))) return 'selected';
  if (coveringEntry(sel, folder, path)) return 'covered';
  if (kind === EntryKind.DIRECTORY || path === '') {
    for (const e of sel.values()) if (e.folder === folder && e.path !== path && isWithin(e.path, path)) return 'partial';
  }
  return 'none';
}

/**
 * Selects or deselects one entry. Selecting a directory drops what it already includes, so the
 * selection stays minimal; an entry already included by a selected directory is left as it is.
 */
export function toggleEntry(sel: Selection, entry: SelectedEntry): Map<string, SelectedEntry> {
  const next = new Map(sel);
  const key = selectionKey(entry.folder, entry.path);
  if (next.has(key)) {
    next.delete(key);
    return next;
  }
  if (coveringEntry(sel, entry.folder, entry.path)) return next;
  if (entry.kind === EntryKind.DIRECTORY || entry.path === '') {
    for (const [k, e] of next) if (e.folder === entry.folder && isWithin(e.path, entry.path)) next.delete(k);
  }
  next.set(key, entry);
  return next;
}

/** Escapes globset's special characters so a name matches only itself. */
export function escapeGlob(path: string): string {
  return path.replace(/[\\*?[\]{}]/g, (c) => `\\${c}`);
}

/** The globs of one folder's selection; empty means the whole folder. Sorted, minimal. */
export function folderPatterns(entries: SelectedEntry[]): string[] {
  if (entries.some((e) => e.path === '')) return [];
  const dirs = entries.filter((e) => e.kind === EntryKind.DIRECTORY).map((e) => e.path);
  const kept = entries.filter((e) => !dirs.some((d) => d !== e.path && isWithin(e.path, d)));
  return [...new Set(kept.map((e) => escapeGlob(e.path)))].sort();
}

/** One restore command: one watched folder and its globs. */
export interface RestorePlan {
  folder: string;
  /** Empty: the whole folder. */
  paths: string[];
  /** Selected entries it stands for (before minimising). */
  count: number;
}

/**
 * Groups a selection by watched folder: RestoreArgs' globs apply to every folder it names, so a
 * selection spanning folders becomes one restore per folder. `error` names a folder whose
 * selection needs more globs than a restore takes.
 */
export function restorePlans(sel: Selection): { plans: RestorePlan[]; error: string } {
  const byFolder = new Map<string, SelectedEntry[]>();
  for (const e of sel.values()) {
    const list = byFolder.get(e.folder) ?? [];
    list.push(e);
    byFolder.set(e.folder, list);
  }
  const plans: RestorePlan[] = [];
  let error = '';
  for (const folder of [...byFolder.keys()].sort()) {
    const entries = byFolder.get(folder) ?? [];
    const paths = folderPatterns(entries);
    if (paths.length > MAX_RESTORE_PATHS && !error) {
      error =
        `${paths.length} entries are selected in ${folder}; one restore takes at most ${MAX_RESTORE_PATHS}. ` +
        `Select their folders instead of single files.`;
    }
    plans.push({ folder, paths, count: entries.length });
  }
  return { plans, error };
}

export interface RestoreOptions {
  /** Whose data. */
  sourceId: string;
  /** The agent that performs the restore. */
  targetSourceId: string;
  /** Epoch ms; undefined means the latest state. */
  asOfMs: number | undefined;
  targetDir: string;
  overwrite: boolean;
}

/** The CreateCommand request of one plan. */
export function restoreRequest(plan: RestorePlan, o: RestoreOptions): MessageInitShape<typeof CreateCommandRequestSchema> {
  const args: MessageInitShape<typeof RestoreArgsSchema> = {
    sourceId: o.sourceId,
    folders: [plan.folder],
    paths: plan.paths,
    targetDir: o.targetDir.trim(),
    overwrite: o.overwrite,
  };
  if (o.asOfMs !== undefined) args.asOf = timestampFromMs(o.asOfMs);
  return {
    sourceId: o.targetSourceId,
    kind: CommandKind.RESTORE,
    args: { kind: { case: 'restore', value: args } },
  };
}

/** The client-side check of a target directory ('' when fine); the agent decides for real. */
export function targetDirProblem(dir: string): string {
  const d = dir.trim();
  if (d === '') return 'Enter the directory on the target device to restore into, e.g. /srv/restores/today.';
  if (!d.startsWith('/')) return `"${d}" is not absolute: it must start with "/".`;
  if (d.split('/').includes('..')) return 'It must not contain ".." parts.';
  if (d.includes('\0')) return 'It must not contain NUL characters.';
  if (d.length > 4096) return 'It is longer than 4096 characters.';
  return '';
}

/** Where a folder's entries land on the target: `target_dir` + the folder's absolute path. */
export function landingDir(targetDir: string, folder: string): string {
  const base = targetDir.trim().replace(/\/+$/, '');
  return `${base}/${folder.replace(/^\/+/, '')}`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The value of an `<input type="datetime-local" step="1">` for epoch ms, in local time. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** Epoch ms of a datetime-local value (local time; seconds optional), or undefined. */
export function fromLocalInput(value: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x)));
  const ms = m[7] ? Number(m[7].padEnd(3, '0')) : 0;
  const date = new Date(y, mo - 1, d, h, mi, s, ms);
  // a value that does not exist (Feb 30, a skipped DST hour) does not round-trip
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d || date.getHours() !== h || date.getMinutes() !== mi) {
    return undefined;
  }
  return date.getTime();
}

/** "UTC+02:00" for the local offset at `ms`. */
export function utcOffsetLabel(ms: number): string {
  const off = -new Date(ms).getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** "2026-01-02 11:04:05 UTC". */
export function formatUtc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** "file", "directory", "symlink", "hardlink"; "entry" when unknown. */
export function kindLabel(k: EntryKind): string {
  const s = enumSpelling(EntryKindSchema, k);
  return s === 'unspecified' || s.startsWith('entry_kind_') ? 'entry' : s;
}

/** Short key for tests and CSS: "file", "directory", "symlink", "hardlink", "entry". */
export const kindKey = kindLabel;

/** "drwxr-xr-x", "-rw-r--r--", "lrwxrwxrwx" (setuid, setgid and sticky bits shown as ls does). */
export function formatMode(mode: number, kind: EntryKind): string {
  const type = kind === EntryKind.DIRECTORY ? 'd' : kind === EntryKind.SYMLINK ? 'l' : '-';
  const bit = (b: number, c: string) => (mode & b ? c : '-');
  const special = (x: string, set: boolean, on: string, off: string) => (set ? (x === '-' ? off : on) : x);
  const u = special(bit(0o100, 'x'), (mode & 0o4000) !== 0, 's', 'S');
  const g = special(bit(0o010, 'x'), (mode & 0o2000) !== 0, 's', 'S');
  const o = special(bit(0o001, 'x'), (mode & 0o1000) !== 0, 't', 'T');
  return (
    type + bit(0o400, 'r') + bit(0o200, 'w') + u + bit(0o040, 'r') + bit(0o020, 'w') + g + bit(0o004, 'r') + bit(0o002, 'w') + o
  );
}

/** "0644". */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** The parent directory of a relative path ("" at the top). */
export function parentDir(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** The directories from the top down to `path`'s parent: "a/b/c.txt" -> ["a", "a/b"]. */
export function ancestors(path: string): string[] {
  const parts = path.split('/').slice(0, -1);
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** Epoch ms to look at to see a deleted entry's last version: just before it disappeared. */
export function beforeDeletionMs(sinceMs: number | undefined, untilMs: number | undefined): number | undefined {
  if (untilMs === undefined) return undefined;
  const t = untilMs - 1;
  return sinceMs !== undefined && t < sinceMs ? sinceMs : t;
}
