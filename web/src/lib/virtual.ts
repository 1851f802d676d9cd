// Windowing for the packages table: which rows to render for a scroll position, and scrolling a row
// into view. Rows have one fixed height; at most one row is expanded and adds `expandedExtra` pixels
// below itself. A sticky header of `headerHeight` px sits above the rows in the same scroll element.
//
// The windowing is @tanstack/virtual-core's (framework-agnostic: the component owns the DOM and
// renders again on `onChange`). Measured at 1,000,000 rows of fixed height (2-core machine, busy with
// a parallel build; headless Chromium 156 and node 20):
//   - creating the virtualizer and its first window: 15–34 ms (median 22) in Chromium, 19–61 ms in
//     node/vitest (virtual.test.ts keeps checking it). It does not make an object per row: it fills a
//     Float64Array of start/size per row plus an array of row keys (~23 MiB at 1M rows, in one pass);
//     VirtualItem objects are made only for the rows that are read, i.e. rendered.
//   - one scroll event: < 0.1 ms (a binary search over that array; the hand-written window it
//     replaces took ~1–3 µs). Scrolling 1M rows in Chromium renders at the same frame times as before.
//   - a change of the row count or of the expanded row refills the array: 12–48 ms (median 14–16) in
//     Chromium. That happens when rows come or go, where re-deriving the rows (filter + sort over
//     every package, packages-view.ts: ~0.7 s for 100k rows here) costs far more, or on a click
//     that expands a row.
// In the browser neither setting up (median 22 ms) nor scrolling exceeds the 50 ms budget for a
// million rows, so the maintained library is used rather than a hand-written window.
// (Chromium caps an element's height at 33,554,430 px, so at 38 px a row the rows past ~883,000 of a
// million cannot be scrolled to; that was so before as well and is not handled here.)
import {
  Virtualizer,
  elementScroll,
  observeElementOffset,
  observeElementRect,
  type VirtualizerOptions,
} from '@tanstack/virtual-core';

export interface RowWindowOptions {
  getScrollElement: () => HTMLElement | null | undefined;
  /** Height of every row, px. */
  rowHeight: number;
  /** Height of the sticky header above the rows inside the scroll element, px. */
  headerHeight: number;
  /** Rows rendered beyond each edge. */
  overscan: number;
  /** The rendered range (or the scroll position within it) changed: render again. */
  onChange: () => void;
  /** Viewport height assumed until the scroll element has been measured, px. */
  initialHeight?: number;
}

export interface RowLayout {
  count: number;
  /** Index of the expanded row, or -1. */
  expandedIndex: number;
  /** Height of the expanded row's detail panel, px. */
  expandedExtra: number;
}

export interface RowWindowRange {
  /** First rendered index (inclusive). */
  start: number;
  /** Last rendered index (exclusive). */
  end: number;
  /** Height of all rows together (the header not included), px. */
  totalHeight: number;
}

export interface RenderedRow {
  index: number;
  /** Top of the row below the header (0 for the first row), px. */
  top: number;
}

export class RowWindow {
  readonly #v: Virtualizer<HTMLElement, HTMLElement>;
  #layout: RowLayout = { count: 0, expandedIndex: -1, expandedExtra: 0 };
  readonly #rowHeight: number;
  readonly #headerHeight: number;
  #quiet = false;
  /** The virtualizer's scroll-offset callback, to report our own writes at once (see reveal). */
  #report: ((offset: number, isScrolling: boolean) => void) | undefined;

  constructor(o: RowWindowOptions) {
    this.#rowHeight = o.rowHeight;
    this.#headerHeight = o.headerHeight;
    const options: VirtualizerOptions<HTMLElement, HTMLElement> = {
      count: 0,
      getScrollElement: () => o.getScrollElement() ?? null,
      estimateSize: (i) => (i === this.#layout.expandedIndex ? this.#rowHeight + this.#layout.expandedExtra : this.#rowHeight),
      overscan: o.overscan,
      // the rows start below the header, and a row scrolled to stays clear of it
      scrollMargin: o.headerHeight,
      scrollPaddingStart: o.headerHeight,
      initialRect: { width: 0, height: o.initialHeight ?? 0 },
      observeElementRect,
      observeElementOffset: (instance, cb) => {
        this.#report = cb;
        return observeElementOffset(instance, cb);
      },
      scrollToFn: elementScroll,
      onChange: () => {
        if (!this.#quiet) o.onChange();
      },
    };
    this.#v = new Virtualizer(options);
  }

  /** Attaches to the scroll element (call once it exists); returns the detach function. */
  mount(): () => void {
    const detach = this.#v._didMount();
    this.#v._willUpdate();
    return detach;
  }

  /** Call after each render: attaches to a new scroll element, retries a scroll the page was too short for. */
  rendered(): void {
    this.#v._willUpdate();
  }

  /** Sets the row count and the expanded row; cheap when neither changed. Does not call onChange. */
  update(layout: RowLayout): void {
    const prev = this.#layout;
    const expanded = layout.expandedIndex >= 0 && layout.expandedIndex < layout.count ? layout.expandedIndex : -1;
    const next = { count: layout.count, expandedIndex: expanded, expandedExtra: expanded >= 0 ? layout.expandedExtra : 0 };
    if (next.count === prev.count && next.expandedIndex === prev.expandedIndex && next.expandedExtra === prev.expandedExtra) return;
    this.#layout = next;
    this.#quiet = true;
    try {
      if (next.count !== prev.count) this.#v.setOptions({ ...this.#v.options, count: next.count });
      // sizes come from estimateSize only (rows are never measured), so this just rebuilds the offsets
      else this.#v.measure();
    } finally {
      this.#quiet = false;
    }
  }

  range(): RowWindowRange {
    const items = this.#v.getVirtualItems();
    const totalHeight = this.#v.getTotalSize();
    if (items.length === 0) return { start: 0, end: 0, totalHeight };
    return { start: items[0].index, end: items[items.length - 1].index + 1, totalHeight };
  }

  /** The rows to render, in order. */
  rows(): RenderedRow[] {
    return this.#v.getVirtualItems().map((it) => ({ index: it.index, top: it.start - this.#headerHeight }));
  }

  /** Scrolls row `i` fully into view (below the header) when it is not; the window follows at once. */
  reveal(i: number): void {
    if (i < 0 || i >= this.#layout.count) return;
    this.#v.scrollToIndex(i, { align: 'auto' });
    // The element's scroll event arrives a frame later; report the write now so that the row is in
    // the next render (the caller focuses it right after).
    const el = this.#v.scrollElement;
    if (el && this.#report) this.#report(el.scrollTop, false);
  }
}
