// What is inside a package: its manifest (GetPackage) filtered by a typed text, a page at a time.
import type { ManifestEntry } from './pb';

export interface ManifestView {
  /** The entries to show, in manifest order. */
  shown: ManifestEntry[];
  /** How many entries match the text. */
  matching: number;
  /** How many the manifest lists. */
  total: number;
}

/** Entries whose path contains `text` (case-insensitive, every word), the first `limit` of them. */
export function filterManifest(entries: readonly ManifestEntry[], text: string, limit: number): ManifestView {
  const words = text.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const shown: ManifestEntry[] = [];
  let matching = 0;
  for (const e of entries) {
    if (words.length > 0) {
      const path = e.path.toLowerCase();
      if (!words.every((w) => path.includes(w))) continue;
    }
    matching++;
    if (shown.length < limit) shown.push(e);
  }
  return { shown, matching, total: entries.length };
}
