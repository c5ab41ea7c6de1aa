// The live map: the district's own polygons (GET /areas: no tile server),
// the area's open calls, teams and on-duty members from the store, redrawn
// whenever the live stream changes them. A canvas cannot be read by a test
// or a screen reader, so the list beside it says the same, and the map's
// box carries what it drew in data- attributes.
import type { Map as MapLibreMap, GeoJSONSource } from "maplibre-gl";
import type { Feature, FeatureCollection } from "geojson";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { listAreas } from "../../gen/sdk.gen";
import type { AreaFeature } from "../../gen/types.gen";
import { formatTime, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { useSignal } from "../../state";
import { ErrorLine } from "../../ui";
import type { MapLibre } from "../../map";
import { quietMarker } from "../../map";
import { board, CATEGORY, STATUS } from "./store";
import type { Board, CallFeature } from "./store";

const TEXT = {
  map: { zh: "辖区实时地图", en: "Live map of the area" },
  loading: { zh: "地图加载中…", en: "Loading the map…" },
  calls: { zh: "进行中的呼叫（{n}）", en: "Open calls ({n})" },
  none: { zh: "现在没有进行中的呼叫", en: "No open calls now" },
  summary: {
    zh: "{teams} 支队伍，{members} 名党员在岗",
    en: "{teams} teams, {members} members on duty",
  },
  legend: { zh: "图例", en: "Legend" },
  escalated: { zh: "待派单的呼叫", en: "Call waiting for a dispatcher" },
  waiting: { zh: "等待接单的呼叫", en: "Call being offered" },
  going: { zh: "处理中的呼叫", en: "Call being answered" },
  team: { zh: "队伍驻点", en: "Team base" },
  teamIncomplete: { zh: "人数不足的队伍", en: "Incomplete team" },
  available: { zh: "在岗可接单党员", en: "Member free to take a call" },
  busy: { zh: "在岗忙碌党员", en: "Member busy" },
  show: { zh: "在地图上查看", en: "Show on the map" },
  pressed: { zh: "{time} 呼叫", en: "Called at {time}" },
} satisfies Record<string, Text>;

const COLOURS = {
  escalated: "#b71c1c",
  waiting: "#e65100",
  going: "#6a1b9a",
  team: "#0d47a1",
  teamIncomplete: "#757575",
  available: "#1b5e20",
  busy: "#8d6e63",
};

type LegendKey = keyof typeof COLOURS;
const MAX_LABELS = 60; // beyond that, names would hide the map

const LEGEND: LegendKey[] = ["escalated", "waiting", "going", "team", "teamIncomplete", "available", "busy"];

function collection(current: Board): FeatureCollection {
  return {
    type: "FeatureCollection",
    features: [...current.calls, ...current.teams, ...current.members] as unknown as Feature[],
  };
}

/** The ids of `root` and every area inside it. */
function within(areas: AreaFeature[], root: string | null): Set<string> {
  if (!root) return new Set(areas.map((a) => a.properties.id));
  const inside = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const a of areas) {
      const parent = a.properties.parent_id;
      if (parent && inside.has(parent) && !inside.has(a.properties.id)) {
        inside.add(a.properties.id);
        grew = true;
      }
    }
  }
  return inside;
}

function drawAreas(map: MapLibreMap, areas: AreaFeature[], mine: Set<string>, root: string | null): void {
  map.addSource("areas", {
    type: "geojson",
    data: {
      type: "FeatureCollection",
      features: areas.map((a) => ({ ...a, properties: { ...a.properties, mine: mine.has(a.properties.id) } })),
    } as FeatureCollection,
  });
  const level = (name: string) => ["==", ["get", "level"], name];
  map.addLayer({
    id: "area-fill",
    type: "fill",
    source: "areas",
    filter: root ? ["==", ["get", "id"], root] : (level("street") as never),
    paint: { "fill-color": "#ffffff", "fill-opacity": 0.85 },
  });
  map.addLayer({
    id: "grid-lines",
    type: "line",
    source: "areas",
    filter: ["all", level("grid"), ["==", ["get", "mine"], true]] as never,
    paint: { "line-color": "#8a8a8a", "line-width": 1 },
  });
  map.addLayer({
    id: "community-lines",
    type: "line",
    source: "areas",
    filter: ["any", level("community"), level("street")] as never,
    paint: {
      "line-color": ["case", ["==", ["get", "mine"], true], "#7f0000", "#9e9e9e"],
      "line-width": ["case", ["==", ["get", "mine"], true], 3.5, 1.5],
    },
  });
}

/** The names of the area's grids, short (the community's name taken off), at each one's middle. */
function labelGrids(
  map: MapLibreMap,
  maplibre: MapLibre,
  boundsOf: (c: FeatureCollection) => number[],
  areas: AreaFeature[],
  mine: Set<string>,
): void {
  const grids = areas.filter((a) => a.properties.level === "grid" && mine.has(a.properties.id));
  if (grids.length > MAX_LABELS) return;
  const names = new Map(areas.map((a) => [a.properties.id, a.properties.name]));
  for (const grid of grids) {
    const branch = names.get(grid.properties.parent_id ?? "") ?? "";
    let name = grid.properties.name;
    for (const prefix of [branch, branch.replace(/第.*$/, "")]) {
      if (prefix && name.startsWith(prefix) && name.length > prefix.length) name = name.slice(prefix.length);
    }
    const [w, s, e, n] = boundsOf({ type: "FeatureCollection", features: [grid] } as unknown as FeatureCollection);
    const label = document.createElement("span");
    label.className = "grid-label";
    label.textContent = name;
    new maplibre.Marker({ element: label }).setLngLat([(w + e) / 2, (s + n) / 2]).addTo(map);
    quietMarker(label, null);
  }
}

function drawLive(map: MapLibreMap, current: Board): void {
  map.addSource("live", { type: "geojson", data: collection(current) });
  const kind = (k: string) => ["==", ["get", "kind"], k];
  map.addLayer({
    id: "members",
    type: "circle",
    source: "live",
    filter: kind("member") as never,
    paint: {
      "circle-radius": 5,
      "circle-color": ["case", ["get", "available"], COLOURS.available, COLOURS.busy],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 1.5,
    },
  });
  map.addLayer({
    id: "teams",
    type: "circle",
    source: "live",
    filter: kind("team") as never,
    paint: {
      "circle-radius": 6,
      "circle-color": ["case", ["==", ["get", "status"], "active"], COLOURS.team, COLOURS.teamIncomplete],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 2,
    },
  });
  map.addLayer({
    id: "calls",
    type: "circle",
    source: "live",
    filter: kind("call") as never,
    paint: {
      "circle-radius": 11,
      "circle-color": [
        "match",
        ["get", "status"],
        "escalated",
        COLOURS.escalated,
        ["searching", "offered"],
        COLOURS.waiting,
        COLOURS.going,
      ],
      "circle-stroke-color": "#1a1a1a",
      "circle-stroke-width": ["case", ["==", ["get", "status"], "escalated"], 3, 1.5],
    },
  });
}

export default function LiveMap() {
  useLang();
  const current = useSignal(board);
  const box = useRef<HTMLDivElement>(null);
  const map = useRef<MapLibreMap | null>(null);
  const [drawn, setDrawn] = useState<{ areas: number; calls: number; teams: number; members: number } | null>(null);
  const [failed, setFailed] = useState<Problem | null>(null);
  const ready = current !== null;

  // The map is made once the area is known; the polygons come with it.
  useEffect(() => {
    if (!ready || !box.current) return;
    let gone = false;
    let made: MapLibreMap | null = null;
    void (async () => {
      try {
        const [areas, { createMap, boundsOf }] = await Promise.all([
          must(listAreas({ client: api })),
          import("../../map"),
        ]);
        const root = board.get()?.area?.id ?? null;
        const mine = within(areas.features, root);
        const shown = areas.features.filter((a) => mine.has(a.properties.id) || a.properties.level !== "grid");
        const own = areas.features.filter((a) => a.properties.id === root);
        if (gone || !box.current) return;
        const bounds = boundsOf((own.length ? { ...areas, features: own } : areas) as unknown as FeatureCollection);
        const { map: created, maplibre } = await createMap(box.current, bounds);
        made = created;
        if (gone) return created.remove();
        drawAreas(created, shown, mine, root);
        labelGrids(created, maplibre, boundsOf, shown, mine);
        drawLive(created, board.get()!);
        map.current = created;
        // Fitted to the area again when the box changes size, until the person moves the map.
        let moved = false;
        created.on("dragstart", () => (moved = true));
        created.on("zoomstart", (e: { originalEvent?: unknown }) => (moved ||= Boolean(e.originalEvent)));
        const fit = new ResizeObserver(() => {
          if (!moved) created.fitBounds(bounds, { padding: 20, animate: false });
        });
        fit.observe(box.current!);
        created.once("remove", () => fit.disconnect());
        const now = board.get()!;
        setDrawn({ areas: shown.length, calls: now.calls.length, teams: now.teams.length, members: now.members.length });
      } catch (error) {
        setFailed(error as Problem);
      }
    })();
    return () => {
      gone = true;
      made?.remove();
      map.current = null;
    };
  }, [ready]);

  // Every change of the board is drawn.
  useEffect(() => {
    const shown = map.current;
    if (!shown || !current) return;
    (shown.getSource("live") as GeoJSONSource | undefined)?.setData(collection(current));
    setDrawn((d) => d && { ...d, calls: current.calls.length, teams: current.teams.length, members: current.members.length });
  }, [current]);

  const focus = (call: CallFeature) => {
    const [lng, lat] = (call.geometry as unknown as { coordinates: [number, number] }).coordinates;
    map.current?.flyTo({ center: [lng, lat], zoom: Math.max(map.current.getZoom(), 15) });
  };

  const calls = current?.calls ?? [];
  return (
    <div class="live-map">
      <section class="map-panel card" aria-label={tr(TEXT.map)}>
        <div
          ref={box}
          class="map-box"
          data-map-ready={drawn ? "yes" : "no"}
          data-map-areas={drawn?.areas}
          data-map-calls={drawn?.calls}
          data-map-teams={drawn?.teams}
          data-map-members={drawn?.members}
        >
          {!drawn && <p class="map-loading">{tr(TEXT.loading)}</p>}
        </div>
        <ErrorLine problem={failed} />
        <ul class="legend" aria-label={tr(TEXT.legend)}>
          {LEGEND.map((key) => (
            <li>
              <span class={`swatch swatch-${key}`} style={{ background: COLOURS[key] }} aria-hidden="true" />
              {tr(TEXT[key])}
            </li>
          ))}
        </ul>
      </section>
      <section class="call-list card" aria-labelledby="open-calls">
        <h3 id="open-calls">{tr(TEXT.calls, { n: calls.length })}</h3>
        {current && (
          <p class="hint">
            {tr(TEXT.summary, { teams: current.teams.length, members: current.members.length })}
          </p>
        )}
        {current && calls.length === 0 && <p>{tr(TEXT.none)}</p>}
        <ul class="calls">
          {[...calls].reverse().map((call) => (
            <li data-call-id={call.properties.id} data-status={call.properties.status}>
              <button type="button" class="call-item" onClick={() => focus(call)} title={tr(TEXT.show)}>
                <span class={`status-dot status-${call.properties.status}`} aria-hidden="true" />
                <span class="call-what">
                  <strong>{tr(CATEGORY[call.properties.category])}</strong>
                  <span>{tr(STATUS[call.properties.status])}</span>
                </span>
                <span class="call-when">{tr(TEXT.pressed, { time: formatTime(call.properties.created_at) })}</span>
              </button>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
