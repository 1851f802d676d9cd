// The status bar's restore-drill item: one line from the newest drill summary. Pure; `now` is passed in.
import { formatAge, formatCount, num } from './format';
import type { RestoreDrillSummary } from './pb';

export interface DrillView {
  /** data-passed: "true", "false", or "none" when no drill has finished yet. */
  passed: 'true' | 'false' | 'none';
  /** "passed 2 min ago (offsite, 3 packages)", "FAILED 1 min ago: <message>", "no drill yet". */
  text: string;
  /** Longer text for the tooltip. */
  title: string;
}

/** Formats the newest restore drill (GetStatusResponse.last_restore_drill) relative to `nowMs`. */
export function drillView(drill: RestoreDrillSummary | undefined, nowMs: number): DrillView {
  if (!drill) return { passed: 'none', text: 'no drill yet', title: 'No restore drill has finished yet.' };
  const age = formatAge(drill.finishedAt, nowMs);
  const when = age === '—' ? '' : ` ${age}`;
  const by = drill.sourceId ? ` by ${drill.sourceId}` : '';
  const count = num(drill.packagesChecked);
  const packages = `${formatCount(count)} ${count === 1 ? 'package' : 'packages'}`;
  const tier = drill.tier.trim();
  if (drill.passed) {
    const detail = tier ? `${tier}, ${packages}` : packages;
    const text = `passed${when} (${detail})`;
    return { passed: 'true', text, title: `Restore drill${by} ${text}${drill.message ? `: ${drill.message}` : ''}` };
  }
  const message = drill.message.trim() || 'no details';
  const text = `FAILED${when}: ${message}`;
  return { passed: 'false', text, title: `Restore drill${by}${tier ? ` (${tier}, ${packages})` : ` (${packages})`} ${text}` };
}
