// Which section the nav marks as current, and whether the nav hides items to either side.

export interface SectionBox {
  id: string;
  /** Top of the section relative to the viewport, px. */
  top: number;
}

/**
 * The section in view: the last one whose top passed just below the sticky header (`offset`);
 * at the bottom of the page, where the last sections cannot scroll that far up, the last one
 * whose top is on screen.
 */
export function currentSection(boxes: readonly SectionBox[], viewportHeight: number, atBottom: boolean, offset = 140): string {
  let best = boxes[0]?.id ?? '';
  for (const b of boxes) if (b.top <= offset) best = b.id;
  if (atBottom) {
    for (const b of boxes) if (b.top < viewportHeight) best = b.id;
  }
  return best;
}

/** Whether a horizontally scrolling box hides content to its left and to its right (1 px slack). */
export function overflowSides(scrollLeft: number, clientWidth: number, scrollWidth: number): { left: boolean; right: boolean } {
  return { left: scrollLeft > 1, right: scrollLeft + clientWidth < scrollWidth - 1 };
}
