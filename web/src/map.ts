// Maps without a tile server: MapLibre GL draws the district's own polygons
// (GET /areas) on a plain background. A production deployment may set a
// tile style (window.HULIAN_TILE_STYLE, from the server's WEB_TILE_STYLE_URL
// setting) to draw them over real streets. MapLibre loads only when a map is shown.
import type { Map as MapLibreMap, StyleSpecification } from "maplibre-gl";
import type { FeatureCollection } from "geojson";

export type MapLibre = typeof import("maplibre-gl");

let loading: Promise<MapLibre> | null = null;

/** MapLibre and its CSS, fetched the first time a map is shown. */
export function loadMapLibre(): Promise<MapLibre> {
  loading ??= Promise.all([import("maplibre-gl"), import("maplibre-gl/dist/maplibre-gl.css")]).then(
    ([module]) => ((module as unknown as { default?: MapLibre }).default ?? module) as MapLibre,
  );
  return loading;
}

/** The style of a map with no tiles: a background the areas are drawn on. */
export function plainStyle(): StyleSpecification | string {
  const configured = (window as unknown as { HULIAN_TILE_STYLE?: string }).HULIAN_TILE_STYLE;
  if (configured) return configured;
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
  };
}

/** A map in `container` fitted to [west, south, east, north]. */
export async function createMap(
  container: HTMLElement,
  bounds: [number, number, number, number],
): Promise<{ map: MapLibreMap; maplibre: MapLibre }> {
  const maplibre = await loadMapLibre();
  const map = new maplibre.Map({
    container,
    style: plainStyle(),
    bounds,
    fitBoundsOptions: { padding: 20 },
    attributionControl: false,
    // Headless browsers in tests have no GPU: keep the canvas for screenshots.
    canvasContextAttributes: { preserveDrawingBuffer: true },
  });
  map.addControl(new maplibre.NavigationControl({ showCompass: false }), "top-right");
  await new Promise<void>((resolve) => (map.loaded() ? resolve() : map.once("load", () => resolve())));
  return { map, maplibre };
}

/** The [west, south, east, north] of a GeoJSON feature collection. */
export function boundsOf(collection: FeatureCollection): [number, number, number, number] {
  let [w, s, e, n] = [180, 90, -180, -90];
  const visit = (coords: unknown): void => {
    if (Array.isArray(coords) && typeof coords[0] === "number") {
      const [x, y] = coords as [number, number];
      w = Math.min(w, x);
      e = Math.max(e, x);
      s = Math.min(s, y);
      n = Math.max(n, y);
    } else if (Array.isArray(coords)) for (const c of coords) visit(c);
  };
  for (const f of collection.features) if (f.geometry && "coordinates" in f.geometry) visit(f.geometry.coordinates);
  return [w, s, e, n];
}

/** MapLibre makes every marker a focusable button named "Map marker" (axe
 * fails it, and it is no target anyone should tab to). A marker that shows
 * a name becomes a picture of that name; a plain label is hidden from
 * assistive technology (what it says is told beside the map). */
export function quietMarker(element: HTMLElement, label: string | null): void {
  element.removeAttribute("tabindex");
  if (label === null) {
    element.removeAttribute("role");
    element.removeAttribute("aria-label");
    element.setAttribute("aria-hidden", "true");
    return;
  }
  element.textContent = label;
  element.setAttribute("role", "img");
  element.setAttribute("aria-label", label);
}
