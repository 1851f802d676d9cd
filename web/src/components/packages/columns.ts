// Columns of the packages table: one CSS grid template shared by the header and every row.
import type { SortKey } from '../../lib/packages-view';

export interface Column {
  key: string;
  label: string;
  sort?: SortKey;
  /** Hidden on narrow screens: 'md' below 1100 px, 'sm' below 760 px. */
  hide?: 'md' | 'sm';
}

export const COLUMNS: Column[] = [
  { key: 'toggle', label: '' },
  { key: 'path', label: 'Path', sort: 'path' },
  { key: 'id', label: 'Id', hide: 'sm' },
  { key: 'source', label: 'Source', sort: 'source', hide: 'sm' },
  { key: 'type', label: 'Type', sort: 'type', hide: 'md' },
  { key: 'tier', label: 'Tier', sort: 'tier' },
  { key: 'status', label: 'Status', sort: 'status' },
  { key: 'age', label: 'Age', sort: 'created', hide: 'sm' },
  { key: 'progress', label: 'Progress', sort: 'progress' },
  { key: 'files', label: 'Files', sort: 'files', hide: 'sm' },
  { key: 'size', label: 'Size', sort: 'size', hide: 'sm' },
  { key: 'checksum', label: 'Checksum', hide: 'md' },
  { key: 'next', label: 'Next move', sort: 'next', hide: 'md' },
];

export const ROW_HEIGHT = 38;
