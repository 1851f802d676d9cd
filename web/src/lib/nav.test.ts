import { describe, expect, it } from 'vitest';
import { currentSection, overflowSides } from './nav';

const boxes = (tops: number[]) => ['track', 'packages', 'journal', 'snapshots'].map((id, i) => ({ id, top: tops[i] }));

describe('nav', () => {
  it('marks the last section whose top passed the header', () => {
    expect(currentSection(boxes([100, 400, 900, 1400]), 800, false)).toBe('track');
    expect(currentSection(boxes([-900, -100, 120, 700]), 800, false)).toBe('journal');
  });

  it('marks the last visible section at the bottom of the page, not the one above it', () => {
    expect(currentSection(boxes([-2000, -1500, -200, 500]), 800, true)).toBe('snapshots');
  });

  it('tells which sides of a scrolling nav hide items', () => {
    expect(overflowSides(0, 300, 300)).toEqual({ left: false, right: false });
    expect(overflowSides(0, 300, 800)).toEqual({ left: false, right: true });
    expect(overflowSides(200, 300, 800)).toEqual({ left: true, right: true });
    expect(overflowSides(500, 300, 800)).toEqual({ left: true, right: false });
  });
});
