// The page's API clients, created once from the page URL.
import { apiBaseUrl, createApi, type Api } from './client';

let instance: Api | undefined;

export function api(): Api {
  instance ??= createApi(apiBaseUrl(window.location));
  return instance;
}
