// Prints what each view loads, gzipped, from Vite's manifest, and fails the
// build when the resident's first load (the page, the entry, its static
// imports and the resident view's own chunks, not the map) passes the budget.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const DIST = new URL("../dist/", import.meta.url).pathname;
const BUDGET = 150 * 1024;
const manifest = JSON.parse(readFileSync(join(DIST, ".vite", "manifest.json"), "utf8"));
const gz = (file) => gzipSync(readFileSync(join(DIST, file)), { level: 9 }).length;

/** Every file a chunk loads before it runs: itself, its CSS, its static imports. */
function closure(key, seen = new Set()) {
  if (seen.has(key)) return seen;
  seen.add(key);
  for (const next of manifest[key].imports ?? []) closure(next, seen);
  return seen;
}
function files(keys) {
  const out = new Set();
  for (const key of keys) {
    out.add(manifest[key].file);
    for (const css of manifest[key].css ?? []) out.add(css);
  }
  return out;
}

const entry = Object.keys(manifest).find((k) => manifest[k].isEntry);
const entryKeys = closure(entry);
const report = { entry: files(entryKeys) };
for (const view of ["resident", "volunteer", "dispatcher", "screen"]) {
  const key = Object.keys(manifest).find((k) => k.includes(`views/${view}/`) && manifest[k].isDynamicEntry);
  if (key) report[view] = new Set([...files(closure(key, new Set(entryKeys)))].filter((f) => !report.entry.has(f)));
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const sum = (set) => [...set].reduce((total, f) => total + gz(f), 0);
const page = gz("index.html");
console.log("gzipped sizes (what loads before the view runs; maps and charts load when shown):");
console.log(`  index.html          ${kb(page)}`);
for (const [name, set] of Object.entries(report)) console.log(`  ${name.padEnd(18)}  ${kb(sum(set))}`);
const residentFirst = page + sum(report.entry) + sum(report.resident ?? new Set());
console.log(`resident first load: ${kb(residentFirst)} (budget ${kb(BUDGET)})`);
if (residentFirst > BUDGET) {
  console.error("the resident's first load is over its budget (docs/web.md)");
  process.exit(1);
}
