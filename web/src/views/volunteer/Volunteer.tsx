// The volunteer's view: on and off duty (the position shared while on),
// offers that ring, the call taken through to resolved, and the member's
// own service (households, logging an activity, the month against the quota).
import { useEffect, useRef, useState } from "preact/hooks";
import { api, must, session } from "../../api";
import type { Problem } from "../../api";
import {
  acceptOffer,
  declineOffer,
  getCall,
  getTeam,
  listCalls,
  listOffers,
  reportProgress,
  updateDuty,
  updateLocation,
} from "../../gen/sdk.gen";
import type { CallPublic, CallStatus, OfferPublic, Point, ProgressStatus, User } from "../../gen/types.gen";
import { formatDistance, formatTime, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { live } from "../../live";
import type { LiveEvent } from "../../live";
import { useSignal } from "../../state";
import { ErrorLine, Frame, useAct } from "../../ui";
import { KIND, label } from "./labels";
import { CallCard, OfferCard } from "./Offers";
import { currentPosition, sharePosition } from "./position";
import { askNotifications, canAskNotifications, ring } from "./ring";
import { Service } from "./Service";
import "./volunteer.css";

const TEXT = {
  notMember: {
    zh: "您还不是服务队的队员。请联系社区把您加入服务队。",
    en: "You are not on a volunteer team yet. Ask your community to add you.",
  },
  dutyTitle: { zh: "上岗状态", en: "Duty" },
  onDuty: { zh: "在岗中", en: "On duty" },
  offDuty: { zh: "未上岗", en: "Off duty" },
  onSince: { zh: "{t} 上岗，正在共享您的位置", en: "On duty since {t}; your position is shared" },
  sharing: { zh: "正在共享您的位置", en: "Your position is shared" },
  offHint: { zh: "上岗后，附近居民呼叫时会通知您", en: "Go on duty to be called by residents nearby" },
  goOn: { zh: "开始上岗", en: "Go on duty" },
  goOff: { zh: "下岗休息", en: "Go off duty" },
  waiting: { zh: "正在等待呼叫…", en: "Waiting for calls…" },
  waitingHint: { zh: "有居民呼叫时，这里会响铃并显示", en: "A call rings and shows here" },
  allowAlerts: { zh: "允许响铃通知", en: "Allow call alerts" },
  noPosition: {
    zh: "拿不到您的位置。请在浏览器里允许使用位置，再点“开始上岗”。",
    en: "We cannot get your position. Allow location in the browser, then go on duty again.",
  },
  ringTitle: { zh: "有居民呼叫：{kind}", en: "A resident is calling: {kind}" },
  ringBody: { zh: "距离约 {d}，请尽快接单", en: "About {d} away. Please answer." },
  resolved: { zh: "呼叫已解决，谢谢您的服务！", en: "The call is resolved. Thank you!" },
  cancelled: { zh: "居民已取消这个呼叫", en: "The resident cancelled the call" },
  movedOn: { zh: "这个呼叫已交给其他人处理", en: "This call was handed to someone else" },
  declined: { zh: "已告知：您这次不接", en: "Noted: you declined this one" },
} satisfies Record<string, Text>;

const WORKING: CallStatus[] = ["accepted", "en_route", "on_site"];

interface Duty {
  on: boolean;
  since: string | null;
}

function noPosition(): Problem {
  return { status: 0, code: "no_position", title: "", detail: tr(TEXT.noPosition) };
}

export default function Volunteer() {
  return (
    <Frame view="volunteer">
      <Desk />
    </Frame>
  );
}

function Desk() {
  useLang();
  const user = useSignal(session)?.user;
  if (!user) return null;
  if (user.teams.length === 0) return <p class="card">{tr(TEXT.notMember)}</p>;
  return <Work user={user} />;
}

function Work(props: { user: User }) {
  const { user } = props;
  const [duty, setDuty] = useState<Duty | null>(null);
  const [offers, setOffers] = useState<OfferPublic[]>([]);
  const [call, setCall] = useState<CallPublic | null>(null);
  const [flash, setFlash] = useState<Text | null>(null);
  const { busy, problem, setProblem, act } = useAct();
  const [askable, setAskable] = useState(canAskNotifications());
  const [version, setVersion] = useState(0);
  const callRef = useRef<CallPublic | null>(null);
  const known = useRef(new Set<string>());
  const startPoint = useRef<Point | null>(null);

  /** The call taken, or its end (then back to waiting, with a word why). */
  function showCall(next: CallPublic | null) {
    if (next && !WORKING.includes(next.status)) {
      setFlash(next.status === "resolved" ? TEXT.resolved : next.status === "cancelled" ? TEXT.cancelled : TEXT.movedOn);
      setVersion((n) => n + 1); // a resolved call is an activity: re-read the month
      next = null;
    }
    callRef.current = next;
    setCall(next);
  }

  function addOffers(list: OfferPublic[], rings: boolean) {
    const fresh = list.filter((o) => o.status === "open" && !known.current.has(o.id));
    for (const offer of fresh) {
      known.current.add(offer.id);
      if (rings) {
        const kind = tr(label(KIND, offer.category));
        ring(tr(TEXT.ringTitle, { kind }), tr(TEXT.ringBody, { d: formatDistance(offer.distance_m) }), offer.id);
      }
    }
    if (fresh.length) {
      setFlash(null);
      setOffers((current) => [...current, ...fresh.filter((o) => !current.some((c) => c.id === o.id))]);
    }
  }

  function dropOffer(id: string) {
    setOffers((current) => current.filter((o) => o.id !== id));
  }

  /** Open offers and the call in hand, from REST (on load and after a reconnect). */
  async function reread(rings: boolean) {
    const open = await must(listOffers({ client: api, query: { status: "open" } }));
    setOffers((current) => current.filter((o) => open.data.some((n) => n.id === o.id)));
    addOffers(open.data, rings);
    const held = callRef.current;
    if (held) {
      showCall(await must(getCall({ client: api, path: { call_id: held.id } })));
    } else {
      const mine = await must(listCalls({ client: api, query: { limit: 50 } }));
      const working = mine.data.find((c) => c.responder?.id === user.id && WORKING.includes(c.status));
      if (working) showCall(working);
    }
  }

  useEffect(() => {
    const team = user.teams[0];
    must(getTeam({ client: api, path: { team_id: team.id } }))
      .then((profile) => {
        const me = profile.members.find((m) => m.id === user.id);
        setDuty({ on: me?.on_duty ?? false, since: null });
      })
      .catch((error: Problem) => setProblem(error));
    reread(false).catch((error: Problem) => setProblem(error));
    const off = [
      live.on("offer.created", (event: LiveEvent<OfferPublic>) => addOffers([event.data], true)),
      live.on("offer.closed", (event: LiveEvent<OfferPublic>) => dropOffer(event.data.id)),
      live.on("call.updated", (event: LiveEvent<CallPublic>) => {
        if (callRef.current && callRef.current.id === event.data.id) showCall(event.data);
      }),
      live.onReconnect(() => void reread(true).catch((error: Problem) => setProblem(error))),
    ];
    return () => off.forEach((stop) => stop());
  }, [user.id]);

  // While on duty, the position is watched and sent.
  useEffect(() => {
    if (!duty?.on || !("geolocation" in navigator)) return;
    return sharePosition(startPoint.current, (point) => {
      updateLocation({ client: api, body: point }).then((answer) => {
        if (answer.response?.status === 409) setDuty({ on: false, since: null });
      }, () => undefined);
    });
  }, [duty?.on]);

  const goOn = () =>
    act(async () => {
      let point: Point;
      try {
        point = await currentPosition();
      } catch {
        throw noPosition();
      }
      const state = await must(updateDuty({ client: api, body: { on_duty: true, location: point } }));
      startPoint.current = point;
      setDuty({ on: state.on_duty, since: state.since });
    });

  const goOff = () =>
    act(async () => {
      const state = await must(updateDuty({ client: api, body: { on_duty: false } }));
      startPoint.current = null;
      setDuty({ on: state.on_duty, since: null });
    });

  const accept = (offer: OfferPublic) =>
    act(async () => {
      try {
        showCall(await must(acceptOffer({ client: api, path: { offer_id: offer.id } })));
        setFlash(null);
      } finally {
        dropOffer(offer.id);
      }
    });

  const decline = (offer: OfferPublic, reason: string) =>
    act(async () => {
      try {
        await must(declineOffer({ client: api, path: { offer_id: offer.id }, body: { reason: reason || null } }));
        setFlash(TEXT.declined);
      } finally {
        dropOffer(offer.id);
      }
    });

  const step = (status: ProgressStatus) =>
    act(async () => {
      const held = callRef.current;
      if (held) showCall(await must(reportProgress({ client: api, path: { call_id: held.id }, body: { status } })));
    });

  return (
    <div class="vol-grid">
      <div class="vol-now">
        <section class="card duty-card" aria-labelledby="duty-title" data-on-duty={duty ? String(duty.on) : "unknown"}>
          <h2 id="duty-title">{tr(TEXT.dutyTitle)}</h2>
          {duty && (
            <>
              <p class={`duty-state ${duty.on ? "on" : "off"}`}>
                <span aria-hidden="true" class="dot" />
                {tr(duty.on ? TEXT.onDuty : TEXT.offDuty)}
              </p>
              <p class="hint">
                {duty.on
                  ? duty.since
                    ? tr(TEXT.onSince, { t: formatTime(duty.since) })
                    : tr(TEXT.sharing)
                  : tr(TEXT.offHint)}
              </p>
              <div class="row">
                {duty.on ? (
                  <button type="button" class="secondary big" disabled={busy || call !== null} onClick={goOff}>
                    {tr(TEXT.goOff)}
                  </button>
                ) : (
                  <button type="button" class="primary big" disabled={busy} onClick={goOn}>
                    {tr(TEXT.goOn)}
                  </button>
                )}
                {askable && (
                  <button
                    type="button"
                    class="secondary"
                    onClick={() => void askNotifications().then(() => setAskable(canAskNotifications()))}
                  >
                    {tr(TEXT.allowAlerts)}
                  </button>
                )}
              </div>
            </>
          )}
        </section>
        <ErrorLine problem={problem} />
        {flash && (
          <p class="card flash" role="status">
            {tr(flash)}
          </p>
        )}
        {call ? (
          <CallCard call={call} busy={busy} onStep={step} />
        ) : (
          <>
            {offers.map((offer) => (
              <OfferCard
                key={offer.id}
                offer={offer}
                busy={busy}
                onAccept={() => accept(offer)}
                onDecline={(reason) => decline(offer, reason)}
              />
            ))}
            {offers.length === 0 && duty?.on && (
              <section class="card waiting" aria-live="polite">
                <p class="waiting-title">{tr(TEXT.waiting)}</p>
                <p class="hint">{tr(TEXT.waitingHint)}</p>
              </section>
            )}
          </>
        )}
      </div>
      <Service teams={user.teams} version={version} />
    </div>
  );
}
