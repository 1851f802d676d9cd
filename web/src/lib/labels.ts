// Display names and stable short keys for the contract's enums (the keys double as test-id parts).
import {
  Capability,
  PackageStatus,
  PackageType,
  PlacementStatus,
  SafetyState,
  StationKind,
  Tier,
  Tool,
} from './pb';

/** Package types in enum order, without UNSPECIFIED. */
export const PACKAGE_TYPES: PackageType[] = [
  PackageType.USER_DATA,
  PackageType.APP_LOGS,
  PackageType.AUDIT_LOGS,
  PackageType.BUSINESS_DATA,
  PackageType.JOB_PACKAGE,
  PackageType.CACHE,
];

/** Storage tiers in travel order, without UNSPECIFIED. */
export const STOP_TIERS: Tier[] = [Tier.HOT, Tier.WARM, Tier.COLD, Tier.OFFSITE];

/** Train cars in travel order: the "clients" car (UNSPECIFIED: still on the way) first. */
export const CAR_TIERS: Tier[] = [Tier.UNSPECIFIED, ...STOP_TIERS];

export const PACKAGE_STATUSES: PackageStatus[] = [
  PackageStatus.PENDING,
  PackageStatus.IN_PROGRESS,
  PackageStatus.COMPLETED,
  PackageStatus.FAILED,
  PackageStatus.EXPIRED,
];

const TYPE_KEYS: Record<PackageType, string> = {
  [PackageType.UNSPECIFIED]: 'unspecified',
  [PackageType.USER_DATA]: 'user_data',
  [PackageType.APP_LOGS]: 'app_logs',
  [PackageType.AUDIT_LOGS]: 'audit_logs',
  [PackageType.BUSINESS_DATA]: 'business_data',
  [PackageType.JOB_PACKAGE]: 'job_package',
  [PackageType.CACHE]: 'cache',
};

/** "user_data" */
export function typeKey(t: PackageType): string {
  return TYPE_KEYS[t] ?? `type_${t}`;
}

/** "user data" */
export function typeLabel(t: PackageType): string {
  return typeKey(t).replace(/_/g, ' ');
}

const TIER_KEYS: Record<Tier, string> = {
  [Tier.UNSPECIFIED]: 'clients',
  [Tier.HOT]: 'hot',
  [Tier.WARM]: 'warm',
  [Tier.COLD]: 'cold',
  [Tier.OFFSITE]: 'offsite',
};

/** "hot"; the unspecified tier is the "clients" car. */
export function tierKey(t: Tier): string {
  return TIER_KEYS[t] ?? `tier_${t}`;
}

/** "Hot"; `unspecifiedAs` names the unspecified tier in context ("Clients", "—", "expired"). */
export function tierLabel(t: Tier, unspecifiedAs = 'Clients'): string {
  if (t === Tier.UNSPECIFIED) return unspecifiedAs;
  const k = tierKey(t);
  return k.charAt(0).toUpperCase() + k.slice(1);
}

const STATUS_KEYS: Record<PackageStatus, string> = {
  [PackageStatus.UNSPECIFIED]: 'unspecified',
  [PackageStatus.PENDING]: 'pending',
  [PackageStatus.IN_PROGRESS]: 'in_progress',
  [PackageStatus.COMPLETED]: 'completed',
  [PackageStatus.FAILED]: 'failed',
  [PackageStatus.EXPIRED]: 'expired',
};

export function statusKey(s: PackageStatus): string {
  return STATUS_KEYS[s] ?? `status_${s}`;
}

export function statusLabel(s: PackageStatus): string {
  return statusKey(s).replace(/_/g, ' ');
}

export function toolLabel(t: Tool): string {
  switch (t) {
    case Tool.RESTIC:
      return 'restic';
    case Tool.RCLONE:
      return 'rclone';
    default:
      return 'native';
  }
}

export function placementLabel(s: PlacementStatus): string {
  switch (s) {
    case PlacementStatus.IN_PROGRESS:
      return 'writing';
    case PlacementStatus.VERIFIED:
      return 'verified';
    case PlacementStatus.FAILED:
      return 'failed';
    case PlacementStatus.DELETED:
      return 'deleted';
    default:
      return 'unknown';
  }
}

export function safetyLabel(s: SafetyState): string {
  switch (s) {
    case SafetyState.OK:
      return 'ok';
    case SafetyState.STOPPED_FOR_SAFETY:
      return 'stopped for safety';
    default:
      return 'unknown';
  }
}

export function stationKindLabel(k: StationKind): string {
  switch (k) {
    case StationKind.LOCAL:
      return 'local';
    case StationKind.S3:
      return 's3';
    case StationKind.RCLONE:
      return 'rclone';
    case StationKind.RESTIC:
      return 'restic';
    default:
      return 'unknown';
  }
}

export function capabilityLabel(c: Capability): string {
  switch (c) {
    case Capability.BACKUP:
      return 'backup';
    case Capability.MOVER:
      return 'mover';
    default:
      return 'unknown';
  }
}
