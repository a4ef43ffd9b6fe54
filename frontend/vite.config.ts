import { defineConfig, type Plugin } from "vite";

// The API (Litestar, port 8000) serves dist/ at "/" in production; in dev Vite proxies to it.
const api = process.env.CRYPTOCHART_API ?? "http://127.0.0.1:8000";

const PREFETCH = "src/prefetch.ts";

/**
 * src/prefetch.ts as a script of its own in the page's head, async: it asks for the first
 * history page while the main script still loads. (Module scripts written in index.html would
 * be bundled into the main script, and wait for it.)
 */
function prefetchScript(): Plugin {
  return {
    name: "cryptochart-prefetch",
    transformIndexHtml: {
      order: "post",
      handler(_html, ctx) {
        const chunk = Object.values(ctx.bundle ?? {}).find(
          (c) => c.type === "chunk" && c.isEntry && c.facadeModuleId?.endsWith(PREFETCH),
        );
        const src = chunk ? `/${chunk.fileName}` : `/${PREFETCH}`;
        return [{ tag: "script", attrs: { type: "module", async: true, src }, injectTo: "head" }];
      },
    },
  };
}

export default defineConfig({
  plugins: [prefetchScript()],
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: true },
      "/ws": { target: api.replace(/^http/, "ws"), ws: true },
    },
  },
  preview: {
    proxy: {
      "/api": { target: api, changeOrigin: true },
      "/ws": { target: api.replace(/^http/, "ws"), ws: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 250,
    rollupOptions: { input: { index: "index.html", prefetch: PREFETCH } },
  },
});
