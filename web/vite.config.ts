/// <reference types="vitest/config" />
import { defineConfig, type ProxyOptions } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// `npm run dev` (and `vite preview`) forward grpc-web calls and the session endpoints (/api/login,
// /api/session, /api/logout) to a running gateway (GATEWAY_URL, default http://127.0.0.1:8080), so the
// page, its session cookie and the API share one origin exactly as when the gateway serves the page.
const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

const grpcWeb: ProxyOptions = {
  target: gateway,
  changeOrigin: true,
  // when the gateway drops a stream mid-body (e.g. the catcher died), drop the browser's too;
  // http-proxy would otherwise leave it open and the page would never notice
  configure: (proxy) =>
    proxy.on('proxyRes', (proxyRes, _req, res) => {
      proxyRes.on('close', () => {
        if (!proxyRes.complete) res.destroy();
      });
    }),
};

// The gateway serves dist/ at its root, so asset URLs are relative to keep it path-agnostic.
export default defineConfig({
  base: './',
  plugins: [svelte()],
  server: {
    proxy: {
      '^/edgebackup\\.v1\\.[A-Za-z]+/': grpcWeb,
      '^/api/': { target: gateway, changeOrigin: true },
      '/healthz': { target: gateway, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
