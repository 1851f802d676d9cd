// Page-level UI state shared across sections: cross-links ("show this package", "filter by tier")
// and notices.
import type { PackageFilter } from './packages-view';
export interface Notice {
  id: number;
  /** warn: done, but not as asked (e.g. a change held by protected retention). */
  kind: 'ok' | 'warn' | 'error';
  text: string;
}

class Ui {
  /** A package another section asked the packages table to reveal. */
  focusPackageId = $state<string | undefined>(undefined);
  /** Bumped on every request, so asking twice for the same id still acts. */
  focusSeq = $state(0);
  /** A filter another section asked the packages table to apply (merged into its current one). */
  filterRequest = $state<{ seq: number; filter: Partial<PackageFilter> } | undefined>(undefined);
  notices = $state<Notice[]>([]);
  #nextId = 1;

  focusPackage(id: string): void {
    this.focusPackageId = id;
    this.focusSeq++;
    document.getElementById('packages')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  filterPackages(filter: Partial<PackageFilter>): void {
    this.filterRequest = { seq: (this.filterRequest?.seq ?? 0) + 1, filter };
    document.getElementById('packages')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  notify(kind: Notice['kind'], text: string, ttlMs = 6000): void {
    const id = this.#nextId++;
    this.notices = [...this.notices, { id, kind, text }];
    setTimeout(() => this.dismiss(id), ttlMs);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}

export const ui = new Ui();
