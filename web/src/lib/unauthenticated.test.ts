import { describe, expect, it } from 'vitest';
import { Code, ConnectError, type StreamResponse, type UnaryResponse } from '@connectrpc/connect';
import { unauthenticatedInterceptor } from './unauthenticated';

type Next = Parameters<ReturnType<typeof unauthenticatedInterceptor>>[0];
type Req = Parameters<Next>[0];
const req = {} as Req;

function counting() {
  const calls = { n: 0 };
  return { calls, interceptor: unauthenticatedInterceptor(() => calls.n++) };
}

async function* messages(n: number, end?: Error) {
  for (let i = 0; i < n; i++) yield { i };
  if (end) throw end;
}

const stream = (n: number, end?: Error) => (async () => ({ stream: true, message: messages(n, end) }) as unknown as StreamResponse) as Next;

describe('unauthenticatedInterceptor', () => {
  it('reports a unary call refused Unauthenticated and still throws it', async () => {
    const { calls, interceptor } = counting();
    const call = interceptor((async () => {
      throw new ConnectError('no session', Code.Unauthenticated);
    }) as Next);
    await expect(call(req)).rejects.toThrow('no session');
    expect(calls.n).toBe(1);
  });

  it('ignores other failures and successes', async () => {
    const { calls, interceptor } = counting();
    await expect(interceptor((async () => {
      throw new ConnectError('viewer', Code.PermissionDenied);
    }) as Next)(req)).rejects.toThrow();
    await expect(interceptor((async () => {
      throw new Error('network');
    }) as Next)(req)).rejects.toThrow();
    const ok = { stream: false } as unknown as UnaryResponse;
    expect(await interceptor((async () => ok) as Next)(req)).toBe(ok);
    expect(calls.n).toBe(0);
  });

  it('reports an open stream that ends Unauthenticated, after delivering what came before', async () => {
    const { calls, interceptor } = counting();
    const res = (await interceptor(stream(2, new ConnectError('token revoked', Code.Unauthenticated)))(req)) as StreamResponse;
    const got: unknown[] = [];
    await expect(
      (async () => {
        for await (const m of res.message) got.push(m);
      })(),
    ).rejects.toThrow('token revoked');
    expect(got).toEqual([{ i: 0 }, { i: 1 }]);
    expect(calls.n).toBe(1);
  });

  it('leaves a stream that ends otherwise alone', async () => {
    const { calls, interceptor } = counting();
    for (const end of [undefined, new ConnectError('catcher gone', Code.Unavailable)]) {
      const res = (await interceptor(stream(1, end))(req)) as StreamResponse;
      try {
        for await (const m of res.message) void m;
      } catch {
        // Unavailable: the watcher reconnects
      }
    }
    expect(calls.n).toBe(0);
  });
});
