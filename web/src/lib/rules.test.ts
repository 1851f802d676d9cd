import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import {
  defaultRpoSeconds,
  describeRpo,
  describeRuleSet,
  rulesFingerprint,
  diffRuleSets,
  errorSlot,
  formToRuleSet,
  parseWait,
  ruleSetToForm,
  slotErrors,
  splitSeconds,
} from './rules';
import { parseFieldErrors } from './errors';
import { PackageType, RuleSetSchema, StopSchema, type RuleSet } from './pb';

const d = (s: number) => create(DurationSchema, { seconds: BigInt(s) });
const DAY = 86400;

function userData(warmDays = 30): RuleSet {
  return create(RuleSetSchema, {
    packageType: PackageType.USER_DATA,
    hot: create(StopSchema, { enabled: true, wait: d(7 * DAY) }),
    warm: create(StopSchema, { enabled: true, wait: d(warmDays * DAY) }),
    cold: create(StopSchema, { enabled: true, wait: d(365 * DAY) }),
    offsite: create(StopSchema, { enabled: true, wait: d(2555 * DAY) }),
  });
}

function auditLogs(): RuleSet {
  return create(RuleSetSchema, {
    packageType: PackageType.AUDIT_LOGS,
    hot: create(StopSchema, { enabled: false, wait: d(0) }),
    warm: create(StopSchema, { enabled: true, wait: d(7 * DAY) }),
    cold: create(StopSchema, { enabled: true, wait: d(365 * DAY) }),
    offsite: create(StopSchema, { enabled: true, wait: d(0), neverDelete: true }),
  });
}

function cache(ttl: number): RuleSet {
  return create(RuleSetSchema, { packageType: PackageType.CACHE, cacheTtl: d(ttl), hot: create(StopSchema), warm: create(StopSchema), cold: create(StopSchema), offsite: create(StopSchema) });
}

describe('rule form conversion', () => {
  it('picks the largest exact unit', () => {
    expect(splitSeconds(7 * DAY)).toEqual({ value: '7', unit: 'd' });
    expect(splitSeconds(7200)).toEqual({ value: '2', unit: 'h' });
    expect(splitSeconds(90)).toEqual({ value: '90', unit: 's' });
    expect(splitSeconds(120)).toEqual({ value: '2', unit: 'min' });
    // 1095 days are 3 years, in the editor as in the train lines ("3 y")
    expect(splitSeconds(1095 * DAY)).toEqual({ value: '3', unit: 'y' });
    expect(splitSeconds(400 * DAY)).toEqual({ value: '400', unit: 'd' });
  });

  it('fingerprints the rules in force, whatever their order', () => {
    const a = [userData(), auditLogs()];
    expect(rulesFingerprint(a)).toBe(rulesFingerprint([auditLogs(), userData()]));
    const changed = userData();
    changed.hot!.wait = d(60);
    expect(rulesFingerprint([changed, auditLogs()])).not.toBe(rulesFingerprint(a));
  });

  it('round-trips rule sets', () => {
    for (const rs of [userData(), auditLogs(), cache(3600)]) {
      const form = ruleSetToForm(rs);
      const back = formToRuleSet(form);
      expect(back.errors).toEqual({});
      expect(describeRuleSet(back.ruleSet)).toEqual(describeRuleSet(rs));
    }
  });

  it('converts edited waits to seconds', () => {
    const form = ruleSetToForm(userData());
    form.warm = { ...form.warm, value: '45', unit: 'min' };
    form.replicateToAll = true;
    const { ruleSet } = formToRuleSet(form);
    expect(ruleSet?.warm?.wait?.seconds).toBe(2700n);
    expect(ruleSet?.replicateToAll).toBe(true);
    expect(ruleSet?.cacheTtl).toBeUndefined();
  });

  it('reports unreadable waits locally, but leaves semantics to the server', () => {
    expect(parseWait({ value: '1.5', unit: 'd' })).toHaveProperty('error');
    expect(parseWait({ value: '', unit: 'd' })).toHaveProperty('error');
    expect(parseWait({ value: '0', unit: 'd' })).toEqual({ seconds: 0 });
    const form = ruleSetToForm(userData());
    form.cold = { ...form.cold, value: 'abc' };
    expect(formToRuleSet(form).errors).toHaveProperty(['cold.wait']);
    form.cold.enabled = false;
    expect(formToRuleSet(form).errors).toEqual({});
    const zero = ruleSetToForm(userData());
    zero.warm.value = '0';
    expect(formToRuleSet(zero).ruleSet?.warm?.wait?.seconds).toBe(0n);
  });
});

describe('server validation errors', () => {
  it('parses field paths', () => {
    expect(parseFieldErrors('rule_set.warm.wait: must be at least 1 s when enabled')).toEqual([
      { field: 'rule_set.warm.wait', message: 'must be at least 1 s when enabled' },
    ]);
    expect(parseFieldErrors('rule_set.cold.enabled: needs warm; rule_set.cache_ttl: must be >= 1 s')).toHaveLength(2);
    expect(parseFieldErrors('something broke')).toEqual([{ field: '', message: 'something broke' }]);
  });

  it('maps fields to form slots', () => {
    expect(errorSlot('rule_set.warm.wait')).toBe('warm.wait');
    expect(errorSlot('rule_set.warm.wait.seconds')).toBe('warm.wait');
    expect(errorSlot('rule_set.cold')).toBe('cold.enabled');
    expect(errorSlot('rule_set.cold.enabled')).toBe('cold.enabled');
    expect(errorSlot('rule_set.offsite.never_delete')).toBe('offsite.never_delete');
    expect(errorSlot('rule_set.cache_ttl')).toBe('cache_ttl');
    expect(errorSlot('rule_set.replicate_to_all')).toBe('replicate_to_all');
    expect(errorSlot('rule_set.package_type')).toBe('form');
    expect(errorSlot('rule_sets[2].hot.wait')).toBe('hot.wait');
  });

  it('groups messages per slot', () => {
    const errs = slotErrors(parseFieldErrors('rule_set.warm.wait: too short; rule_set.package_type: unknown'));
    expect(errs['warm.wait']).toBe('too short');
    expect(errs.form).toBe('rule_set.package_type: unknown');
  });
});

describe('rule set display and diff', () => {
  it('describes stops', () => {
    expect(describeRuleSet(auditLogs()).map((f) => f.value)).toEqual(['skip', '7 d', '1 y', 'keep forever', 'no', 'default (1 d)']);
    expect(describeRuleSet(cache(86400))).toEqual([
      { key: 'cache_ttl', label: 'Cache TTL', value: '1 d' },
      { key: 'rpo', label: 'RPO', value: 'default (none)' },
    ]);
  });

  it('lists only differing fields', () => {
    expect(diffRuleSets([userData(), cache(60)], [userData(), cache(60)])).toEqual([]);
    const rows = diffRuleSets([userData(45), cache(60)], [userData(30), cache(3600)]);
    expect(rows.map((r) => [r.typeKey, r.field, r.current, r.other])).toEqual([
      ['user_data', 'warm', '45 d', '30 d'],
      ['cache', 'cache_ttl', '1 min', '1 h'],
    ]);
  });

  it('shows types missing on one side', () => {
    const rows = diffRuleSets([userData()], [userData(), auditLogs()]);
    expect(rows.every((r) => r.typeKey === 'audit_logs' && r.current === '—')).toBe(true);
    expect(rows).toHaveLength(6);
  });

  it('shows an RPO change in the diff', () => {
    const withRpo = userData();
    withRpo.rpo = d(4 * 3600);
    expect(diffRuleSets([userData()], [withRpo]).map((r) => [r.field, r.label, r.current, r.other])).toEqual([['rpo', 'RPO', 'default (1 d)', '4 h']]);
  });
});

describe('recovery point objective', () => {
  it('defaults per type: 1 day, 7 days for job packages, none for cache', () => {
    expect(defaultRpoSeconds(PackageType.USER_DATA)).toBe(DAY);
    expect(defaultRpoSeconds(PackageType.AUDIT_LOGS)).toBe(DAY);
    expect(defaultRpoSeconds(PackageType.JOB_PACKAGE)).toBe(7 * DAY);
    expect(defaultRpoSeconds(PackageType.CACHE)).toBe(0);
  });

  it('reads unset as the default, zero as no objective', () => {
    const rs = userData();
    expect(describeRpo(rs)).toBe('default (1 d)');
    expect(describeRpo(create(RuleSetSchema, { packageType: PackageType.JOB_PACKAGE }))).toBe('default (7 d)');
    rs.rpo = d(0);
    expect(describeRpo(rs)).toBe('none');
    rs.rpo = d(6 * 3600);
    expect(describeRpo(rs)).toBe('6 h');
  });

  it('edits it: empty keeps the default (unset), 0 is no objective, a value is sent as a Duration', () => {
    const form = ruleSetToForm(userData());
    expect(form.rpo).toEqual({ value: '', unit: 'd' });
    expect(formToRuleSet(form).ruleSet?.rpo).toBeUndefined();
    form.rpo = { value: '0', unit: 'h' };
    expect(formToRuleSet(form).ruleSet?.rpo?.seconds).toBe(0n);
    form.rpo = { value: '12', unit: 'h' };
    expect(formToRuleSet(form).ruleSet?.rpo?.seconds).toBe(12n * 3600n);
    form.rpo = { value: '1.5', unit: 'd' };
    expect(formToRuleSet(form).errors.rpo).toMatch(/whole number/);
  });

  it('round-trips a set RPO, zero included, and the cache type keeps its', () => {
    for (const seconds of [0, 3600, 2 * DAY]) {
      const rs = userData();
      rs.rpo = d(seconds);
      const back = formToRuleSet(ruleSetToForm(rs)).ruleSet;
      expect(back?.rpo?.seconds, String(seconds)).toBe(BigInt(seconds));
    }
    const c = cache(60);
    c.rpo = d(3600);
    expect(formToRuleSet(ruleSetToForm(c)).ruleSet?.rpo?.seconds).toBe(3600n);
  });

  it('maps the server\'s rpo errors to the field', () => {
    expect(errorSlot('rule_set.rpo')).toBe('rpo');
    expect(errorSlot('rule_set.rpo.seconds')).toBe('rpo');
    expect(slotErrors(parseFieldErrors('rule_set.rpo: must be at least 1 min')).rpo).toBe('must be at least 1 min');
  });
});
