// Windowing for the packages table: which rows to render for a scroll position. Rows have one
// fixed height; at most one row is expanded and adds `expandedExtra` pixels below itself.

export interface WindowInput {
  scrollTop: number;
  viewportHeight: number;
  rowHeight: number;
  count: number;
  /** Index of the expanded row, or -1. */
  expandedIndex: number;
  /** Height of the expanded row's detail panel, px. */
  expandedExtra: number;
  /** Rows rendered beyond each edge. */
  overscan: number;
}

export interface WindowOutput {
  /** First rendered index (inclusive). */
  start: number;
  /** Last rendered index (exclusive). */
  end: number;
  /** Height of the whole list, px. */
  totalHeight: number;
}

/** Top offset of row `i`. */
export function rowTop(i: number, w: Pick<WindowInput, 'rowHeight' | 'expandedIndex' | 'expandedExtra'>): number {
  const extra = w.expandedIndex >= 0 && i > w.expandedIndex ? w.expandedExtra : 0;
  return i * w.rowHeight + extra;
}

/** Index of the row at vertical position `y`. */
export function indexAt(y: number, w: WindowInput): number {
  if (w.count === 0) return 0;
  let i: number;
  if (w.expandedIndex >= 0) {
    const expandedBottom = (w.expandedIndex + 1) * w.rowHeight + w.expandedExtra;
    if (y < expandedBottom) i = Math.min(w.expandedIndex, Math.floor(y / w.rowHeight));
    else i = w.expandedIndex + 1 + Math.floor((y - expandedBottom) / w.rowHeight);
  } else {
    i = Math.floor(y / w.rowHeight);
  }
  return Math.max(0, Math.min(w.count - 1, i));
}

export function computeWindow(w: WindowInput): WindowOutput {
  const extra = w.expandedIndex >= 0 && w.expandedIndex < w.count ? w.expandedExtra : 0;
  const totalHeight = w.count * w.rowHeight + extra;
  if (w.count === 0) return { start: 0, end: 0, totalHeight };
  const first = indexAt(Math.max(0, w.scrollTop), w);
  const last = indexAt(Math.max(0, w.scrollTop + w.viewportHeight - 1), w);
  return {
    start: Math.max(0, first - w.overscan),
    end: Math.min(w.count, last + 1 + w.overscan),
    totalHeight,
  };
}

/** The scrollTop that brings row `i` fully into view, or undefined when it already is. */
export function scrollToReveal(i: number, w: WindowInput): number | undefined {
  const top = rowTop(i, w);
  const bottom = top + w.rowHeight;
  if (top < w.scrollTop) return top;
  if (bottom > w.scrollTop + w.viewportHeight) return bottom - w.viewportHeight;
  return undefined;
}
