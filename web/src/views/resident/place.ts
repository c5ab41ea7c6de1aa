// Where the resident is: the phone's position, or a point chosen when the
// phone will not tell (a tap on the map, or a grid picked by name).
import { api, must } from "../../api";
import { listAreas } from "../../gen/sdk.gen";
import type { AreaFeature, AreaFeatureCollection, Point } from "../../gen/types.gen";

let grids: Promise<AreaFeatureCollection> | null = null;

/** The district's grids (GET /areas?level=grid), read once per page. */
export function loadGrids(): Promise<AreaFeatureCollection> {
  grids ??= must(listAreas({ client: api, query: { level: "grid" } })).catch((error: unknown) => {
    grids = null;
    throw error;
  });
  return grids;
}

export type Source = "gps" | "map" | "grid";

export interface Place {
  point: Point;
  source: Source;
  /** The grid's name when the person chose a grid. */
  grid?: string;
}

type Ring = number[][];

function inside(lng: number, lat: number, rings: Ring[]): boolean {
  let within = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > lat !== yj > lat && lng < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) within = !within;
    }
  }
  return within;
}

function polygons(feature: AreaFeature): Ring[][] {
  const geometry = feature.geometry as { type: string; coordinates: unknown };
  if (geometry.type === "Polygon") return [geometry.coordinates as Ring[]];
  if (geometry.type === "MultiPolygon") return geometry.coordinates as Ring[][];
  return [];
}

/** A point well inside a grid (its vertices' mean when that is inside, else
 * the inside point of a fine lattice nearest to it), with an accuracy that
 * says "somewhere in this grid". */
export function pointInGrid(feature: AreaFeature): Point | null {
  const shapes = polygons(feature);
  const outer = shapes.flatMap((rings) => rings[0] ?? []);
  if (outer.length === 0) return null;
  const lngs = outer.map((c) => c[0]);
  const lats = outer.map((c) => c[1]);
  const [w, e, s, n] = [Math.min(...lngs), Math.max(...lngs), Math.min(...lats), Math.max(...lats)];
  const mean = [lngs.reduce((a, b) => a + b, 0) / lngs.length, lats.reduce((a, b) => a + b, 0) / lats.length];
  const metres = Math.hypot((e - w) * 111_320 * Math.cos((mean[1] * Math.PI) / 180), (n - s) * 110_540);
  const accuracy_m = Math.round(Math.min(1000, Math.max(50, metres / 2)));
  const within = (lng: number, lat: number) => shapes.some((rings) => inside(lng, lat, rings));
  if (within(mean[0], mean[1])) return { lat: mean[1], lng: mean[0], accuracy_m };
  let best: [number, number] | null = null;
  let bestDistance = Infinity;
  const steps = 24;
  for (let i = 1; i < steps; i++) {
    for (let j = 1; j < steps; j++) {
      const lng = w + ((e - w) * i) / steps;
      const lat = s + ((n - s) * j) / steps;
      const distance = Math.hypot(lng - mean[0], lat - mean[1]);
      if (distance < bestDistance && within(lng, lat)) [best, bestDistance] = [[lng, lat], distance];
    }
  }
  return best ? { lat: best[1], lng: best[0], accuracy_m } : null;
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context). */
export function newKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
