import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { SafetyState, SafetyTrigger, SourceSchema } from './pb';
import { journalEvent } from './testdata';
import { resumeView, tripFromEvent } from './safety';

const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);
const at = (s: number) => timestampFromMs(T0 + s * 1000);
const src = (stopped: boolean, connected = true) =>
  create(SourceSchema, { sourceId: 'kiosk', connected, safetyState: stopped ? SafetyState.STOPPED_FOR_SAFETY : SafetyState.OK, safetyReason: stopped ? 'burst' : '' });
const trip = (seq: number, s: number, details: object = { trigger: 'change_rate', window_secs: 60, changed: 250 }) =>
  journalEvent(seq, { eventType: 'source.stopped_for_safety', sourceId: 'kiosk', at: at(s), error: '250 changes within a minute', detailsJson: JSON.stringify(details) });
const created = (seq: number, s: number, id = 'cmd-1') =>
  journalEvent(seq, { eventType: 'command.created', sourceId: 'kiosk', at: at(s), detailsJson: JSON.stringify({ command_id: id, kind: 'resume' }) });
const finished = (seq: number, s: number, ok = true, id = 'cmd-1') =>
  journalEvent(seq, {
    eventType: 'command.finished',
    sourceId: 'kiosk',
    at: at(s),
    statusAfter: ok ? 'succeeded' : 'failed',
    error: ok ? '' : 'agent is not stopped',
    detailsJson: JSON.stringify({ command_id: id, kind: 'resume' }),
  });
const resumed = (seq: number, s: number) => journalEvent(seq, { eventType: 'source.resumed', sourceId: 'kiosk', at: at(s) });

describe('trip details', () => {
  it('reads the trigger, the measurements and what to fix', () => {
    const t = tripFromEvent(trip(1, 0, { trigger: 'encrypted_copies', window_secs: 60, changed: 200, removed: 200, renamed: 0, replaced_by_encrypted: 200 }));
    expect(t.trigger).toBe(SafetyTrigger.ENCRYPTED_COPIES);
    expect(t.measured).toBe('200 files changed · 200 files removed · 200 files replaced by encrypted-looking copies within 1 min');
    expect(t.fix).toMatch(/Restore the originals/);
  });

  it('names the canary and says Resume recreates it', () => {
    const t = tripFromEvent(trip(1, 0, { trigger: 'canary', window_secs: 60, changed: 1, canary: '/data/.edge-canary' }));
    expect(t.trigger).toBe(SafetyTrigger.CANARY);
    expect(t.measured).toMatch(/^canary \/data\/\.edge-canary · 1 file changed/);
    expect(t.fix).toMatch(/recreates the canary/);
  });

  it('tells the changed-file burst must stop first, and survives unreadable details', () => {
    expect(tripFromEvent(trip(1, 0)).fix).toMatch(/Stop whatever is still changing files/);
    const t = tripFromEvent(journalEvent(1, { eventType: 'source.stopped_for_safety', detailsJson: 'not json', error: 'x' }));
    expect(t).toMatchObject({ trigger: SafetyTrigger.UNSPECIFIED, measured: '', reason: 'x' });
  });
});

describe('resume feedback', () => {
  const attempt = { commandId: 'cmd-1', sentAfterSeq: 1n };

  it('waits for the agent, saying whether it is online', () => {
    const ev = [trip(1, 0), created(2, 10)];
    expect(resumeView(src(true), ev, attempt, T0 + 15_000)).toMatchObject({ phase: 'waiting', text: 'Resume sent 5 s ago; waiting for the agent to answer…' });
    expect(resumeView(src(true, false), ev, attempt, T0 + 15_000).text).toMatch(/offline and gets it when it reconnects/);
  });

  it('follows the real state: resumed when the source is ok again', () => {
    const ev = [trip(1, 0), created(2, 10), resumed(3, 11), finished(4, 11)];
    expect(resumeView(src(false), ev, attempt, T0 + 12_000).phase).toBe('resumed');
    expect(resumeView(src(false), ev, undefined, T0 + 12_000).phase).toBe('none');
  });

  it('says at once when the brake trips again, with the reason', () => {
    const ev = [trip(1, 0), created(2, 10), resumed(3, 11), finished(4, 11), trip(5, 14)];
    const v = resumeView(src(true), ev, attempt, T0 + 20_000);
    expect(v.phase).toBe('tripped-again');
    expect(v.text).toBe('The brake tripped again 3 s after the resume: 250 changes within a minute.');
    expect(v.trip?.sequence).toBe(5n);
    // also after a reload (no attempt of this page): the journal tells
    expect(resumeView(src(true), ev, undefined, T0 + 20_000).phase).toBe('tripped-again');
  });

  it('does not call an unrelated later trip a failed resume', () => {
    const ev = [trip(1, 0), resumed(3, 11), trip(5, 11 + 2 * 3600)];
    expect(resumeView(src(true), ev, undefined, T0).phase).toBe('none');
  });

  it('reports a refused resume', () => {
    const ev = [trip(1, 0), created(2, 10), finished(3, 11, false)];
    expect(resumeView(src(true), ev, attempt, T0 + 12_000)).toMatchObject({ phase: 'refused', text: 'The agent did not resume: agent is not stopped.' });
  });
});
