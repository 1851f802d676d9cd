import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  actorName,
  alertCounts,
  alertJournalSummary,
  applyAlertEvent,
  canAcknowledge,
  compareAlerts,
  DEFAULT_ALERT_FILTER,
  filterAlerts,
  noteProblem,
  RESOLVED_CAP,
  upsertAlert,
  type AlertBook,
} from './alerts';
import { journalKind, journalSummary } from './journal-view';
import { AlertKind, AlertSchema, AlertState, type Alert } from './pb';
import { LiveStore } from './store.svelte';
import { event, journalEvent, snapshotEvent } from './testdata';

const T0 = Date.UTC(2026, 0, 2, 12, 0, 0);
const MIN = 60_000;

function alert(id: string, o: { kind?: AlertKind; state?: AlertState; subject?: string; source?: string; raisedMs?: number; resolvedMs?: number; ackBy?: string; ackMs?: number; note?: string; message?: string } = {}): Alert {
  const state = o.state ?? AlertState.OPEN;
  return create(AlertSchema, {
    id,
    kind: o.kind ?? AlertKind.AGENT_SILENT,
    subject: o.subject ?? 'edge-a',
    sourceId: o.source ?? 'edge-a',
    state,
    message: o.message ?? 'not connected for 1 h',
    raisedAt: timestampFromMs(o.raisedMs ?? T0),
    resolvedAt: state === AlertState.RESOLVED ? timestampFromMs(o.resolvedMs ?? T0 + 10 * MIN) : undefined,
    acknowledgedAt: o.ackBy ? timestampFromMs(o.ackMs ?? T0 + MIN) : undefined,
    acknowledgedBy: o.ackBy ?? '',
    note: o.note ?? '',
  });
}

const ids = (alerts: Alert[]) => alerts.map((a) => a.id);

describe('the alerts book', () => {
  it('a snapshot replaces every alert; alert_changed replaces one by id', () => {
    const book: AlertBook = new Map([['old', alert('old')]]);
    expect(applyAlertEvent(book, snapshotEvent({ alerts: [alert('a1'), alert('a2', { state: AlertState.RESOLVED })] }))).toBe(true);
    expect([...book.keys()].sort()).toEqual(['a1', 'a2']);

    // raised
    expect(applyAlertEvent(book, event({ case: 'alertChanged', value: alert('a3', { kind: AlertKind.RPO_BREACHED, subject: 'edge-a:/data' }) }))).toBe(true);
    expect(book.size).toBe(3);
    // updated while open (figures change), acknowledged, then resolved: one row throughout
    applyAlertEvent(book, event({ case: 'alertChanged', value: alert('a3', { kind: AlertKind.RPO_BREACHED, message: 'no backup for 3 h' }) }));
    expect(book.get('a3')?.message).toBe('no backup for 3 h');
    applyAlertEvent(book, event({ case: 'alertChanged', value: alert('a3', { kind: AlertKind.RPO_BREACHED, ackBy: 'token:otto (operator)', note: 'on it' }) }));
    expect(book.get('a3')?.note).toBe('on it');
    applyAlertEvent(book, event({ case: 'alertChanged', value: alert('a3', { kind: AlertKind.RPO_BREACHED, state: AlertState.RESOLVED, ackBy: 'token:otto (operator)', note: 'on it' }) }));
    expect(book.size).toBe(3);
    expect(book.get('a3')?.state).toBe(AlertState.RESOLVED);
    // the same alert again changes nothing; other events are not alerts
    expect(applyAlertEvent(book, event({ case: 'alertChanged', value: alert('a3', { kind: AlertKind.RPO_BREACHED, state: AlertState.RESOLVED, ackBy: 'token:otto (operator)', note: 'on it' }) }))).toBe(false);
    expect(applyAlertEvent(book, event({ case: 'packageDeleted', value: 'p1' }))).toBe(false);
    expect(applyAlertEvent(book, event({ case: 'alertChanged', value: alert('') }))).toBe(false);
  });

  it('the stream is believed as it is; a unary answer never reopens an alert nor drops an acknowledgement', () => {
    const book: AlertBook = new Map();
    upsertAlert(book, alert('a', { state: AlertState.RESOLVED, ackBy: 'token:ada (admin)', note: 'fixed the cable' }), true);
    // AcknowledgeAlert's answer arriving after the stream said it resolved
    expect(upsertAlert(book, alert('a', { ackBy: 'token:ada (admin)', note: 'fixed the cable' }), false)).toBe(false);
    expect(book.get('a')?.state).toBe(AlertState.RESOLVED);
    // a ListAlerts page older than the acknowledgement the stream brought
    upsertAlert(book, alert('b', { ackBy: 'token:otto (operator)', note: 'looking' }), true);
    upsertAlert(book, alert('b', { message: 'newer figures' }), false);
    expect(book.get('b')).toMatchObject({ acknowledgedBy: 'token:otto (operator)', note: 'looking', message: 'newer figures', state: AlertState.OPEN });
    // an answer for an alert not held yet is taken as it is
    expect(upsertAlert(book, alert('c', { ackBy: 'token:otto (operator)' }), false)).toBe(true);
    expect(book.get('c')?.acknowledgedBy).toBe('token:otto (operator)');
    // the stream may say anything, e.g. a fresh state after a resync
    upsertAlert(book, alert('a'), true);
    expect(book.get('a')?.state).toBe(AlertState.OPEN);
  });

  it('keeps at most RESOLVED_CAP resolved alerts, dropping the oldest resolved, and every open one', () => {
    const book: AlertBook = new Map();
    for (let i = 0; i < 20; i++) upsertAlert(book, alert(`open-${i}`), true);
    for (let i = 0; i < RESOLVED_CAP + 5; i++) upsertAlert(book, alert(`r-${String(i).padStart(4, '0')}`, { state: AlertState.RESOLVED, resolvedMs: T0 + i * MIN }), true);
    expect(book.size).toBe(20 + RESOLVED_CAP);
    for (let i = 0; i < 5; i++) expect(book.has(`r-000${i}`)).toBe(false);
    expect(book.has('r-0005')).toBe(true);
  });

  it('the live store announces alert changes once per flush and merges answers', () => {
    const store = new LiveStore();
    store.apply(snapshotEvent({ alerts: [alert('a1')] }));
    store.flush();
    const v = store.alertsV;
    expect(store.alerts.size).toBe(1);
    store.apply(event({ case: 'alertChanged', value: alert('a2') }));
    store.apply(event({ case: 'alertChanged', value: alert('a2', { message: 'still silent' }) }));
    store.flush();
    expect(store.alertsV).toBe(v + 1);
    store.mergeAlerts([alert('a1', { ackBy: 'token:otto (operator)', note: 'on it' })]);
    store.flush();
    expect(store.alertsV).toBe(v + 2);
    expect(store.alerts.get('a1')?.note).toBe('on it');
    store.mergeAlerts([alert('a1', { ackBy: 'token:otto (operator)', note: 'on it' })]); // nothing new
    store.flush();
    expect(store.alertsV).toBe(v + 2);
  });
});

describe('alerts as the section lists them', () => {
  const book = [
    alert('r-old', { state: AlertState.RESOLVED, raisedMs: T0, resolvedMs: T0 + 5 * MIN }),
    alert('o-old', { raisedMs: T0 }),
    alert('r-new', { state: AlertState.RESOLVED, raisedMs: T0 - 60 * MIN, resolvedMs: T0 + 50 * MIN, kind: AlertKind.RPO_BREACHED, subject: 'edge-b:/srv/data', source: 'edge-b' }),
    alert('o-new', { raisedMs: T0 + 30 * MIN, kind: AlertKind.RPO_BREACHED, subject: 'edge-a:/home', ackBy: 'token:otto (operator)', note: 'disk replaced' }),
    alert('o-mid', { raisedMs: T0 + 10 * MIN, kind: AlertKind.STATION_FAILING, subject: 'warm-s3', source: '' }),
  ];

  it('puts open ones first, newest raised first, then resolved ones, most recently resolved first', () => {
    expect(ids([...book].sort(compareAlerts))).toEqual(['o-new', 'o-mid', 'o-old', 'r-new', 'r-old']);
    // ties go to the newer id
    expect(ids([alert('x1'), alert('x2')].sort(compareAlerts))).toEqual(['x2', 'x1']);
  });

  it('filters by state, kind and text', () => {
    expect(ids(filterAlerts(book, DEFAULT_ALERT_FILTER))).toEqual(['o-new', 'o-mid', 'o-old']);
    expect(ids(filterAlerts(book, { ...DEFAULT_ALERT_FILTER, state: 'resolved' }))).toEqual(['r-new', 'r-old']);
    expect(ids(filterAlerts(book, { ...DEFAULT_ALERT_FILTER, state: 'all', kind: AlertKind.RPO_BREACHED }))).toEqual(['o-new', 'r-new']);
    expect(ids(filterAlerts(book, { ...DEFAULT_ALERT_FILTER, state: 'all', text: 'EDGE-B' }))).toEqual(['r-new']);
    expect(ids(filterAlerts(book, { ...DEFAULT_ALERT_FILTER, text: 'rpo' }))).toEqual(['o-new']);
    expect(ids(filterAlerts(book, { ...DEFAULT_ALERT_FILTER, text: 'replaced' }))).toEqual(['o-new']);
    expect(filterAlerts(book, { ...DEFAULT_ALERT_FILTER, kind: AlertKind.JOURNAL_BROKEN })).toEqual([]);
  });

  it('counts open and unacknowledged alerts', () => {
    expect(alertCounts(book)).toEqual({ open: 3, unacknowledged: 2 });
    expect(alertCounts([])).toEqual({ open: 0, unacknowledged: 0 });
  });

  it('offers Acknowledge only on open alerts nobody acknowledged', () => {
    expect(book.filter(canAcknowledge).map((a) => a.id)).toEqual(['o-old', 'o-mid']);
  });

  it('checks the note: at most 500 characters, counted as people count them', () => {
    expect(noteProblem('')).toBe('');
    expect(noteProblem('x'.repeat(500))).toBe('');
    expect(noteProblem(`  ${'x'.repeat(500)}  `)).toBe('');
    expect(noteProblem('😀'.repeat(500))).toBe('');
    expect(noteProblem('x'.repeat(501))).toMatch(/501 characters long; at most 500/);
  });

  it('names who acknowledged without the token prefix', () => {
    expect(actorName('token:otto (operator)')).toBe('otto (operator)');
    expect(actorName('admin')).toBe('admin');
  });
});

describe('alert journal lines', () => {
  it('reads raised, resolved, acknowledged and channel tests from their details', () => {
    expect(alertJournalSummary('alert.raised', '{"id":"a1","kind":"rpo_breached","subject":"edge-a:/home","message":"no backup for 2 h (RPO 1 h)"}')).toBe(
      'alert raised: RPO breached · edge-a:/home · no backup for 2 h (RPO 1 h)',
    );
    expect(alertJournalSummary('alert.resolved', '{"id":"a1","kind":"ALERT_KIND_AGENT_SILENT","subject":"edge-a"}')).toBe('alert resolved: agent silent · edge-a');
    expect(alertJournalSummary('alert.raised', '{"alert_id":"a2","kind":"rpo_breached","subject":"edge-a","folder":"/srv/data"}')).toBe(
      'alert raised: RPO breached · edge-a:/srv/data',
    );
    expect(alertJournalSummary('alert.resolved', `{"kind":${AlertKind.STATION_FAILING},"subject":"warm-s3"}`)).toBe('alert resolved: station failing · warm-s3');
    expect(alertJournalSummary('alert.acknowledged', '{"id":"a1","note":"on it"}')).toBe('alert acknowledged · note: on it');
    expect(alertJournalSummary('alert.channel_tested', '{"channel":"ops-hook","delivered":false,"message":"connection refused"}')).toBe(
      'channel ops-hook tested · not delivered · connection refused',
    );
    expect(alertJournalSummary('alert.channel_tested', '{"channel":"ops-hook","delivered":true}')).toBe('channel ops-hook tested · delivered');
    // unknown kinds and unreadable details still say something; other types nothing
    expect(alertJournalSummary('alert.raised', '{"kind":"brand_new","subject":"x"}')).toBe('alert raised: brand new · x');
    expect(alertJournalSummary('alert.raised', 'not json')).toBe('alert raised');
    expect(alertJournalSummary('package.ingested', '{}')).toBe('');
  });

  it('the journal shows them as one line, coloured by what happened', () => {
    expect(journalSummary(journalEvent(9, { eventType: 'alert.acknowledged', detailsJson: '{"id":"a1","note":"on it"}' }))).toBe('alert acknowledged · note: on it');
    expect(journalKind('alert.raised')).toBe('bad');
    expect(journalKind('alert.resolved')).toBe('ok');
    expect(journalKind('alert.acknowledged')).toBe('info');
    expect(journalKind('alert.channel_tested')).toBe('info');
  });
});
