// Reproducible bundle: `npm ci && npm run build` writes ../../static/map/map.js and map.css.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = new URL("../../static/map/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outfile: `${out}map.js`,
  legalComments: "eof",
  logLevel: "info",
  define: { "process.env.NODE_ENV": '"production"' },
});
copyFileSync("src/map.css", `${out}map.css`);
