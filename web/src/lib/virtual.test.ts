import { describe, expect, it } from 'vitest';
import { computeWindow, indexAt, rowTop, scrollToReveal, type WindowInput } from './virtual';

const base: WindowInput = { scrollTop: 0, viewportHeight: 400, rowHeight: 40, count: 100_000, expandedIndex: -1, expandedExtra: 0, overscan: 5 };

describe('virtual window', () => {
  it('renders only the visible rows plus overscan', () => {
    expect(computeWindow(base)).toEqual({ start: 0, end: 15, totalHeight: 4_000_000 });
    expect(computeWindow({ ...base, scrollTop: 40_000 })).toEqual({ start: 995, end: 1015, totalHeight: 4_000_000 });
    expect(computeWindow({ ...base, scrollTop: 4_000_000 - 400 })).toMatchObject({ start: 99_985, end: 100_000 });
  });

  it('handles an empty list and overscroll', () => {
    expect(computeWindow({ ...base, count: 0 })).toEqual({ start: 0, end: 0, totalHeight: 0 });
    expect(computeWindow({ ...base, count: 3, scrollTop: 9999 })).toMatchObject({ start: 0, end: 3 });
  });

  it('accounts for one expanded row', () => {
    const w = { ...base, expandedIndex: 10, expandedExtra: 300 };
    expect(computeWindow(w).totalHeight).toBe(4_000_300);
    expect(rowTop(10, w)).toBe(400);
    expect(rowTop(11, w)).toBe(740);
    expect(indexAt(500, w)).toBe(10); // inside the expanded panel
    expect(indexAt(745, w)).toBe(11);
    expect(computeWindow({ ...w, scrollTop: 740, overscan: 0 })).toMatchObject({ start: 11, end: 21 });
  });

  it('scrolls to reveal a row', () => {
    expect(scrollToReveal(3, base)).toBeUndefined();
    expect(scrollToReveal(20, base)).toBe(20 * 40 + 40 - 400);
    expect(scrollToReveal(2, { ...base, scrollTop: 400 })).toBe(80);
  });
});
