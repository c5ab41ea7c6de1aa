// An offer that rings (category, distance, the rounded point; accept or
// decline with an optional reason) and the call the member took (the exact
// point, navigation, and the steps en route → on site → resolved).
import { useEffect, useState } from "preact/hooks";
import type { CallPublic, CallStatus, OfferPublic, Point, ProgressStatus } from "../../gen/types.gen";
import { formatDistance, formatTime, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { KIND, label } from "./labels";

const TEXT = {
  offerTitle: { zh: "有居民呼叫！", en: "A resident is calling!" },
  distance: { zh: "距离本队约 {d}", en: "About {d} from your team" },
  near: {
    zh: "大约位置：北纬 {lat}，东经 {lng}（误差约 {acc}）",
    en: "Roughly at {lat} N, {lng} E (within about {acc})",
  },
  exactLater: { zh: "接单后显示准确位置", en: "The exact place shows once you accept" },
  left: { zh: "还剩 {s} 秒", en: "{s} s left" },
  accept: { zh: "接单", en: "Accept" },
  decline: { zh: "不接", en: "Decline" },
  reason: { zh: "不接的原因（可不填）", en: "Why not (optional)" },
  confirmDecline: { zh: "确认不接", en: "Decline the call" },
  back: { zh: "返回", en: "Back" },
  callTitle: { zh: "我接的呼叫", en: "The call I took" },
  since: { zh: "{t} 呼叫", en: "Called at {t}" },
  exact: { zh: "准确位置：北纬 {lat}，东经 {lng}", en: "Exact place: {lat} N, {lng} E" },
  grid: { zh: "所在网格：{name}", en: "Grid: {name}" },
  note: { zh: "居民留言：{note}", en: "The resident says: {note}" },
  navigate: { zh: "高德地图导航", en: "Navigate (Amap)" },
  navigateApp: { zh: "用手机地图打开", en: "Open in a maps app" },
  newTab: { zh: "（在新窗口打开）", en: " (opens in a new window)" },
  steps: { zh: "进展", en: "Progress" },
} satisfies Record<string, Text>;

const STEPS: { status: ProgressStatus; todo: Text; done: Text }[] = [
  { status: "en_route", todo: { zh: "出发", en: "On my way" }, done: { zh: "已出发", en: "On the way" } },
  { status: "on_site", todo: { zh: "到达", en: "Arrived" }, done: { zh: "已到达", en: "Arrived" } },
  { status: "resolved", todo: { zh: "已解决", en: "Resolved" }, done: { zh: "已解决", en: "Resolved" } },
];
const ORDER: CallStatus[] = ["accepted", "en_route", "on_site", "resolved"];

function degrees(value: number, digits: number): string {
  return value.toFixed(digits);
}

function useSecondsLeft(until: string): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  return Math.max(0, Math.round((Date.parse(until) - now) / 1000));
}

export function OfferCard(props: {
  offer: OfferPublic;
  busy: boolean;
  onAccept: () => void;
  onDecline: (reason: string) => void;
}) {
  useLang();
  const { offer } = props;
  const [declining, setDeclining] = useState(false);
  const [reason, setReason] = useState("");
  const left = useSecondsLeft(offer.expires_at);
  const point = offer.approx_location;
  const headingId = `offer-${offer.id}`;
  return (
    <section class="card offer-card ringing" aria-labelledby={headingId} data-offer={offer.id}>
      <h2 id={headingId}>{tr(TEXT.offerTitle)}</h2>
      <p class="offer-kind">{tr(label(KIND, offer.category))}</p>
      <p class="offer-distance">{tr(TEXT.distance, { d: formatDistance(offer.distance_m) })}</p>
      <p>
        {tr(TEXT.near, {
          lat: degrees(point.lat, 3),
          lng: degrees(point.lng, 3),
          acc: formatDistance(point.accuracy_m ?? 100),
        })}
      </p>
      <p class="hint">
        {tr(TEXT.exactLater)} · {tr(TEXT.left, { s: left })}
      </p>
      {declining ? (
        <form
          class="decline-form"
          onSubmit={(event) => {
            event.preventDefault();
            props.onDecline(reason.trim());
          }}
        >
          <label>
            {tr(TEXT.reason)}
            <input name="reason" maxLength={200} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <div class="row">
            <button type="submit" class="primary" disabled={props.busy}>
              {tr(TEXT.confirmDecline)}
            </button>
            <button type="button" class="secondary" onClick={() => setDeclining(false)}>
              {tr(TEXT.back)}
            </button>
          </div>
        </form>
      ) : (
        <div class="row offer-actions">
          <button type="button" class="primary big" disabled={props.busy} onClick={props.onAccept}>
            {tr(TEXT.accept)}
          </button>
          <button type="button" class="secondary big" disabled={props.busy} onClick={() => setDeclining(true)}>
            {tr(TEXT.decline)}
          </button>
        </div>
      )}
    </section>
  );
}

/** Links that open navigation to a point: Amap's web page (it hands over to
 * the app when installed) and the platform's geo: handler. */
export function navigationLinks(point: Point): { amap: string; geo: string } {
  const { lat, lng } = point;
  return {
    amap: `https://uri.amap.com/marker?position=${lng},${lat}&name=${encodeURIComponent("呼叫位置")}&coordinate=wgs84&callnative=1`,
    geo: `geo:${lat},${lng}?q=${lat},${lng}`,
  };
}

export function CallCard(props: { call: CallPublic; busy: boolean; onStep: (status: ProgressStatus) => void }) {
  useLang();
  const { call } = props;
  const point = call.location;
  const links = navigationLinks(point);
  const reached = ORDER.indexOf(call.status);
  return (
    <section class="card call-card" aria-labelledby="call-title" data-call={call.id} data-status={call.status}>
      <h2 id="call-title">{tr(TEXT.callTitle)}</h2>
      <p class="offer-kind">{tr(label(KIND, call.category))}</p>
      <p class="hint">{tr(TEXT.since, { t: formatTime(call.created_at) })}</p>
      <p class="exact-point">{tr(TEXT.exact, { lat: degrees(point.lat, 6), lng: degrees(point.lng, 6) })}</p>
      {call.grid && <p>{tr(TEXT.grid, { name: call.grid.name })}</p>}
      {call.note && <p class="call-note">{tr(TEXT.note, { note: call.note })}</p>}
      <div class="row nav-links">
        <a class="button primary" href={links.amap} target="_blank" rel="noopener noreferrer">
          {tr(TEXT.navigate)}
          <span class="visually-hidden">{tr(TEXT.newTab)}</span>
        </a>
        <a class="button" href={links.geo}>
          {tr(TEXT.navigateApp)}
        </a>
      </div>
      <h3>{tr(TEXT.steps)}</h3>
      <ol class="steps">
        {STEPS.map((step) => {
          const index = ORDER.indexOf(step.status);
          const done = reached >= index;
          const next = index === reached + 1;
          return (
            <li class={done ? "done" : next ? "next" : "later"}>
              <button
                type="button"
                class={next ? "primary big" : "secondary big"}
                disabled={!next || props.busy}
                onClick={() => props.onStep(step.status)}
              >
                {done ? `✓ ${tr(step.done)}` : tr(step.todo)}
              </button>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
