// The grpc-web transport and one client per service. The gateway serves this page and grpc-web on the
// same origin and adds the person's credential from the session cookie; `?api=http://host:port`
// overrides the base URL for development.
import { createClient, type Client } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { AlertService, CatalogService, JournalService, PackageService, PolicyService, SourceService, StatusService } from './pb';
import { unauthenticatedInterceptor } from './unauthenticated';

/** Base URL of the grpc-web API for a page at `location`. */
export function apiBaseUrl(location: { origin: string; search: string }): string {
  const override = new URLSearchParams(location.search).get('api');
  if (override) {
    try {
      const u = new URL(override);
      if (u.protocol === 'http:' || u.protocol === 'https:') return u.href.replace(/\/+$/, '');
    } catch {
      // not a URL: fall back to the page's origin
    }
  }
  return location.origin;
}

export interface Api {
  baseUrl: string;
  status: Client<typeof StatusService>;
  packages: Client<typeof PackageService>;
  policy: Client<typeof PolicyService>;
  journal: Client<typeof JournalService>;
  sources: Client<typeof SourceService>;
  catalog: Client<typeof CatalogService>;
  alerts: Client<typeof AlertService>;
}

export interface ApiOptions {
  /** Called when a call (or the Watch stream) is refused Unauthenticated: the session is gone. */
  onUnauthenticated?: () => void;
}

/** fetch sending the session cookie to the gateway even when ?api= names another origin. */
const withCookie: typeof fetch = (input, init) => fetch(input, { ...init, credentials: 'include' });

export function createApi(baseUrl: string, { onUnauthenticated }: ApiOptions = {}): Api {
  const transport = createGrpcWebTransport({
    baseUrl,
    useBinaryFormat: true,
    fetch: withCookie,
    interceptors: onUnauthenticated ? [unauthenticatedInterceptor(onUnauthenticated)] : [],
  });
  return {
    baseUrl,
    status: createClient(StatusService, transport),
    packages: createClient(PackageService, transport),
    policy: createClient(PolicyService, transport),
    journal: createClient(JournalService, transport),
    sources: createClient(SourceService, transport),
    catalog: createClient(CatalogService, transport),
    alerts: createClient(AlertService, transport),
  };
}

/** Unary calls give up after this long; the Watch stream has no deadline. */
export const UNARY_TIMEOUT_MS = 15000;
