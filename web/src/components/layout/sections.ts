// The page's sections in order: nav entries and anchors.
export const SECTIONS = [
  { id: 'alerts', label: 'Alerts' },
  { id: 'track', label: 'Track' },
  { id: 'lines', label: 'Lines' },
  { id: 'packages', label: 'Packages' },
  { id: 'clients', label: 'Clients' },
  { id: 'restore', label: 'Restore' },
  { id: 'stations', label: 'Settings' },
  { id: 'rules', label: 'Rules' },
  { id: 'projections', label: 'Projections' },
  { id: 'journal', label: 'Journal' },
  { id: 'snapshots', label: 'Snapshots' },
] as const;

export type SectionId = (typeof SECTIONS)[number]['id'];
