// Human labels for the contract's enums, and the short keys used in test ids and CSS classes. Value
// lists and spellings come from the generated descriptors (enums.ts); only what people read differs
// from them, and that is written here.
import { enumSpelling, enumValues, isUnspecified } from './enums';
import {
  AlertKindSchema,
  AlertStateSchema,
  CapabilitySchema,
  ChannelKindSchema,
  RpoStateSchema,
  PackageStatusSchema,
  PackageTypeSchema,
  PendingChangeStateSchema,
  PlacementStatus,
  PlacementStatusSchema,
  SafetyStateSchema,
  StationKindSchema,
  Tier,
  TierSchema,
  Tool,
  ToolSchema,
  type AlertKind,
  type AlertState,
  type Capability,
  type ChannelKind,
  type RpoState,
  type PackageStatus,
  type PackageType,
  type PendingChangeState,
  type SafetyState,
  type StationKind,
} from './pb';
import type { GenEnum } from '@bufbuild/protobuf/codegenv2';

/** Package types in enum order, without UNSPECIFIED. */
export const PACKAGE_TYPES: PackageType[] = enumValues(PackageTypeSchema);

/** Storage tiers in travel order (the enum's order), without UNSPECIFIED. */
export const STOP_TIERS: Tier[] = enumValues(TierSchema);

/** Train cars in travel order: the "clients" car (UNSPECIFIED: still on the way) first. */
export const CAR_TIERS: Tier[] = [Tier.UNSPECIFIED, ...STOP_TIERS];

/** Package statuses in enum order, without UNSPECIFIED. */
export const PACKAGE_STATUSES: PackageStatus[] = enumValues(PackageStatusSchema);

const spaced = (spelling: string) => spelling.replace(/_/g, ' ');

/** The spelling with spaces ("stopped for safety"); `otherwise` for UNSPECIFIED and undeclared numbers. */
function words<T extends number>(e: GenEnum<T>, v: T, otherwise: string): string {
  if (e.value[v] === undefined || isUnspecified(e, v)) return otherwise;
  return spaced(enumSpelling(e, v));
}

/** "user_data" */
export function typeKey(t: PackageType): string {
  return enumSpelling(PackageTypeSchema, t);
}

/** "user data" */
export function typeLabel(t: PackageType): string {
  return spaced(typeKey(t));
}

/** "hot"; the unspecified tier is the "clients" car. */
export function tierKey(t: Tier): string {
  return t === Tier.UNSPECIFIED ? 'clients' : enumSpelling(TierSchema, t);
}

/** "Hot"; `unspecifiedAs` names the unspecified tier in context ("Clients", "—", "expired"). */
export function tierLabel(t: Tier, unspecifiedAs = 'Clients'): string {
  if (t === Tier.UNSPECIFIED) return unspecifiedAs;
  const k = tierKey(t);
  return k.charAt(0).toUpperCase() + k.slice(1);
}

/** "in_progress" */
export function statusKey(s: PackageStatus): string {
  return enumSpelling(PackageStatusSchema, s);
}

/** "in progress" */
export function statusLabel(s: PackageStatus): string {
  return spaced(statusKey(s));
}

/** "restic"; a package without a tool (or with one this page does not know) was packed natively. */
export function toolLabel(t: Tool): string {
  return words(ToolSchema, t, enumSpelling(ToolSchema, Tool.NATIVE));
}

export function placementLabel(s: PlacementStatus): string {
  if (s === PlacementStatus.IN_PROGRESS) return 'writing';
  return words(PlacementStatusSchema, s, 'unknown');
}

/** "ok", "stopped for safety" */
export function safetyLabel(s: SafetyState): string {
  return words(SafetyStateSchema, s, 'unknown');
}

export function stationKindLabel(k: StationKind): string {
  return words(StationKindSchema, k, 'unknown');
}

export function capabilityLabel(c: Capability): string {
  return words(CapabilitySchema, c, 'unknown');
}

/** "pending", "applied", "cancelled", "superseded", "failed" (test ids, CSS). */
export function pendingStateKey(s: PendingChangeState): string {
  return enumSpelling(PendingChangeStateSchema, s);
}

/** "pending", "applied", …; "unknown" for UNSPECIFIED and undeclared values. */
export function pendingStateLabel(s: PendingChangeState): string {
  return words(PendingChangeStateSchema, s, 'unknown');
}

/** Alert kinds in enum order, without UNSPECIFIED (for the kind filter). */
export const ALERT_KINDS: AlertKind[] = enumValues(AlertKindSchema);

/** Words people write in capitals. */
const ACRONYMS: Record<string, string> = { rpo: 'RPO' };
const withAcronyms = (text: string) => text.replace(/\b[a-z]+\b/g, (w) => ACRONYMS[w] ?? w);

/** "rpo_breached", "agent_silent" (test ids, CSS); "alert_kind_99" for a kind this page does not know. */
export function alertKindKey(k: AlertKind): string {
  return enumSpelling(AlertKindSchema, k);
}

/** "RPO breached", "agent silent"; "unknown" for UNSPECIFIED and undeclared values. */
export function alertKindLabel(k: AlertKind): string {
  return withAcronyms(words(AlertKindSchema, k, 'unknown'));
}

/** "open", "resolved" (test ids, CSS). */
export function alertStateKey(s: AlertState): string {
  return enumSpelling(AlertStateSchema, s);
}

/** "open", "resolved"; "unknown" for UNSPECIFIED and undeclared values. */
export function alertStateLabel(s: AlertState): string {
  return words(AlertStateSchema, s, 'unknown');
}

/** "held", "breached", "none" (test ids, CSS). */
export function rpoStateKey(s: RpoState): string {
  return enumSpelling(RpoStateSchema, s);
}

/** "held", "breached", "no objective"; "unknown" for UNSPECIFIED and undeclared values. */
export function rpoStateLabel(s: RpoState): string {
  const w = words(RpoStateSchema, s, 'unknown');
  return w === 'none' ? 'no objective' : w;
}

/** "webhook", "slack", "email"; "unknown" for UNSPECIFIED and undeclared values. */
export function channelKindLabel(k: ChannelKind): string {
  return words(ChannelKindSchema, k, 'unknown');
}
