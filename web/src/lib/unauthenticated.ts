// Notices calls refused Unauthenticated (no valid session): unary ones, streams refused at the start,
// and streams that were open when the credential went away (a revoked token ends them with code 16).
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';

export function unauthenticatedInterceptor(onUnauthenticated: () => void): Interceptor {
  const check = (e: unknown) => {
    if (e instanceof ConnectError && e.code === Code.Unauthenticated) onUnauthenticated();
  };
  return (next) => async (req) => {
    try {
      const res = await next(req);
      return res.stream ? { ...res, message: watched(res.message, check) } : res;
    } catch (e) {
      check(e);
      throw e;
    }
  };
}

async function* watched<T>(messages: AsyncIterable<T>, check: (e: unknown) => void): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    check(e);
    throw e;
  }
}
