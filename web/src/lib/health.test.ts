import { describe, expect, it } from 'vitest';
import { checkHealth, hopFromHealth } from './health';

describe('which hop is down', () => {
  it('blames the gateway when /healthz does not answer', () => {
    expect(hopFromHealth('http://gw', undefined)).toMatchObject({ down: 'gateway' });
    expect(hopFromHealth('http://gw', undefined).text).toMatch(/gateway at http:\/\/gw does not answer/);
  });

  it('blames the catcher when the gateway says it cannot reach it', () => {
    const v = hopFromHealth('http://gw', { gateway: 'serving', catcher: 'unreachable', catcher_url: 'http://127.0.0.1:50051', error: 'connection refused' });
    expect(v).toEqual({ down: 'catcher', text: 'The gateway is up, but the catcher at http://127.0.0.1:50051 cannot be reached from it (connection refused).' });
    expect(hopFromHealth('http://gw', { gateway: 'serving', catcher: 'not_serving' }).text).toMatch(/is not serving/);
  });

  it('says both answer when they do', () => {
    expect(hopFromHealth('http://gw', { gateway: 'serving', catcher: 'serving', error: null }).down).toBe('none');
  });

  it('reads a 503 body and survives a failed fetch', async () => {
    const body = { gateway: 'serving', catcher: 'unreachable', catcher_url: 'http://c', error: 'x' };
    const ok = (async () => new Response(JSON.stringify(body), { status: 503 })) as typeof fetch;
    expect((await checkHealth('http://gw', ok)).down).toBe('catcher');
    const fail = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    expect((await checkHealth('http://gw', fail)).down).toBe('gateway');
  });
});
