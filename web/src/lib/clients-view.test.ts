import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { SafetyState, SourceSchema } from './pb';
import { EMPTY_CLIENT_FILTER, filterClients, pageOf } from './clients-view';

const fleet = Array.from({ length: 1000 }, (_, i) =>
  create(SourceSchema, {
    sourceId: `edge-${String(i).padStart(4, '0')}`,
    hostname: i === 777 ? 'Kiosk-Lobby.shop.example' : `host-${i}`,
    connected: i % 3 !== 0,
    safetyState: i % 100 === 5 ? SafetyState.STOPPED_FOR_SAFETY : SafetyState.OK,
  }),
);

describe('clients at scale', () => {
  it('puts stopped sources first, then disconnected ones, then by id', () => {
    const rows = filterClients(fleet, EMPTY_CLIENT_FILTER);
    expect(rows).toHaveLength(1000);
    expect(rows.slice(0, 10).every((s) => s.safetyState === SafetyState.STOPPED_FOR_SAFETY)).toBe(true);
    expect(rows[10].connected).toBe(false);
    expect(rows.at(-1)?.connected).toBe(true);
  });

  it('filters by connection, safety and name', () => {
    expect(filterClients(fleet, { ...EMPTY_CLIENT_FILTER, safety: 'stopped' })).toHaveLength(10);
    expect(filterClients(fleet, { ...EMPTY_CLIENT_FILTER, connection: 'disconnected' })).toHaveLength(334);
    expect(filterClients(fleet, { ...EMPTY_CLIENT_FILTER, text: 'kiosk-lobby' }).map((s) => s.sourceId)).toEqual(['edge-0777']);
    expect(filterClients(fleet, { connection: 'connected', safety: 'ok', text: 'edge-00' })).toHaveLength(65);
  });

  it('pages 50 at a time and clamps the page', () => {
    const rows = filterClients(fleet, EMPTY_CLIENT_FILTER);
    expect(pageOf(rows, 0)).toMatchObject({ page: 0, pages: 20, from: 1, to: 50 });
    expect(pageOf(rows, 0).rows).toHaveLength(50);
    expect(pageOf(rows, 99)).toMatchObject({ page: 19, from: 951, to: 1000 });
    expect(pageOf([], 3)).toMatchObject({ page: 0, pages: 1, from: 0, to: 0, rows: [] });
  });
});
