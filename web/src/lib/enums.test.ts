import { describe, expect, it } from 'vitest';
import type { DescEnum, DescFile, DescMessage } from '@bufbuild/protobuf';
import type { GenEnum } from '@bufbuild/protobuf/codegenv2';
import { enumFromSpelling, enumSpelling, enumValues, isUnspecified } from './enums';
import {
  ALERT_KINDS,
  alertKindKey,
  alertKindLabel,
  alertStateKey,
  alertStateLabel,
  CAR_TIERS,
  channelKindLabel,
  rpoStateKey,
  rpoStateLabel,
  PACKAGE_STATUSES,
  PACKAGE_TYPES,
  STOP_TIERS,
  capabilityLabel,
  placementLabel,
  safetyLabel,
  stationKindLabel,
  statusKey,
  statusLabel,
  tierKey,
  tierLabel,
  toolLabel,
  typeKey,
  typeLabel,
} from './labels';
import { STOP_NAMES } from './rules';
import {
  AlertKind,
  AlertState,
  Capability,
  ChannelKind,
  RpoState,
  PackageStatus,
  PackageStatusSchema,
  PackageType,
  PackageTypeSchema,
  PlacementStatus,
  RuleSetSchema,
  SafetyState,
  StationKind,
  StopSchema,
  Tier,
  TierSchema,
  Tool,
} from './pb';

// Every enum of every generated file (top level and nested in messages), so a new one is covered too.
const files = Object.values(import.meta.glob('../gen/**/*_pb.js', { eager: true }) as Record<string, Record<string, unknown>>)
  .flatMap((mod) => Object.values(mod))
  .filter((x): x is DescFile => typeof x === 'object' && x !== null && (x as DescFile).kind === 'file');
function nested(m: DescMessage): DescEnum[] {
  return [...m.nestedEnums, ...m.nestedMessages.flatMap(nested)];
}
const allEnums = [...new Map(files.flatMap((f) => [...f.enums, ...f.messages.flatMap(nested)]).map((e) => [e.typeName, e])).values()];

describe('enum spellings', () => {
  it('finds the generated enums', () => {
    const names = allEnums.map((e) => e.typeName);
    expect(names).toEqual(expect.arrayContaining(['edgebackup.v1.PackageType', 'edgebackup.v1.Tier', 'edgebackup.v1.PackageStatus']));
    expect(allEnums.length).toBeGreaterThanOrEqual(8);
  });

  it('spells the proto name without the type prefix, lowercased', () => {
    expect(enumSpelling(PackageTypeSchema, PackageType.USER_DATA)).toBe('user_data');
    expect(enumSpelling(PackageStatusSchema, PackageStatus.IN_PROGRESS)).toBe('in_progress');
    expect(enumSpelling(TierSchema, Tier.HOT)).toBe('hot');
    expect(enumSpelling(TierSchema, Tier.UNSPECIFIED)).toBe('unspecified');
    expect(enumSpelling(PackageTypeSchema, 99)).toBe('package_type_99'); // from a newer server
  });

  it('round-trips every generated value, one spelling each', () => {
    for (const e of allEnums) {
      const ge = e as unknown as GenEnum<number>;
      const spellings = e.values.map((v) => enumSpelling(e, v.number));
      expect(new Set(spellings).size, e.typeName).toBe(e.values.length);
      for (const v of e.values) {
        const s = enumSpelling(e, v.number);
        expect(s, v.name).toMatch(/^[a-z0-9]+(_[a-z0-9]+)*$/);
        // the same name protobuf-es gives the TypeScript member, lowercased
        expect(s, v.name).toBe(v.localName.toLowerCase());
        expect(enumFromSpelling(ge, s), v.name).toBe(v.number);
      }
      expect(enumFromSpelling(ge, 'no_such_value')).toBeUndefined();
    }
  });

  it('lists declared values in order without UNSPECIFIED', () => {
    for (const e of allEnums) {
      const ge = e as unknown as GenEnum<number>;
      const list = enumValues(ge);
      expect(list.some((v) => isUnspecified(e, v)), e.typeName).toBe(false);
      expect(list.map((v) => enumSpelling(e, v)), e.typeName).not.toContain('unspecified');
      expect(list, e.typeName).toEqual(e.values.map((v) => v.number).filter((n) => !e.value[n].name.endsWith('_UNSPECIFIED')));
    }
    for (const list of [PACKAGE_TYPES, STOP_TIERS, PACKAGE_STATUSES]) expect(list).not.toContain(0);
    expect(PACKAGE_TYPES).toEqual([
      PackageType.USER_DATA,
      PackageType.APP_LOGS,
      PackageType.AUDIT_LOGS,
      PackageType.BUSINESS_DATA,
      PackageType.JOB_PACKAGE,
      PackageType.CACHE,
    ]);
    expect(STOP_TIERS).toEqual([Tier.HOT, Tier.WARM, Tier.COLD, Tier.OFFSITE]);
    expect(CAR_TIERS).toEqual([Tier.UNSPECIFIED, Tier.HOT, Tier.WARM, Tier.COLD, Tier.OFFSITE]);
    expect(PACKAGE_STATUSES).toEqual([
      PackageStatus.PENDING,
      PackageStatus.IN_PROGRESS,
      PackageStatus.COMPLETED,
      PackageStatus.FAILED,
      PackageStatus.EXPIRED,
    ]);
  });

  it('names each rule set stop field after its tier', () => {
    expect(STOP_NAMES).toEqual(['hot', 'warm', 'cold', 'offsite']);
    for (const name of STOP_NAMES) {
      const f = RuleSetSchema.fields.find((x) => x.localName === name);
      expect(f?.fieldKind === 'message' ? f.message.typeName : undefined, name).toBe(StopSchema.typeName);
    }
  });
});

describe('labels', () => {
  it('keys and labels the table enums', () => {
    expect(PACKAGE_TYPES.map(typeKey)).toEqual(['user_data', 'app_logs', 'audit_logs', 'business_data', 'job_package', 'cache']);
    expect(typeLabel(PackageType.JOB_PACKAGE)).toBe('job package');
    expect(PACKAGE_STATUSES.map(statusKey)).toEqual(['pending', 'in_progress', 'completed', 'failed', 'expired']);
    expect(statusLabel(PackageStatus.IN_PROGRESS)).toBe('in progress');
    expect(statusKey(PackageStatus.UNSPECIFIED)).toBe('unspecified');
    expect(CAR_TIERS.map(tierKey)).toEqual(['clients', 'hot', 'warm', 'cold', 'offsite']);
    expect(tierLabel(Tier.UNSPECIFIED, '—')).toBe('—');
    expect(tierLabel(Tier.COLD)).toBe('Cold');
  });

  it('labels the detail enums, unknown values included', () => {
    expect([Tool.UNSPECIFIED, Tool.NATIVE, Tool.RESTIC, Tool.RCLONE, 9 as Tool].map(toolLabel)).toEqual(['native', 'native', 'restic', 'rclone', 'native']);
    expect(
      [PlacementStatus.UNSPECIFIED, PlacementStatus.IN_PROGRESS, PlacementStatus.VERIFIED, PlacementStatus.FAILED, PlacementStatus.DELETED].map(placementLabel),
    ).toEqual(['unknown', 'writing', 'verified', 'failed', 'deleted']);
    expect([SafetyState.UNSPECIFIED, SafetyState.OK, SafetyState.STOPPED_FOR_SAFETY, 9 as SafetyState].map(safetyLabel)).toEqual([
      'unknown',
      'ok',
      'stopped for safety',
      'unknown',
    ]);
    expect([StationKind.UNSPECIFIED, StationKind.LOCAL, StationKind.S3, StationKind.RCLONE, StationKind.RESTIC].map(stationKindLabel)).toEqual([
      'unknown',
      'local',
      's3',
      'rclone',
      'restic',
    ]);
    expect([Capability.UNSPECIFIED, Capability.BACKUP, Capability.MOVER].map(capabilityLabel)).toEqual(['unknown', 'backup', 'mover']);
  });

  it('labels the alert enums, unknown values included', () => {
    expect(ALERT_KINDS.map(alertKindKey)).toEqual([
      'rpo_breached',
      'agent_silent',
      'package_failed',
      'safety_tripped',
      'restore_drill_failed',
      'move_failing',
      'station_failing',
      'journal_broken',
      'pending_change',
      'channel_failing',
    ]);
    expect(ALERT_KINDS.map(alertKindLabel)).toEqual([
      'RPO breached',
      'agent silent',
      'package failed',
      'safety tripped',
      'restore drill failed',
      'move failing',
      'station failing',
      'journal broken',
      'pending change',
      'channel failing',
    ]);
    expect([AlertKind.UNSPECIFIED, 99 as AlertKind].map(alertKindLabel)).toEqual(['unknown', 'unknown']);
    expect(alertKindKey(99 as AlertKind)).toBe('alert_kind_99');
    expect([AlertState.UNSPECIFIED, AlertState.OPEN, AlertState.RESOLVED, 7 as AlertState].map(alertStateLabel)).toEqual(['unknown', 'open', 'resolved', 'unknown']);
    expect([AlertState.OPEN, AlertState.RESOLVED].map(alertStateKey)).toEqual(['open', 'resolved']);
    expect([RpoState.UNSPECIFIED, RpoState.HELD, RpoState.BREACHED, RpoState.NONE, 9 as RpoState].map(rpoStateLabel)).toEqual([
      'unknown',
      'held',
      'breached',
      'no objective',
      'unknown',
    ]);
    expect([RpoState.HELD, RpoState.BREACHED, RpoState.NONE].map(rpoStateKey)).toEqual(['held', 'breached', 'none']);
    expect([ChannelKind.UNSPECIFIED, ChannelKind.WEBHOOK, ChannelKind.SLACK, ChannelKind.EMAIL, 9 as ChannelKind].map(channelKindLabel)).toEqual([
      'unknown',
      'webhook',
      'slack',
      'email',
      'unknown',
    ]);
  });
});
