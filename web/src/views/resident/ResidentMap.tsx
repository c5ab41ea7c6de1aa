// The resident's map, loaded only when shown (choosing a point when the
// phone's position is refused; the responder on the way). MapLibre comes in
// through a dynamic import of ../../map: it is never in the first load.
import { useEffect, useRef, useState } from "preact/hooks";
import type { FeatureCollection } from "geojson";
import type { Map as MapLibreMap, Marker } from "maplibre-gl";
import type { Point } from "../../gen/types.gen";
import { tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { quietMarker } from "../../map";
import { loadGrids } from "./place";

const TEXT = {
  loading: { zh: "正在打开地图…", en: "Opening the map…" },
  you: { zh: "您的位置", en: "You" },
  chosen: { zh: "您选的位置", en: "Your chosen place" },
  mapPick: { zh: "地图：点一下您所在的位置", en: "Map: tap where you are" },
  mapFollow: { zh: "地图：您和正在赶来的党员", en: "Map: you and the party member coming" },
  failed: { zh: "地图打不开，请用下面的网格选择", en: "The map could not open. Choose your grid below." },
} satisfies Record<string, Text>;


type Props =
  | { mode: "pick"; chosen: Point | null; onPick: (point: Point) => void }
  | { mode: "follow"; home: Point; responder: Point; responderName: string };

function pin(kind: string, label: string): HTMLElement {
  const element = document.createElement("div");
  element.className = `pin pin-${kind}`;
  element.textContent = label;
  return element;
}

export default function ResidentMap(props: Props) {
  useLang();
  const box = useRef<HTMLDivElement>(null);
  const map = useRef<MapLibreMap | null>(null);
  const markers = useRef<Record<string, Marker>>({});
  const maker = useRef<((p: Point, kind: string, label: string) => void) | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const [state, setState] = useState<"loading" | "ready" | "failed">("loading");

  useEffect(() => {
    let gone = false;
    void (async () => {
      try {
        const [{ createMap, boundsOf }, areas] = await Promise.all([import("../../map"), loadGrids()]);
        if (gone || !box.current) return;
        const collection = areas as unknown as FeatureCollection;
        const { map: created, maplibre } = await createMap(box.current, boundsOf(collection));
        if (gone) {
          created.remove();
          return;
        }
        map.current = created;
        created.addSource("grids", { type: "geojson", data: collection });
        created.addLayer({ id: "grid-fill", type: "fill", source: "grids", paint: { "fill-color": "#fff8e1", "fill-opacity": 0.7 } });
        created.addLayer({ id: "grid-line", type: "line", source: "grids", paint: { "line-color": "#8a4b00", "line-width": 1 } });
        maker.current = (point, kind, label) => {
          const existing = markers.current[kind];
          const marker =
            existing ??
            new maplibre.Marker({ element: pin(kind, label), anchor: "bottom" })
              .setLngLat([point.lng, point.lat])
              .addTo(created);
          markers.current[kind] = marker;
          marker.setLngLat([point.lng, point.lat]);
          quietMarker(marker.getElement(), label);
        };
        created.on("click", (event) => {
          const current = latest.current;
          if (current.mode === "pick") current.onPick({ lat: event.lngLat.lat, lng: event.lngLat.lng, accuracy_m: 30 });
        });
        setState("ready");
      } catch {
        if (!gone) setState("failed");
      }
    })();
    return () => {
      gone = true;
      map.current?.remove();
      map.current = null;
      markers.current = {};
      maker.current = null;
    };
  }, []);

  // Markers follow the props; the follow map keeps both points in view.
  const where = props.mode === "pick" ? props.chosen : props.responder;
  const home = props.mode === "follow" ? props.home : null;
  useEffect(() => {
    const place = maker.current;
    const current = map.current;
    if (state !== "ready" || !place || !current) return;
    if (props.mode === "pick") {
      const chosen = props.chosen;
      if (!chosen) return;
      place(chosen, "chosen", tr(TEXT.chosen));
      if (!current.getBounds().contains([chosen.lng, chosen.lat])) current.setCenter([chosen.lng, chosen.lat]);
      return;
    }
    place(props.home, "home", tr(TEXT.you));
    place(props.responder, "responder", props.responderName);
    const [a, b] = [props.home, props.responder];
    current.fitBounds(
      [
        [Math.min(a.lng, b.lng), Math.min(a.lat, b.lat)],
        [Math.max(a.lng, b.lng), Math.max(a.lat, b.lat)],
      ],
      { padding: 70, maxZoom: 17, duration: 0 },
    );
  }, [state, where?.lat, where?.lng, home?.lat, home?.lng]);

  const label = props.mode === "pick" ? TEXT.mapPick : TEXT.mapFollow;
  return (
    <div class="resident-map-wrap">
      <div
        ref={box}
        class={`resident-map resident-map-${props.mode}`}
        role="region"
        aria-label={tr(label)}
        data-state={state}
        data-responder={props.mode === "follow" ? `${props.responder.lat},${props.responder.lng}` : undefined}
      />
      {state === "loading" && <p class="map-note">{tr(TEXT.loading)}</p>}
      {state === "failed" && <p class="error">{tr(TEXT.failed)}</p>}
    </div>
  );
}
