// The lazy tree of one watched folder at one moment: each directory is listed (ListFolder, paged)
// when it is first opened, and "load more" asks for its next page. Answers for an earlier
// source, folder or moment are dropped.
import { describeError } from './errors';
import { EntryKind, type FileVersion } from './pb';
import { ancestors } from './restore';

/** Entries asked for per ListFolder page. */
export const TREE_PAGE_SIZE = 200;
/** Pages a reveal reads at most per directory to find the next step. */
const REVEAL_MAX_PAGES = 50;

export interface DirListing {
  entries: FileVersion[];
  /** Set while there are more pages. */
  next: string;
  loading: boolean;
  error: string;
}

export type ListPage = (
  req: { directory: string; pageToken: string; pageSize: number },
  signal: AbortSignal,
) => Promise<{ entries: FileVersion[]; nextPageToken: string }>;

/** One line of the flattened tree. */
export type TreeRow =
  | { type: 'entry'; depth: number; version: FileVersion; path: string; expanded: boolean }
  | { type: 'loading' | 'more' | 'error' | 'empty'; depth: number; dir: string; message?: string };

export class RestoreTree {
  /** Listings by directory ("" is the folder's top). */
  dirs = $state.raw<Record<string, DirListing>>({});
  expanded = $state.raw<Record<string, boolean>>({});
  #list: ListPage | undefined;
  #abort = new AbortController();
  #inflight = new Map<string, Promise<void>>();

  /** Starts over with another lister (another source, folder or moment); lists the top. */
  reset(list: ListPage | undefined): void {
    this.#abort.abort();
    this.#abort = new AbortController();
    this.#list = list;
    this.#inflight = new Map();
    this.dirs = {};
    this.expanded = {};
    if (list) void this.load('');
  }

  /** Lists `dir` (its first page, or with `more` the next one); joins a listing under way. */
  load(dir: string, more = false): Promise<void> {
    const running = this.#inflight.get(dir);
    if (running) return running;
    const p = this.#fetch(dir, more).finally(() => {
      if (this.#inflight.get(dir) === p) this.#inflight.delete(dir);
    });
    this.#inflight.set(dir, p);
    return p;
  }

  async #fetch(dir: string, more: boolean): Promise<void> {
    const list = this.#list;
    if (!list) return;
    const signal = this.#abort.signal;
    const held = this.dirs[dir];
    const pageToken = more ? (held?.next ?? '') : '';
    if (more && !pageToken) return;
    const base: DirListing = more && held ? held : { entries: [], next: '', loading: false, error: '' };
    this.#set(dir, { ...base, loading: true, error: '' });
    try {
      const page = await list({ directory: dir, pageToken, pageSize: TREE_PAGE_SIZE }, signal);
      if (signal.aborted) return;
      this.#set(dir, { entries: [...base.entries, ...page.entries], next: page.nextPageToken, loading: false, error: '' });
    } catch (e) {
      if (signal.aborted) return;
      this.#set(dir, { ...base, loading: false, error: describeError(e).message });
    }
  }

  /** Opens or closes a directory, listing it the first time. */
  toggle(dir: string): void {
    const open = !this.expanded[dir];
    this.expanded = { ...this.expanded, [dir]: open };
    if (open && (!this.dirs[dir] || this.dirs[dir].error)) void this.load(dir);
  }

  /**
   * Opens every directory above `path`, listing each and paging on until the next step down is
   * listed (entries come sorted by path), e.g. to show a search match.
   */
  async reveal(path: string): Promise<void> {
    const chain = [...ancestors(path), path];
    for (let i = 0; i < chain.length; i++) {
      const dir = i === 0 ? '' : chain[i - 1];
      if (dir !== '') this.expanded = { ...this.expanded, [dir]: true };
      if (!this.dirs[dir] || this.dirs[dir].error || this.dirs[dir].loading) await this.load(dir);
      for (let pages = 0; pages < REVEAL_MAX_PAGES; pages++) {
        const l = this.dirs[dir];
        if (!l || l.error || !l.next || l.entries.some((v) => (v.entry?.path ?? '') >= chain[i])) break;
        await this.load(dir, true);
      }
    }
  }

  #set(dir: string, listing: DirListing): void {
    this.dirs = { ...this.dirs, [dir]: listing };
  }

  /** The visible lines: entries of open directories, depth first, with their status lines. */
  rows(): TreeRow[] {
    const out: TreeRow[] = [];
    const walk = (dir: string, depth: number) => {
      const l = this.dirs[dir];
      if (!l) return;
      for (const v of l.entries) {
        const path = v.entry?.path ?? '';
        const isDir = v.entry?.kind === EntryKind.DIRECTORY;
        const expanded = isDir && !!this.expanded[path];
        out.push({ type: 'entry', depth, version: v, path, expanded });
        if (expanded) walk(path, depth + 1);
      }
      if (l.loading) out.push({ type: 'loading', depth, dir });
      else if (l.error) out.push({ type: 'error', depth, dir, message: l.error });
      else if (l.next) out.push({ type: 'more', depth, dir });
      else if (l.entries.length === 0) out.push({ type: 'empty', depth, dir });
    };
    walk('', 0);
    return out;
  }
}
