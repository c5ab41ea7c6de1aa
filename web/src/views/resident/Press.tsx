// The press screen: one huge round button at the centre, the place the call
// will be made from (the phone's position, or a point the person chooses when
// the phone will not tell), the optional kind of help, and the teams nearby.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { createCall } from "../../gen/sdk.gen";
import type { AreaFeature, CallCategory, CallCreate, CallPublic, Point } from "../../gen/types.gen";
import { tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { CATEGORY } from "../../names";
import { ErrorLine } from "../../ui";
import NearbyTeams from "./NearbyTeams";
import { loadGrids, newKey, pointInGrid } from "./place";
import type { Place } from "./place";
import ResidentMap from "./ResidentMap";

const TEXT = {
  press: { zh: "一键呼叫", en: "Call for help" },
  pressHint: { zh: "按一下，附近的党员会来帮您", en: "Press once: a party member nearby will come" },
  sending: { zh: "正在呼叫…", en: "Calling…" },
  category: { zh: "需要哪种帮助？（可不选）", en: "What kind of help? (optional)" },
  locating: { zh: "正在确定您的位置…", en: "Finding where you are…" },
  located: { zh: "已定位到您的位置（误差约 {m} 米）", en: "We know where you are (within about {m} m)" },
  chosenOnMap: { zh: "将从您在地图上选的位置呼叫", en: "The call will come from the place you chose on the map" },
  chosenGrid: { zh: "将从“{grid}”呼叫", en: "The call will come from “{grid}”" },
  refused: {
    zh: "手机没有告诉我们您的位置。请在地图上点一下您所在的地方，或者选择您所在的网格。",
    en: "Your phone did not tell us where you are. Tap where you are on the map, or choose your grid.",
  },
  unavailable: {
    zh: "暂时无法定位。请在地图上点一下您所在的地方，或者选择您所在的网格。",
    en: "We cannot find your position now. Tap where you are on the map, or choose your grid.",
  },
  choosePlace: { zh: "请先选择您的位置", en: "Choose where you are first" },
  otherPlace: { zh: "换一个位置", en: "Choose another place" },
  useGps: { zh: "用手机定位", en: "Use my phone's position" },
  grid: { zh: "或者选择您所在的网格", en: "Or choose your grid" },
  gridNone: { zh: "请选择…", en: "Choose…" },
  gridsFailed: { zh: "网格列表打不开，请点地图", en: "The list of grids could not load. Tap the map." },
  pickTitle: { zh: "您在哪里？", en: "Where are you?" },
} satisfies Record<string, Text>;

export const CATEGORIES: Record<CallCategory, Text> = CATEGORY;

type Geo = "asking" | "ok" | "refused" | "unavailable" | "none";

function GridChooser(props: { onChoose: (place: Place) => void; chosen?: string }) {
  useLang();
  const [features, setFeatures] = useState<AreaFeature[] | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    loadGrids()
      .then((areas) => setFeatures([...areas.features].sort((a, b) => a.properties.name.localeCompare(b.properties.name, "zh-CN"))))
      .catch(() => setFailed(true));
  }, []);
  if (failed) return <p class="error">{tr(TEXT.gridsFailed)}</p>;
  const choose = (id: string) => {
    const feature = features?.find((f) => f.properties.id === id);
    const point = feature && pointInGrid(feature);
    if (feature && point) props.onChoose({ point, source: "grid", grid: feature.properties.name });
  };
  return (
    <label class="grid-chooser">
      {tr(TEXT.grid)}
      <select name="grid" disabled={!features} onChange={(e) => choose(e.currentTarget.value)}>
        <option value="">{tr(TEXT.gridNone)}</option>
        {features?.map((f) => (
          <option value={f.properties.id} selected={f.properties.name === props.chosen}>
            {f.properties.name}
          </option>
        ))}
      </select>
    </label>
  );
}

export default function Press(props: { onCall: (call: CallPublic) => void }) {
  useLang();
  const [geo, setGeo] = useState<Geo>("asking");
  const [place, setPlace] = useState<Place | null>(null);
  const [picking, setPicking] = useState(false);
  const [category, setCategory] = useState<CallCategory | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [nudge, setNudge] = useState(false);
  // One key per press: a retry of the same press sends the same key and body.
  const pending = useRef<{ key: string; body: CallCreate } | null>(null);

  const locate = () => {
    if (!("geolocation" in navigator)) {
      setGeo("none");
      setPicking(true);
      return;
    }
    setGeo("asking");
    navigator.geolocation.getCurrentPosition(
      (position) => {
        setGeo("ok");
        setPicking(false);
        setPlace({
          point: {
            lat: position.coords.latitude,
            lng: position.coords.longitude,
            accuracy_m: Math.round(position.coords.accuracy),
          },
          source: "gps",
        });
      },
      (error) => {
        setGeo(error.code === error.PERMISSION_DENIED ? "refused" : "unavailable");
        setPicking(true);
      },
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 30_000 },
    );
  };
  useEffect(locate, []);

  const fallback = geo === "refused" || geo === "unavailable" || geo === "none";
  const showPicker = picking;

  async function press() {
    setProblem(null);
    if (!place) {
      setNudge(true);
      if (fallback) setPicking(true);
      return;
    }
    const body: CallCreate = { location: place.point, ...(category ? { category } : {}) };
    const same = pending.current && JSON.stringify(pending.current.body) === JSON.stringify(body);
    const attempt = same && pending.current ? pending.current : { key: newKey(), body };
    pending.current = attempt;
    setBusy(true);
    try {
      const call = await must(createCall({ client: api, body: attempt.body, headers: { "Idempotency-Key": attempt.key } }));
      pending.current = null;
      props.onCall(call);
    } catch (error) {
      const failed = error as Problem;
      // Only an answer that may not have reached the server keeps the key.
      if (failed.code !== "network" && failed.status < 500) pending.current = null;
      setProblem(failed);
    } finally {
      setBusy(false);
    }
  }

  const choose = (next: Place) => {
    setPlace(next);
    setNudge(false);
  };

  let where: string;
  if (place?.source === "gps") where = tr(TEXT.located, { m: place.point.accuracy_m ?? "?" });
  else if (place?.source === "map") where = tr(TEXT.chosenOnMap);
  else if (place?.source === "grid") where = tr(TEXT.chosenGrid, { grid: place.grid ?? "" });
  else if (geo === "asking") where = tr(TEXT.locating);
  else where = tr(geo === "refused" ? TEXT.refused : TEXT.unavailable);

  return (
    <div class="press-screen">
      <div class="press-centre">
        <button
          type="button"
          class="call-button"
          onClick={() => void press()}
          disabled={busy}
          aria-describedby="press-hint press-where"
        >
          <span class="call-button-text">{busy ? tr(TEXT.sending) : tr(TEXT.press)}</span>
        </button>
        <p class="press-hint" id="press-hint">
          {tr(TEXT.pressHint)}
        </p>
      </div>
      <ErrorLine problem={problem} />
      {nudge && !place && (
        <p class="error" role="alert">
          {geo === "asking" ? tr(TEXT.locating) : tr(TEXT.choosePlace)}
        </p>
      )}

      <section class="card where" aria-labelledby="press-where">
        <p id="press-where" class={`where-line where-${place?.source ?? geo}`} role="status">
          {where}
        </p>
        <div class="row">
          {!showPicker && (
            <button type="button" class="secondary" onClick={() => setPicking(true)}>
              {tr(TEXT.otherPlace)}
            </button>
          )}
          {place?.source !== "gps" && geo !== "none" && (
            <button type="button" class="secondary" onClick={locate}>
              {tr(TEXT.useGps)}
            </button>
          )}
        </div>
        {showPicker && (
          <div class="picker">
            <h2>{tr(TEXT.pickTitle)}</h2>
            <ResidentMap
              mode="pick"
              chosen={place && place.source !== "gps" ? place.point : null}
              onPick={(point: Point) => choose({ point, source: "map" })}
            />
            <GridChooser onChoose={choose} chosen={place?.grid} />
          </div>
        )}
      </section>

      <fieldset class="card categories">
        <legend>{tr(TEXT.category)}</legend>
        <div class="chips">
          {(Object.keys(CATEGORIES) as CallCategory[]).map((key) => (
            <button
              type="button"
              class="chip"
              aria-pressed={category === key}
              data-category={key}
              onClick={() => setCategory(category === key ? null : key)}
            >
              {tr(CATEGORIES[key])}
            </button>
          ))}
        </div>
      </fieldset>

      {place && <NearbyTeams at={place.point} />}
    </div>
  );
}
