/**
 * The attributes of a control the signed-in person's role may deny: disabled while `denied` (the
 * reason, '' when allowed) is set or while `busy`; the reason as its tooltip; and the visible hint
 * `hintId` (a RoleHint saying the same) as its description. Spread onto the control.
 */
export function roleGate(denied: string, hintId: string, busy = false): { disabled: boolean; title: string | undefined; 'aria-describedby': string | undefined } {
  return {
    disabled: busy || denied !== '',
    title: denied || undefined,
    'aria-describedby': denied ? hintId : undefined,
  };
}
