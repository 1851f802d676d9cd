// Rule sets as people edit them: a form model with value + unit per wait, conversion to and from the
// wire RuleSet, mapping of the server's field-named errors onto form slots, and rule set diffs.
import { create } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import { PackageType, RuleSetSchema, StopSchema, TierSchema, type RuleSet, type Stop } from './pb';
import { DAY, HOUR, MINUTE, YEAR, durationSeconds, formatWait } from './format';
import { enumSpelling } from './enums';
import { PACKAGE_TYPES, STOP_TIERS, tierLabel, typeKey, typeLabel } from './labels';
import type { FieldError } from './errors';

/** The units of a typed wait: the ones formatWait writes (so "3 y" reads the same in every place). */
export type WaitUnit = 's' | 'min' | 'h' | 'd' | 'y';
export const WAIT_UNITS: WaitUnit[] = ['s', 'min', 'h', 'd', 'y'];
export const UNIT_SECONDS: Record<WaitUnit, number> = { s: 1, min: MINUTE, h: HOUR, d: DAY, y: YEAR };
export const UNIT_LABELS: Record<WaitUnit, string> = { s: 'seconds', min: 'minutes', h: 'hours', d: 'days', y: 'years' };

/** The fields of a RuleSet that hold a Stop ('hot' | 'warm' | 'cold' | 'offsite'), from the generated type. */
export type StopName = { [K in keyof RuleSet]-?: RuleSet[K] extends Stop | undefined ? K : never }[keyof RuleSet];
/** The stops in travel order, STOP_TIERS[i] spelled: each stop field is named after its tier. */
export const STOP_NAMES: StopName[] = STOP_TIERS.map((t) => enumSpelling(TierSchema, t) as StopName);

export interface WaitForm {
  /** As typed: a whole number. */
  value: string;
  unit: WaitUnit;
}

export interface StopForm extends WaitForm {
  enabled: boolean;
  /** Offsite only. */
  neverDelete: boolean;
}

export interface RuleForm {
  type: PackageType;
  hot: StopForm;
  warm: StopForm;
  cold: StopForm;
  offsite: StopForm;
  replicateToAll: boolean;
  cacheTtl: WaitForm;
  /** The recovery point objective; value '' = unset (the type's default), '0' = no objective. */
  rpo: WaitForm;
}

/** Where an error is shown in the form. */
export type ErrorSlot =
  | `${StopName}.enabled`
  | `${StopName}.wait`
  | 'offsite.never_delete'
  | 'replicate_to_all'
  | 'cache_ttl'
  | 'rpo'
  | 'form';

export type FormErrors = Partial<Record<ErrorSlot, string>>;

/** The largest unit that divides `seconds` exactly (days for 0, a sensible default). */
export function splitSeconds(seconds: number): WaitForm {
  if (seconds === 0) return { value: '0', unit: 'd' };
  for (const unit of ['y', 'd', 'h', 'min', 's'] as WaitUnit[]) {
    if (seconds % UNIT_SECONDS[unit] === 0) return { value: String(seconds / UNIT_SECONDS[unit]), unit };
  }
  return { value: String(seconds), unit: 's' };
}

function stopToForm(s: Stop | undefined): StopForm {
  return {
    enabled: s?.enabled ?? false,
    neverDelete: s?.neverDelete ?? false,
    ...splitSeconds(durationSeconds(s?.wait)),
  };
}

/** The RPO a type has when its rule set leaves it unset: 1 day; 7 days for job packages; none (0) for cache. */
export function defaultRpoSeconds(t: PackageType): number {
  if (t === PackageType.CACHE) return 0;
  if (t === PackageType.JOB_PACKAGE) return 7 * DAY;
  return DAY;
}

/** "1 d", "none": an RPO in seconds (0: no objective). */
export function formatRpoSeconds(seconds: number): string {
  return seconds === 0 ? 'none' : formatWait(seconds);
}

/** How a rule set's RPO reads: "1 d", "none" (zero: no objective), "default (7 d)" when unset. */
export function describeRpo(rs: RuleSet): string {
  if (!rs.rpo) return `default (${formatRpoSeconds(defaultRpoSeconds(rs.packageType))})`;
  return formatRpoSeconds(durationSeconds(rs.rpo));
}

function rpoToForm(rs: RuleSet): WaitForm {
  if (!rs.rpo) return { value: '', unit: 'd' };
  return splitSeconds(durationSeconds(rs.rpo));
}

export function ruleSetToForm(rs: RuleSet): RuleForm {
  return {
    type: rs.packageType,
    hot: stopToForm(rs.hot),
    warm: stopToForm(rs.warm),
    cold: stopToForm(rs.cold),
    offsite: stopToForm(rs.offsite),
    replicateToAll: rs.replicateToAll,
    cacheTtl: splitSeconds(durationSeconds(rs.cacheTtl)),
    rpo: rpoToForm(rs),
  };
}

/** Whole seconds of a typed wait, or an error text. Semantics (minimums, order) are the server's call. */
export function parseWait(w: WaitForm): { seconds: number } | { error: string } {
  const t = w.value.trim();
  if (t === '') return { error: 'enter a number' };
  if (!/^\d+$/.test(t)) return { error: 'whole number of ' + UNIT_LABELS[w.unit] + ' expected' };
  const seconds = Number(t) * UNIT_SECONDS[w.unit];
  if (!Number.isSafeInteger(seconds)) return { error: 'too large' };
  return { seconds };
}

export function isCacheType(t: PackageType): boolean {
  return t === PackageType.CACHE;
}

/** Builds the wire RuleSet; `errors` is non-empty when a wait cannot be read. */
export function formToRuleSet(form: RuleForm): { ruleSet?: RuleSet; errors: FormErrors } {
  const errors: FormErrors = {};
  const stop = (name: StopName): Stop => {
    const f = form[name];
    const parsed = parseWait(f);
    let seconds = 0;
    if ('error' in parsed) {
      // a disabled stop's wait is irrelevant: send 0 rather than block the save
      if (f.enabled) errors[`${name}.wait`] = parsed.error;
    } else {
      seconds = parsed.seconds;
    }
    return create(StopSchema, {
      enabled: f.enabled,
      wait: create(DurationSchema, { seconds: BigInt(seconds) }),
      neverDelete: name === 'offsite' ? f.neverDelete : false,
    });
  };
  const rs = create(RuleSetSchema, {
    packageType: form.type,
    hot: stop('hot'),
    warm: stop('warm'),
    cold: stop('cold'),
    offsite: stop('offsite'),
    replicateToAll: form.replicateToAll,
  });
  if (isCacheType(form.type)) {
    const ttl = parseWait(form.cacheTtl);
    if ('error' in ttl) errors.cache_ttl = ttl.error;
    else rs.cacheTtl = create(DurationSchema, { seconds: BigInt(ttl.seconds) });
  }
  // empty: unset, the type's default; "0": no objective
  if (form.rpo.value.trim() !== '') {
    const rpo = parseWait(form.rpo);
    if ('error' in rpo) errors.rpo = rpo.error;
    else rs.rpo = create(DurationSchema, { seconds: BigInt(rpo.seconds) });
  }
  return Object.keys(errors).length > 0 ? { errors } : { ruleSet: rs, errors };
}

/** Maps a server field path ("rule_set.warm.wait.seconds") to the slot that shows it. */
export function errorSlot(field: string): ErrorSlot {
  const f = field.replace(/^rule_sets?(\[\d+\])?\./, '').replace(/^ruleSet\./, '');
  const [head, sub] = f.split('.');
  if ((STOP_NAMES as string[]).includes(head)) {
    const stop = head as StopName;
    if (sub === 'wait') return `${stop}.wait`;
    if (sub === 'never_delete' && stop === 'offsite') return 'offsite.never_delete';
    return `${stop}.enabled`;
  }
  if (head === 'cache_ttl') return 'cache_ttl';
  if (head === 'rpo') return 'rpo';
  if (head === 'replicate_to_all') return 'replicate_to_all';
  return 'form';
}

/** Server field errors grouped by slot (several on one slot are joined). */
export function slotErrors(errors: FieldError[]): FormErrors {
  const out: FormErrors = {};
  for (const e of errors) {
    const slot = e.field ? errorSlot(e.field) : 'form';
    const text = slot === 'form' && e.field ? `${e.field}: ${e.message}` : e.message;
    out[slot] = out[slot] ? `${out[slot]}; ${text}` : text;
  }
  return out;
}

/** How one stop reads in tables: "7 d", "skip", "keep forever". */
export function describeStop(s: Stop | undefined, name: StopName): string {
  if (!s || !s.enabled) return 'skip';
  if (name === 'offsite' && s.neverDelete) return 'keep forever';
  return formatWait(durationSeconds(s.wait));
}

export interface RuleField {
  key: string;
  label: string;
  value: string;
}

/** The comparable fields of a rule set, as text. */
export function describeRuleSet(rs: RuleSet | undefined): RuleField[] {
  if (!rs) return [];
  const rpo = { key: 'rpo', label: 'RPO', value: describeRpo(rs) };
  if (isCacheType(rs.packageType)) {
    return [{ key: 'cache_ttl', label: 'Cache TTL', value: formatWait(durationSeconds(rs.cacheTtl)) }, rpo];
  }
  return [
    ...STOP_NAMES.map((n, i) => ({ key: n, label: tierLabel(STOP_TIERS[i]), value: describeStop(rs[n], n) })),
    { key: 'replicate_to_all', label: 'Replicate to all', value: rs.replicateToAll ? 'yes' : 'no' },
    rpo,
  ];
}

export interface RuleDiffRow {
  type: PackageType;
  typeKey: string;
  typeLabel: string;
  field: string;
  label: string;
  /** Value in force now; "—" when the type has no rule set. */
  current: string;
  /** Value in the other config (snapshot or preset). */
  other: string;
}

/** Fields that differ between the rule sets in force and another set (e.g. a snapshot's). */
export function diffRuleSets(current: Iterable<RuleSet>, other: Iterable<RuleSet>): RuleDiffRow[] {
  const cur = new Map([...current].map((r) => [r.packageType, r]));
  const oth = new Map([...other].map((r) => [r.packageType, r]));
  const types = [...new Set([...PACKAGE_TYPES, ...cur.keys(), ...oth.keys()])].filter((t) => cur.has(t) || oth.has(t));
  const rows: RuleDiffRow[] = [];
  for (const t of types) {
    const a = describeRuleSet(cur.get(t));
    const b = describeRuleSet(oth.get(t));
    const keys = [...new Set([...a.map((f) => f.key), ...b.map((f) => f.key)])];
    for (const key of keys) {
      const fa = a.find((f) => f.key === key);
      const fb = b.find((f) => f.key === key);
      const va = fa?.value ?? '—';
      const vb = fb?.value ?? '—';
      if (va !== vb) {
        rows.push({
          type: t,
          typeKey: typeKey(t),
          typeLabel: typeLabel(t),
          field: key,
          label: (fa ?? fb)!.label,
          current: va,
          other: vb,
        });
      }
    }
  }
  return rows;
}

/**
 * A fingerprint of every rule set in force: a "saved as snapshot #N" note holds only while this
 * stays what it was right after the save (a preset, a restore or another person's edit changes it).
 */
export function rulesFingerprint(ruleSets: Iterable<RuleSet>): string {
  return JSON.stringify([...ruleSets].map(ruleSetToForm).sort((a, b) => a.type - b.type));
}
