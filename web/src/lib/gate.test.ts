import { describe, expect, it } from 'vitest';
import { roleGate } from './gate';

describe('roleGate', () => {
  it('leaves an allowed control enabled, with no tooltip or description', () => {
    expect(roleGate('', 'hint')).toEqual({ disabled: false, title: undefined, 'aria-describedby': undefined });
  });

  it('disables a denied control, says why and points at the hint', () => {
    expect(roleGate('Needs the operator role', 'hint')).toEqual({ disabled: true, title: 'Needs the operator role', 'aria-describedby': 'hint' });
  });

  it('disables an allowed control while busy, without a reason', () => {
    expect(roleGate('', 'hint', true)).toEqual({ disabled: true, title: undefined, 'aria-describedby': undefined });
  });
});
