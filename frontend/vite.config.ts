import { defineConfig } from "vite";

// The API (Litestar, port 8000) serves dist/ at "/" in production; in dev Vite proxies to it.
const api = process.env.CRYPTOCHART_API ?? "http://127.0.0.1:8000";

export default defineConfig({
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
  },
});
