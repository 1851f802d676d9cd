// The page's API clients and session flow, created once from the page URL: grpc-web and the
// gateway's session endpoints share one base URL, and any call refused Unauthenticated ends the
// session.
import { createAuth } from './auth';
import { apiBaseUrl, createApi, type Api } from './client';
import { SessionFlow } from './session-flow';
import { session } from './session.svelte';

let wired: { api: Api; flow: SessionFlow } | undefined;

function wire(): { api: Api; flow: SessionFlow } {
  if (!wired) {
    const baseUrl = apiBaseUrl(window.location);
    const flow = new SessionFlow(createAuth(baseUrl), session, window);
    wired = { api: createApi(baseUrl, { onUnauthenticated: () => flow.ended() }), flow };
  }
  return wired;
}

export function api(): Api {
  return wire().api;
}

export function sessionFlow(): SessionFlow {
  return wire().flow;
}
