import { defineConfig } from "vite";

// Served by the API server at /app/ (app/web.py): hashed assets under
// /app/assets/ are cached for good, index.html never.
export default defineConfig({
  base: "/app/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    manifest: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    // `npm run dev` beside `make run`: the API and the socket on port 8000.
    proxy: {
      "/api": { target: "http://127.0.0.1:8000", ws: true },
      "/public": "http://127.0.0.1:8000",
    },
  },
});
