// State of the packages table: filter, sort, the ordered row ids, and on-demand paging of older
// packages (ListPackages) into the live store. Rows are recomputed only when a change can alter
// membership or order; otherwise only `dataV` moves and the visible rows re-render.
import type { Api } from './client';
import { describeError } from './errors';
import { totalPackages, type FleetChange } from './fleet';
import {
  changeAffectsRows,
  computeRows,
  DEFAULT_SORT,
  EMPTY_FILTER,
  listRequestFilter,
  serverFilterKey,
  type PackageFilter,
  type PackageSort,
  type SortKey,
} from './packages-view';
import { SNAPSHOT_PACKAGE_LIMIT, type LiveStore } from './store.svelte';
import { UNARY_TIMEOUT_MS } from './client';

export const PAGE_SIZE = 1000;
/** "Load all" asks first when more than this many packages would be fetched. */
export const LOAD_ALL_CONFIRM_ABOVE = 20_000;
/** Pages fetched in one go while they bring nothing this browser did not hold already. */
const MAX_EMPTY_PAGES = 10;
/** Typing in the search asks the catcher after this pause. */
export const QUERY_DEBOUNCE_MS = 300;

/**
 * Where paging starts for a filter: the snapshot is the first page of the unfiltered listing (the
 * catcher lists both newest first by id), so without a filter the next page starts below its
 * oldest package, and a snapshot that was not full held everything there is. With a filter paging
 * starts at the top. Returns the cursor and whether nothing is left.
 */
export function firstCursor(
  filtered: boolean,
  snapshot: { count: number; oldestId: string; limit: number },
): { token: string; done: boolean } {
  if (filtered) return { token: '', done: false };
  if (snapshot.count < snapshot.limit) return { token: '', done: true };
  return { token: snapshot.oldestId, done: false };
}

export interface PagingState {
  /** Cursor of the next page ("" before the first). */
  token: string;
  /** The server has no more pages for the current filter. */
  done: boolean;
  loading: boolean;
  loadingAll: boolean;
  /** Pages loaded for the current filter. */
  pages: number;
  error?: string;
}

const freshPaging = (): PagingState => ({ token: '', done: false, loading: false, loadingAll: false, pages: 0 });

export class PackagesModel {
  filter = $state.raw<PackageFilter>(EMPTY_FILTER);
  sort = $state.raw<PackageSort>(DEFAULT_SORT);
  /** Ids in display order. */
  rows = $state.raw<string[]>([]);
  /** Bumped whenever any package changed (row contents). */
  dataV = $state(0);
  paging = $state<PagingState>(freshPaging());

  #live: LiveStore;
  #api: () => Api;
  #serverKey = serverFilterKey(EMPTY_FILTER);
  #abort: AbortController | undefined;
  #inflight: Promise<boolean> | undefined;
  #queryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(live: LiveStore, api: () => Api) {
    this.#live = live;
    this.#api = api;
  }

  /** Starts following the live store; returns the unsubscribe function. */
  attach(): () => void {
    this.recompute();
    const off = this.#live.onPackages((c) => this.#onChange(c));
    return () => {
      off();
      clearTimeout(this.#queryTimer);
      this.#abort?.abort();
    };
  }

  #onChange(c: FleetChange): void {
    if (c.resync) {
      this.#resetPaging();
      this.recompute();
      return;
    }
    if (c.packages.some((pc) => changeAffectsRows(pc, this.filter, this.sort))) this.recompute();
    else this.dataV++;
  }

  recompute(): void {
    this.rows = computeRows(this.#live.fleet.packages.values(), this.filter, this.sort);
    this.dataV++;
  }

  setFilter(f: PackageFilter): void {
    this.filter = f;
    this.recompute();
    const key = serverFilterKey(f);
    if (key !== this.#serverKey) {
      this.#serverKey = key;
      this.#resetPaging();
      // ask the catcher for the first matching page (matches may be older than what the snapshot
      // brought), after a pause so typing a search does not send a request per keystroke
      clearTimeout(this.#queryTimer);
      if (key !== serverFilterKey(EMPTY_FILTER)) {
        this.paging.loading = true;
        this.#queryTimer = setTimeout(() => {
          if (key === this.#serverKey) void this.loadMore();
        }, QUERY_DEBOUNCE_MS);
      }
    }
  }

  patchFilter(p: Partial<PackageFilter>): void {
    this.setFilter({ ...this.filter, ...p });
  }

  /** Sorts by `key`; the same key again flips the direction. */
  sortBy(key: SortKey): void {
    const desc = this.sort.key === key ? !this.sort.desc : key === 'created' || key === 'size' || key === 'progress' || key === 'files';
    this.sort = { key, desc };
    this.recompute();
  }

  /** Whether older packages may exist on the server beyond those loaded. */
  get mayHaveMore(): boolean {
    if (this.paging.done) return false;
    if (this.paging.pages > 0) return true;
    if (this.#filtered()) return true;
    return this.#live.fleet.packages.size < totalPackages(this.#live.fleet.status);
  }

  /** About how many packages "Load all" would still fetch (the catcher's count for no filter). */
  get remainingEstimate(): number {
    const total = totalPackages(this.#live.fleet.status);
    return Math.max(0, total - this.#live.fleet.packages.size);
  }

  #filtered(): boolean {
    return serverFilterKey(this.filter) !== serverFilterKey(EMPTY_FILTER);
  }

  /** Loads the next page; resolves true when a page arrived. Joins a load already under way. */
  loadMore(): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    if (this.paging.done) return Promise.resolve(false);
    const p: Promise<boolean> = this.#fetchPage().finally(() => {
      if (this.#inflight === p) this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  /**
   * Fetches pages from the cursor on until one brings a package this browser did not hold (or the
   * last page): a click on "Load older" always shows something new or says there is nothing.
   */
  async #fetchPage(): Promise<boolean> {
    const abort = (this.#abort = new AbortController());
    const key = this.#serverKey;
    this.paging.loading = true;
    this.paging.error = undefined;
    try {
      if (this.paging.pages === 0 && this.paging.token === '') {
        const first = firstCursor(this.#filtered(), {
          count: this.#live.fleet.snapshotPackages,
          oldestId: this.#live.fleet.snapshotOldestId,
          limit: SNAPSHOT_PACKAGE_LIMIT,
        });
        this.paging.token = first.token;
        if (first.done) {
          this.paging.done = true;
          return false;
        }
      }
      for (let i = 0; i < MAX_EMPTY_PAGES; i++) {
        const res = await this.#api().packages.listPackages(
          { ...listRequestFilter(this.filter), pageSize: PAGE_SIZE, pageToken: this.paging.token },
          { signal: abort.signal, timeoutMs: UNARY_TIMEOUT_MS },
        );
        if (abort.signal.aborted || key !== this.#serverKey) return false;
        const held = this.#live.fleet.packages;
        const fresh = res.packages.some((p) => !held.has(p.packageId));
        this.paging.token = res.nextPageToken;
        this.paging.done = res.nextPageToken === '';
        this.paging.pages++;
        this.#live.merge(res.packages);
        if (fresh || this.paging.done || this.#filtered()) return true;
      }
      return true;
    } catch (e) {
      if (abort.signal.aborted) return false;
      this.paging.error = describeError(e).message;
      this.paging.loadingAll = false;
      return false;
    } finally {
      if (this.#abort === abort) this.paging.loading = false;
    }
  }

  /** Pages through everything matching the server-side filter (cancellable). */
  async loadAll(): Promise<void> {
    this.paging.loadingAll = true;
    while (this.paging.loadingAll && !this.paging.done) {
      if (!(await this.loadMore())) break;
    }
    this.paging.loadingAll = false;
  }

  stopLoadingAll(): void {
    this.paging.loadingAll = false;
  }

  #resetPaging(): void {
    this.#abort?.abort();
    this.#inflight = undefined;
    this.paging = freshPaging();
  }

  /** Cancels a search that waits for its pause. */
  cancelQuery(): void {
    clearTimeout(this.#queryTimer);
    this.paging.loading = false;
  }
}
